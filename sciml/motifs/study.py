"""What circuits does training carve into a recurrent network? Before/after motif study.

For each of K seeds: generate the splice-site task, train an RNN by BPTT, turn the
recurrent matrix at initialisation and after training into graphs **at the same edge
density** (``weights_to_graph(W, threshold=density, mode="density")``), and compute motif
significance (Z-scores, SP) against a null model. Across seeds, each motif's Z-score
after training is compared with its Z-score before training with a paired t-test and a
Wilcoxon signed-rank test (Benjamini-Hochberg adjusted over motifs). Each trained network
is also calibrated (a temperature fitted on its validation windows) and its expected
calibration error on the test windows is reported before and after.

:func:`run_seed` is the per-seed job (top-level, JSON-able result; the ``rnn_motifs``
workflow runs it as one job per seed), :func:`analyse_seeds` combines results into a
:class:`~sciml.motifs.comparison.TrainingComparison` and :func:`compare_training` does both.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from sciml._io import atomic_write, atomic_write_json
from sciml._runtime import quiet_progress

from .calibration import expected_calibration_error, reliability_table
from .comparison import TrainingComparison
from .engine import ENGINES
from .graphs import weights_to_graph
from .plots import plot_saliency_logo, plot_training_history
from .rnn import RNNClassifier
from .saliency import saliency_logo, saliency_profile
from .significance import motif_significance
from .signed import ffl_types
from .tasks import SequenceDataset, classification_report, make_splice_dataset

__all__ = ["StudyConfig", "run_seed", "analyse_seeds", "compare_training", "TrainingComparison", "load_config"]


@dataclass
class StudyConfig:
    """Settings of a before/after-training motif study (YAML keys = field names)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # one trained network per seed
    n_train: int = 2000  # training windows
    n_valid: int = 300  # validation windows (early stopping)
    n_test: int = 500  # held-out windows (accuracy, F1, saliency)
    length: int = 32  # window length (>= 30); the exon/intron boundary is at length // 2
    decoy_fraction: float = 0.5  # share of negatives carrying a decoy GT or AG at the site
    data_seed: int = 0  # seed of the generated data (the same data for every network seed)
    hidden_size: int = 32  # hidden units = nodes of the circuit graph
    cell: str = "rnn"  # rnn (Elman, tanh) | gru | lstm
    readout: str = "last"  # last | mean hidden state
    epochs: int = 30  # maximum BPTT epochs
    lr: float = 5e-3  # Adam learning rate
    batch_size: int = 32  # minibatch size
    clip: float = 1.0  # gradient-norm clipping
    patience: int = 6  # early-stopping patience (epochs)
    snapshot_every: int = 10  # write weight snapshots every N epochs (plus init and final)
    density: float = 0.1  # edge density of the circuit graphs (same before and after training)
    size: int = 3  # motif size: 3 or 4
    null: str = "mutual"  # null model: mutual | degree | er
    n_random: int = 200  # random graphs per network
    n_switches_per_edge: float = 10.0  # attempted edge switches per edge in each random graph
    engine: str = "auto"  # census/null-model kernels: auto | numba | numpy (recorded per seed)
    calibration: str = "temperature"  # on the validation windows: none | temperature | biases (+ per-class)
    device: str = "cpu"  # torch device (cpu, cuda, auto)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density!r}")
        if self.size not in (3, 4):
            raise ValueError(f"size must be 3 or 4, got {self.size!r}")
        if self.null not in ("mutual", "degree", "er"):
            raise ValueError(f"null must be 'mutual', 'degree' or 'er', got {self.null!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.calibration not in ("none", "temperature", "biases"):
            raise ValueError(f"calibration must be 'none', 'temperature' or 'biases', got {self.calibration!r}")

    def job_kwargs(self) -> dict:
        """Keyword arguments of :func:`run_seed` (everything except ``seeds``)."""
        d = asdict(self)
        d.pop("seeds")
        return d


def load_config(path: str | Path) -> StudyConfig:
    """Read a YAML study config; unknown keys raise a ``ValueError`` naming them."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} must hold a mapping of settings")
    if None in data and "null" not in data:  # YAML reads an unquoted `null:` key as None
        data["null"] = data.pop(None)
    known = {f.name for f in fields(StudyConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown keys in {str(path)!r}: {unknown}; allowed: {sorted(known)}")
    return StudyConfig(**data)


def _graph_stats(W: np.ndarray, cfg: StudyConfig, seed: int) -> dict:
    """Motif statistics of one circuit at the study's edge density."""
    G = weights_to_graph(W, threshold=cfg.density, mode="density")
    df = motif_significance(G, size=cfg.size, null=cfg.null, n_random=cfg.n_random, seed=seed,
                            n_switches_per_edge=cfg.n_switches_per_edge, progress=False, engine=cfg.engine)
    keys = [str(k) for k in df.index]
    return {
        "n_edges": G.number_of_edges(),
        "threshold": G.graph["threshold"],
        "n_self_loops": len(G.graph["self_loops"]),
        "n_mutual_edges": sum(1 for u, v in G.edges if G.has_edge(v, u)),
        "engine": df.attrs["engine"],
        "count": dict(zip(keys, df["count"].astype(int).tolist())),
        "z": dict(zip(keys, df["z"].tolist())),
        "sp": dict(zip(keys, df["sp"].tolist())),
        "random_mean": dict(zip(keys, df["random_mean"].tolist())),
        "ffl": ffl_types(G),
    }


def _calibrate(clf: RNNClassifier, cfg: StudyConfig, valid: SequenceDataset, test: SequenceDataset) -> dict | None:
    """Fit the calibration on the validation windows; ECE, NLL and reliability on the test windows."""
    if cfg.calibration == "none":
        return None
    p_before = clf.predict_proba(test.X)
    clf.calibrate(valid.X, valid.labels, biases=cfg.calibration == "biases")
    p_after = clf.predict_proba(test.X)
    c, y = clf.calibration_, test.labels
    nll = [float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-300, None)))) for p in (p_before, p_after)]
    return {
        "method": cfg.calibration, "temperature": c["temperature"], "biases": c["biases"], "n_bins": c["n_bins"],
        "n_valid": c["n"], "ece_valid_before": c["ece_before"], "ece_valid_after": c["ece_after"],
        "ece_test_before": expected_calibration_error(y, p_before, c["n_bins"]),
        "ece_test_after": expected_calibration_error(y, p_after, c["n_bins"]),
        "nll_test_before": nll[0], "nll_test_after": nll[1],
        "accuracy_test_before": float((p_before.argmax(1) == y).mean()),
        "reliability_before": reliability_table(y, p_before, c["n_bins"]).to_dict(orient="list"),
        "reliability_after": reliability_table(y, p_after, c["n_bins"]).to_dict(orient="list"),
    }


def _write_seed_files(workdir: Path, clf: RNNClassifier, ds: SequenceDataset, test: SequenceDataset, prof,
                      seed: int) -> None:
    """Logos, training history, saliency profile and the fitted (calibrated) model of one seed."""
    for k, name in enumerate(ds.classes):
        if k > 0:  # donor and acceptor logos
            plot_saliency_logo(saliency_logo(clf, test.X, test.labels, k), workdir / f"logo_{name}.png",
                               boundary=ds.boundary, title=f"{name} sites: gradient x input (seed {seed})")
    plot_training_history(clf.history_, workdir / "history.png")
    with atomic_write(workdir / "history.csv") as fh:
        clf.history_.to_csv(fh, index=False)
    with atomic_write(workdir / "saliency.csv") as fh:
        prof.to_csv(fh)
    clf.save(workdir / "model.pt")


def run_seed(seed: int, workdir: str | Path | None = None, **settings: Any) -> dict:
    """Train one RNN (seed ``seed``), calibrate it, and analyse its circuit before and after training.

    ``settings`` are :class:`StudyConfig` fields (minus ``seeds``). Writes weight snapshots,
    ``history.csv``, ``saliency.csv`` and ``model.pt`` (:meth:`RNNClassifier.save`) into
    ``workdir`` when given. Returns a JSON-able dict; ``before``/``after`` record the motif
    ``engine`` that drew the null graphs, ``calibration`` the ECE before/after.

    Example
    -------
    >>> res = run_seed(0, epochs=2, n_train=300, n_random=20)  # doctest: +SKIP
    >>> sorted(res["before"]["z"])[:2]  # doctest: +SKIP
    ['021C', '021D']
    """
    cfg = StudyConfig(seeds=[seed], **settings)
    ds = make_splice_dataset(cfg.n_train + cfg.n_valid + cfg.n_test, length=cfg.length,
                             decoy_fraction=cfg.decoy_fraction, seed=cfg.data_seed)
    train, valid, test = ds.split(cfg.n_train, cfg.n_valid, seed=cfg.data_seed)
    snapdir = Path(workdir) / "snapshots" if workdir is not None else None
    clf = RNNClassifier(
        hidden_size=cfg.hidden_size, cell=cfg.cell, readout=cfg.readout, epochs=cfg.epochs, lr=cfg.lr,
        batch_size=cfg.batch_size, clip=cfg.clip, patience=cfg.patience, snapshot_dir=snapdir,
        snapshot_every=cfg.snapshot_every, seed=seed, device=cfg.device,
    ).fit(train.X, train.labels, valid.X, valid.labels)
    calibration = _calibrate(clf, cfg, valid, test)
    report = classification_report(test.labels, clf.predict(test.X), ds.classes)
    W0, W1 = clf.initial_weights_, clf.recurrent_weights_
    before, after = _graph_stats(W0, cfg, seed), _graph_stats(W1, cfg, seed)
    prof = saliency_profile(clf, test.X, test.labels, ds.classes)
    if workdir is not None:
        _write_seed_files(Path(workdir), clf, ds, test, prof, seed)
    return {
        "seed": seed,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "f1": {c: v["f1"] for c, v in report["per_class"].items()},
        "best_epoch": clf.best_epoch_,
        "epochs_run": int(len(clf.history_)),
        "boundary": ds.boundary,
        "before": before,
        "after": after,
        "calibration": calibration,
        "weight_change": float(np.linalg.norm(W1 - W0) / np.linalg.norm(W0)),
        "saliency": {c: prof[c].tolist() for c in prof.columns},
        "config": cfg.job_kwargs(),
    }


def analyse_seeds(results: list[dict] | dict[str, dict]) -> TrainingComparison:
    """Combine per-seed results of :func:`run_seed` (a list, or a dict job name -> result)."""
    if isinstance(results, dict):
        results = list(results.values())
    return TrainingComparison(list(results))


def compare_training(config: StudyConfig | None = None, out: str | Path | None = None, progress: bool = True,
                     **overrides: Any) -> TrainingComparison:
    """Run the whole study: one :func:`run_seed` per seed, then :func:`analyse_seeds`.

    ``overrides`` replace fields of ``config`` (default :class:`StudyConfig`). With ``out``,
    per-seed folders, tables, plots and ``report.md`` are written there (per-seed results are
    reused when ``out/seed_<k>/result.json`` exists).

    Example
    -------
    >>> cmp = compare_training(seeds=[0, 1, 2], epochs=5, n_random=50)  # doctest: +SKIP
    >>> cmp.table().loc["030T", ["z_before", "z_after", "p_ttest"]]  # doctest: +SKIP
    """
    cfg = config or StudyConfig()
    if overrides:
        d = asdict(cfg)
        unknown = sorted(set(overrides) - set(d))
        if unknown:
            raise ValueError(f"unknown study settings {unknown}")
        d.update(overrides)
        cfg = StudyConfig(**d)
    seeds = list(cfg.seeds)
    it = seeds
    if progress and not quiet_progress():
        from tqdm.auto import tqdm

        it = tqdm(seeds, desc="seeds", unit="seed")
    results = []
    for s in it:
        wd = Path(out) / f"seed_{s}" if out is not None else None
        if wd is not None and (wd / "result.json").exists():
            results.append(json.loads((wd / "result.json").read_text()))
            continue
        res = run_seed(s, workdir=wd, **cfg.job_kwargs())
        if wd is not None:
            atomic_write_json(wd / "result.json", res)
        results.append(res)
    cmp = TrainingComparison(results)
    if out is not None:
        cmp.save(out)
    return cmp
