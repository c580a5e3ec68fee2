"""Sequence tasks: splice-site recognition in DNA (donor / acceptor / neither).

Generator
---------
Windows of length ``L`` (default 60, as in the UCI splice-junction data) are centred on
an exon/intron boundary at position ``b = L // 2``:

- **donor** (exon -> intron): exon background on ``[0, b)``, intron background on
  ``[b, L)``, and the 9-position human 5' splice-site profile over exon -3..-1 and
  intron +1..+6 (``G T`` at ``b, b + 1``);
- **acceptor** (intron -> exon): intron on ``[0, b)``, exon on ``[b, L)``, and the
  17-position human 3' splice-site profile over intron -15..-1 (polypyrimidine tract,
  then ``Y A G`` with ``A G`` at ``b - 2, b - 1``) and exon +1..+2;
- **neither**: intron or exon background (half each). ``decoy_fraction`` of them carry a
  decoy ``GT`` at ``b, b + 1`` and as many a decoy ``AG`` at ``b - 2, b - 1``, so the
  dinucleotide alone does not identify a site: the flanking consensus must be used.

Source of the profiles: M. Q. Zhang (1998), "Statistical features of human exons and
their flanking regions", *Human Molecular Genetics* 7(5):919-932 -- position weight
matrices of human 5' and 3' splice sites (low G+C loci), as reproduced in Deonier,
Tavare & Waterman, *Computational Genome Analysis* (Springer 2005), Table 14.3.
Background compositions are approximate human values (introns of low-GC loci ~ 38 % GC
and T-rich; exons ~ 50 % GC); they are parameters.

Reader
------
:func:`read_sequences` reads FASTA (label in the header: ``>id label=donor`` or
``>id|donor``) or CSV (columns ``sequence`` and ``label``).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "BASES", "CLASSES", "DONOR_PWM", "ACCEPTOR_PWM", "EXON_BACKGROUND", "INTRON_BACKGROUND",
    "SequenceDataset", "make_splice_dataset", "read_sequences", "one_hot", "classification_report",
]

BASES = "ACGT"
CLASSES = ("neither", "donor", "acceptor")

# rows A, C, G, T; columns exon -3 -2 -1 | intron +1 .. +6   (Zhang 1998)
DONOR_PWM = np.array([
    [0.38, 0.62, 0.12, 0.00, 0.00, 0.71, 0.73, 0.11, 0.21],
    [0.31, 0.10, 0.04, 0.00, 0.00, 0.02, 0.06, 0.06, 0.10],
    [0.18, 0.12, 0.77, 1.00, 0.00, 0.24, 0.08, 0.75, 0.14],
    [0.13, 0.16, 0.07, 0.00, 1.00, 0.03, 0.13, 0.08, 0.55],
])
DONOR_OFFSET = -3  # first column relative to the boundary b (first intron base = b)

# rows A, C, G, T; columns intron -15 .. -1 | exon +1 +2   (Zhang 1998)
ACCEPTOR_PWM = np.array([
    [0.15, 0.14, 0.13, 0.11, 0.10, 0.10, 0.11, 0.12, 0.13, 0.11, 0.10, 0.26, 0.07, 1.00, 0.00, 0.26, 0.24],
    [0.24, 0.21, 0.20, 0.22, 0.21, 0.22, 0.25, 0.28, 0.28, 0.25, 0.22, 0.25, 0.55, 0.00, 0.00, 0.11, 0.15],
    [0.10, 0.12, 0.10, 0.09, 0.10, 0.09, 0.10, 0.10, 0.08, 0.05, 0.05, 0.15, 0.01, 0.00, 1.00, 0.50, 0.20],
    [0.51, 0.53, 0.57, 0.58, 0.59, 0.59, 0.54, 0.50, 0.51, 0.59, 0.63, 0.33, 0.37, 0.00, 0.00, 0.13, 0.41],
])
ACCEPTOR_OFFSET = -15  # first column relative to b (first exon base = b)
DONOR_PWM = DONOR_PWM / DONOR_PWM.sum(axis=0)
ACCEPTOR_PWM = ACCEPTOR_PWM / ACCEPTOR_PWM.sum(axis=0)

EXON_BACKGROUND = np.array([0.25, 0.25, 0.26, 0.24])     # A C G T, ~51 % GC
INTRON_BACKGROUND = np.array([0.27, 0.19, 0.19, 0.35])   # A C G T, ~38 % GC, T-rich


@dataclass
class SequenceDataset:
    """Equal-length DNA sequences with integer labels.

    Attributes: ``sequences`` (list of str over ACGTN), ``labels`` (int array), ``classes``
    (label names), ``boundary`` (position of the exon/intron boundary, or None for user data).
    """

    sequences: list[str]
    labels: np.ndarray
    classes: tuple[str, ...] = CLASSES
    boundary: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.sequences) != len(self.labels):
            raise ValueError(f"{len(self.sequences)} sequences but {len(self.labels)} labels")
        if len(self.sequences) == 0:
            raise ValueError("empty data set")
        L = len(self.sequences[0])
        for i, s in enumerate(self.sequences):
            if len(s) != L:
                raise ValueError(f"sequence {i} has length {len(s)}, expected {L} (all windows must be equal length)")
        if self.labels.min() < 0 or self.labels.max() >= len(self.classes):
            raise ValueError(f"labels must be in 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def length(self) -> int:
        return len(self.sequences[0])

    @property
    def X(self) -> np.ndarray:
        """One-hot encoding, shape (n, length, 4), float32."""
        return one_hot(self.sequences)

    def subset(self, idx: np.ndarray) -> "SequenceDataset":
        return SequenceDataset([self.sequences[i] for i in idx], self.labels[idx], self.classes, self.boundary,
                               dict(self.meta))

    def split(self, n_train: int, n_valid: int = 0, seed: int = 0) -> tuple["SequenceDataset", ...]:
        """Deterministic random split into train, (valid,) test (the rest)."""
        if n_train + n_valid >= len(self):
            raise ValueError(f"n_train + n_valid = {n_train + n_valid} leaves no test data out of {len(self)}")
        perm = np.random.default_rng(seed).permutation(len(self))
        parts = [perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:]]
        out = [self.subset(p) for p in parts if len(p)]
        return tuple(out)


def one_hot(sequences: Sequence[str]) -> np.ndarray:
    """One-hot encode DNA (A, C, G, T; N -> 0.25 each; U read as T). Shape (n, L, 4).

    Example
    -------
    >>> one_hot(["ACGT"])[0].argmax(axis=1).tolist()
    [0, 1, 2, 3]
    """
    if len(sequences) == 0:
        raise ValueError("no sequences to encode")
    L = len(sequences[0])
    for i, s in enumerate(sequences):
        if len(s) != L:
            raise ValueError(f"sequence {i} has length {len(s)}, expected {L} (all windows must be equal length)")
    lut = np.full((256, 4), np.nan, dtype=np.float32)
    for k, b in enumerate(BASES):
        lut[ord(b)] = lut[ord(b.lower())] = np.eye(4, dtype=np.float32)[k]
    lut[ord("U")] = lut[ord("u")] = np.eye(4, dtype=np.float32)[3]
    lut[ord("N")] = lut[ord("n")] = 0.25
    arr = np.frombuffer("".join(sequences).encode("ascii", errors="replace"), dtype=np.uint8)
    X = lut[arr].reshape(len(sequences), -1, 4)
    bad = np.isnan(X[..., 0])
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"sequence {i} has an invalid character {sequences[i][j]!r} at position {j} (expected ACGTN)")
    return X


def _sample(rng: np.random.Generator, probs: np.ndarray, n: int, length: int) -> np.ndarray:
    return rng.choice(4, size=(n, length), p=probs)


def _sample_pwm(rng: np.random.Generator, pwm: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(pwm, axis=0)  # (4, k)
    u = rng.random((n, pwm.shape[1]))
    return (u[:, None, :] > cum[None, :, :]).sum(axis=1).clip(0, 3)


def make_splice_dataset(
    n: int = 3000,
    length: int = 60,
    proportions: tuple[float, float, float] = (0.5, 0.25, 0.25),
    decoy_fraction: float = 0.5,
    exon_background: np.ndarray = EXON_BACKGROUND,
    intron_background: np.ndarray = INTRON_BACKGROUND,
    seed: int = 0,
) -> SequenceDataset:
    """Synthetic splice-site windows labelled neither (0) / donor (1) / acceptor (2).

    See the module docstring for the generative model and the literature source.

    Example
    -------
    >>> ds = make_splice_dataset(300, length=40, seed=0)
    >>> ds.X.shape, ds.classes
    ((300, 40, 4), ('neither', 'donor', 'acceptor'))
    >>> all(s[20:22] == "GT" for s, y in zip(ds.sequences, ds.labels) if y == 1)
    True
    """
    if length < 30:
        raise ValueError(f"length must be at least 30 to hold both splice-site profiles (15 intron bases "
                         f"before an acceptor), got {length}")
    if n < 3:
        raise ValueError(f"n must be at least 3, got {n}")
    p = np.asarray(proportions, dtype=float)
    if p.shape != (3,) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"proportions must be three non-negative numbers, got {proportions!r}")
    if not 0 <= decoy_fraction <= 1:
        raise ValueError(f"decoy_fraction must be in [0, 1], got {decoy_fraction!r}")
    rng = np.random.default_rng(seed)
    p = p / p.sum()
    y = rng.choice(3, size=n, p=p)
    b = length // 2
    X = np.empty((n, length), dtype=np.int64)
    # donors: exon | intron + 5' profile
    idx = np.flatnonzero(y == 1)
    X[idx, :b] = _sample(rng, exon_background, len(idx), b)
    X[idx, b:] = _sample(rng, intron_background, len(idx), length - b)
    X[idx, b + DONOR_OFFSET:b + DONOR_OFFSET + DONOR_PWM.shape[1]] = _sample_pwm(rng, DONOR_PWM, len(idx))
    # acceptors: intron | exon + 3' profile
    idx = np.flatnonzero(y == 2)
    X[idx, :b] = _sample(rng, intron_background, len(idx), b)
    X[idx, b:] = _sample(rng, exon_background, len(idx), length - b)
    X[idx, b + ACCEPTOR_OFFSET:b + ACCEPTOR_OFFSET + ACCEPTOR_PWM.shape[1]] = _sample_pwm(rng, ACCEPTOR_PWM, len(idx))
    # negatives: background with decoy dinucleotides at the site positions
    idx = np.flatnonzero(y == 0)
    exonic = rng.random(len(idx)) < 0.5
    X[idx] = np.where(exonic[:, None], _sample(rng, exon_background, len(idx), length),
                      _sample(rng, intron_background, len(idx), length))
    r = rng.random(len(idx))
    gt = idx[r < decoy_fraction / 2]
    ag = idx[(r >= decoy_fraction / 2) & (r < decoy_fraction)]
    X[gt, b], X[gt, b + 1] = 2, 3
    X[ag, b - 2], X[ag, b - 1] = 0, 2
    letters = np.array(list(BASES))
    seqs = ["".join(row) for row in letters[X]]
    return SequenceDataset(seqs, y, CLASSES, b, {"source": "Zhang 1998 splice-site PWMs", "seed": seed,
                                                  "decoy_fraction": decoy_fraction})


def read_sequences(path: str | Path, classes: Sequence[str] | None = None) -> SequenceDataset:
    """Read labelled sequences from FASTA or CSV.

    FASTA: the label is the header's ``label=...`` field or the last ``|``-separated field.
    CSV: columns ``sequence`` and ``label``. Labels may be names (mapped through ``classes``,
    default: ``neither, donor, acceptor`` when all labels are among them, else sorted unique
    names) or integers.

    Example
    -------
    >>> ds = read_sequences("sites.fasta")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"sequence file {str(path)!r} does not exist")
    seqs: list[str] = []
    labs: list[str] = []
    if path.suffix.lower() in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if reader.fieldnames is None or not {"sequence", "label"} <= set(reader.fieldnames):
                raise ValueError(f"{str(path)!r} must have columns 'sequence' and 'label', got {reader.fieldnames}")
            for row in reader:
                seqs.append(row["sequence"].strip().upper())
                labs.append(row["label"].strip())
    else:
        header = None
        buf: list[str] = []

        def flush() -> None:
            if header is None:
                return
            if "label=" in header:
                lab = header.split("label=", 1)[1].split()[0]
            elif "|" in header:
                lab = header.rsplit("|", 1)[1].strip()
            else:
                raise ValueError(f"{str(path)!r}: FASTA header {header!r} carries no label ('label=...' or '|label')")
            seqs.append("".join(buf).upper())
            labs.append(lab)

        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    flush()
                    header, buf = line[1:], []
                else:
                    if header is None:
                        raise ValueError(f"{str(path)!r} is not FASTA: sequence data before the first '>' header")
                    buf.append(line)
        flush()
    if not seqs:
        raise ValueError(f"no sequences found in {str(path)!r}")
    if classes is None:
        if all(lab.isdigit() for lab in labs):
            k = max(int(lab) for lab in labs) + 1
            classes = CLASSES if k <= 3 else tuple(str(i) for i in range(k))
        elif set(labs) <= set(CLASSES):
            classes = CLASSES
        else:
            classes = tuple(sorted(set(labs)))
    classes = tuple(classes)
    y = []
    for i, lab in enumerate(labs):
        if lab.isdigit():
            y.append(int(lab))
        elif lab in classes:
            y.append(classes.index(lab))
        else:
            raise ValueError(f"record {i} of {str(path)!r} has unknown label {lab!r}; classes are {classes}")
    one_hot(seqs)  # validates characters
    return SequenceDataset(seqs, np.array(y), classes, None, {"path": str(path)})


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str] = CLASSES) -> dict:
    """Accuracy, per-class precision/recall/F1, macro F1 and the confusion matrix (JSON-able).

    Example
    -------
    >>> classification_report([0, 1, 2, 1], [0, 1, 2, 2])["accuracy"]
    0.75
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(range(len(classes)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(np.mean(f)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, c in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
