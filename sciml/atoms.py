"""Reading, writing, validating and splitting atomic data sets.

Frames are :class:`ase.Atoms` objects whose reference labels (energy in eV,
forces in eV/Å, stress in eV/Å^3 in ASE's sign convention and Voigt order
``xx yy zz yz xz xy``) are attached through a
:class:`~ase.calculators.singlepoint.SinglePointCalculator`, exactly as
``ase.io.read`` returns them from extxyz. Validation names the first bad
frame and the problem instead of dropping it.

Example
-------
>>> from sciml.atoms import read_frames, split_frames  # doctest: +SKIP
>>> frames = read_frames("ethanol.extxyz")             # doctest: +SKIP
>>> train, valid, test = split_frames(frames, 1000, 100, seed=0)  # doctest: +SKIP
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers, chemical_symbols

from ._io import atomic_write

__all__ = [
    "read_frames",
    "write_frames",
    "validate_frames",
    "split_frames",
    "split_by_trajectory",
    "frame_labels",
    "attach_labels",
    "MIN_DISTANCE",
]

#: Two atoms closer than this (Å) are treated as overlapping (an input error).
MIN_DISTANCE = 0.1

_DB_SUFFIXES = {".db", ".json"}


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"data file not found: {p}")
    if p.is_dir():
        raise ValueError(f"expected a data file, got a directory: {p}")
    return p


def read_frames(
    path: str | os.PathLike,
    index: str | int | slice = ":",
    require: Sequence[str] = ("energy", "forces"),
    validate: bool = True,
) -> list[Atoms]:
    """Read frames with their labels from an extxyz file or an ASE database.

    Parameters
    ----------
    path:
        ``.extxyz``/``.xyz`` (any format ``ase.io.read`` knows) or an ASE
        database (``.db``).
    index:
        Which frames (``":"`` = all; ASE index syntax).
    require:
        Labels every frame must carry (subset of ``energy``, ``forces``,
        ``stress``); pass ``()`` to read unlabelled structures.
    validate:
        Run :func:`validate_frames` (default) and raise ``ValueError`` naming
        the first bad frame.

    Example
    -------
    >>> frames = read_frames("train.extxyz")  # doctest: +SKIP
    >>> frames[0].get_potential_energy()      # doctest: +SKIP
    """
    p = _check_path(path)
    if p.suffix in _DB_SUFFIXES:
        frames = _read_db(p, index)
    else:
        import ase.io

        out = ase.io.read(str(p), index=index)
        frames = out if isinstance(out, list) else [out]
    if not frames:
        raise ValueError(f"{p}: file contains no structures")
    if validate:
        validate_frames(frames, require=require, source=str(p))
    return frames


def _read_db(path: Path, index: str | int | slice) -> list[Atoms]:
    from ase.db import connect

    frames = []
    with connect(str(path)) as db:
        for row in db.select():
            atoms = row.toatoms(add_additional_information=False)
            frames.append(atoms)
    sel = _index_to_slice(index)
    picked = frames[sel]
    return picked if isinstance(picked, list) else [picked]


def _index_to_slice(index: str | int | slice) -> int | slice:
    if isinstance(index, (int, slice)):
        return index
    if index == ":":
        return slice(None)
    parts = [int(x) if x else None for x in index.split(":")]
    if len(parts) == 1:
        return parts[0]  # type: ignore[return-value]
    return slice(*parts)


def write_frames(path: str | os.PathLike, frames: Iterable[Atoms], append: bool = False) -> Path:
    """Write frames with their labels to extxyz (or an ASE ``.db``) atomically.

    The file is written to a temporary name and renamed into place, so an
    interrupted write never leaves a truncated file. ``append=True`` keeps the
    existing frames (rewriting the whole file atomically).

    Example
    -------
    >>> write_frames("out.extxyz", frames)  # doctest: +SKIP
    """
    frames = list(frames)
    p = Path(path)
    if append and p.exists():
        frames = read_frames(p, require=(), validate=False) + frames
    if p.suffix in _DB_SUFFIXES:
        from ase.db import connect

        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp{p.suffix}")
        if tmp.exists():
            tmp.unlink()
        with connect(str(tmp), append=False) as db:
            for atoms in frames:
                db.write(atoms)
        os.replace(tmp, p)
        return p
    import ase.io

    with atomic_write(p, "w") as fh:
        ase.io.write(fh, frames, format="extxyz")
    return p


def frame_labels(atoms: Atoms) -> dict:
    """Return the reference labels of one frame.

    Returns a dict with ``energy`` (float, eV, or ``None``), ``forces``
    (``(n, 3)`` array in eV/Å, or ``None``) and ``stress`` (Voigt 6-vector in
    eV/Å^3, or ``None``).
    """
    calc = atoms.calc
    res = getattr(calc, "results", {}) if calc is not None else {}
    energy = res.get("energy", res.get("free_energy"))
    forces = res.get("forces")
    stress = res.get("stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            s = stress
            stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    return {
        "energy": None if energy is None else float(energy),
        "forces": None if forces is None else np.asarray(forces, dtype=float),
        "stress": stress,
    }


def attach_labels(
    atoms: Atoms,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    stress: np.ndarray | None = None,
) -> Atoms:
    """Return a copy of ``atoms`` carrying the given labels (SinglePointCalculator)."""
    out = atoms.copy()
    results = {}
    if energy is not None:
        results["energy"] = float(energy)
        results["free_energy"] = float(energy)
    if forces is not None:
        results["forces"] = np.asarray(forces, dtype=float)
    if stress is not None:
        results["stress"] = np.asarray(stress, dtype=float)
    out.calc = SinglePointCalculator(out, **results)
    return out


def validate_frames(
    frames: Sequence[Atoms],
    require: Sequence[str] = ("energy", "forces"),
    species: Iterable[str | int] | None = None,
    source: str = "frames",
    min_distance: float = MIN_DISTANCE,
) -> None:
    """Check frames and raise ``ValueError`` naming the first bad one.

    Checks: the object is an ``ase.Atoms``; it has atoms; positions (and cell
    for periodic frames) are finite; no two atoms closer than
    ``min_distance`` Å (minimum image under PBC); elements are known and, if
    ``species`` is given, among them; required labels exist, are finite and
    have the right shape (energy scalar, forces ``(n, 3)``, stress 6 or 3x3).

    Example
    -------
    >>> validate_frames(frames, require=("energy", "forces"))  # doctest: +SKIP
    """
    unknown_req = set(require) - {"energy", "forces", "stress"}
    if unknown_req:
        raise ValueError(f"unknown label(s) in require: {sorted(unknown_req)}")
    allowed = None
    if species is not None:
        allowed = {_to_number(s) for s in species}
    if len(frames) == 0:
        raise ValueError(f"{source}: no frames given")
    for i, atoms in enumerate(frames):
        where = f"{source}: frame {i}"
        if not isinstance(atoms, Atoms):
            raise TypeError(f"{where}: expected ase.Atoms, got {type(atoms).__name__}")
        n = len(atoms)
        if n == 0:
            raise ValueError(f"{where}: empty structure (no atoms)")
        pos = atoms.get_positions()
        if not np.all(np.isfinite(pos)):
            bad = np.unique(np.argwhere(~np.isfinite(pos))[:, 0])
            raise ValueError(f"{where}: non-finite (NaN/inf) positions for atom(s) {bad.tolist()}")
        if atoms.pbc.any() and not np.all(np.isfinite(atoms.cell.array)):
            raise ValueError(f"{where}: non-finite cell")
        if atoms.pbc.any() and abs(atoms.cell.volume) < 1e-8 and atoms.pbc.all():
            raise ValueError(f"{where}: periodic frame with a degenerate (zero-volume) cell")
        z = atoms.numbers
        if np.any(z <= 0) or np.any(z >= len(chemical_symbols)):
            raise ValueError(f"{where}: unknown element number(s) {sorted(set(z[(z <= 0) | (z >= len(chemical_symbols))].tolist()))}")
        if allowed is not None:
            extra = sorted(set(z.tolist()) - allowed)
            if extra:
                names = [chemical_symbols[k] for k in extra]
                known = [chemical_symbols[k] for k in sorted(allowed)]
                raise ValueError(f"{where}: element(s) {names} not among the model's species {known}")
        if n > 1 and min_distance > 0:
            _check_overlaps(atoms, where, min_distance)
        labels = frame_labels(atoms)
        for key in require:
            val = labels[key]
            if val is None:
                raise ValueError(f"{where}: missing {key}")
            arr = np.asarray(val, dtype=float)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: non-finite (NaN/inf) {key}")
            if key == "forces" and arr.shape != (n, 3):
                raise ValueError(f"{where}: forces have shape {arr.shape}, expected ({n}, 3)")
            if key == "stress" and arr.shape not in ((6,), (3, 3)):
                raise ValueError(f"{where}: stress has shape {arr.shape}, expected (6,) or (3, 3)")


def _to_number(s: str | int) -> int:
    if isinstance(s, (int, np.integer)):
        return int(s)
    if s not in atomic_numbers:
        raise ValueError(f"unknown element symbol {s!r}")
    return atomic_numbers[s]


def _check_overlaps(atoms: Atoms, where: str, min_distance: float) -> None:
    if atoms.pbc.any():
        from ase.neighborlist import neighbor_list

        i, j, d = neighbor_list("ijd", atoms, min_distance)
        if len(i):
            k = int(np.argmin(d))
            raise ValueError(
                f"{where}: atoms {int(i[k])} and {int(j[k])} are {d[k]:.3g} Å apart "
                f"(closer than {min_distance} Å: overlapping atoms)"
            )
        return
    from scipy.spatial import cKDTree

    pairs = cKDTree(atoms.positions).query_pairs(min_distance, output_type="ndarray")
    if len(pairs):
        a, b = (int(x) for x in pairs[0])
        d = float(np.linalg.norm(atoms.positions[a] - atoms.positions[b]))
        raise ValueError(
            f"{where}: atoms {a} and {b} are {d:.3g} Å apart (closer than {min_distance} Å: overlapping atoms)"
        )


def split_frames(
    frames: Sequence[Atoms],
    n_train: int,
    n_valid: int,
    n_test: int | None = None,
    seed: int = 0,
) -> tuple[list[Atoms], list[Atoms], list[Atoms]]:
    """Deterministic random train/valid/test split.

    The frames are permuted with ``numpy.random.default_rng(seed)``; train is
    the first ``n_train``, valid the next ``n_valid``, test the next
    ``n_test`` (default: all the rest). The same seed always gives the same
    split, on any machine.

    Example
    -------
    >>> train, valid, test = split_frames(frames, 1000, 100, seed=0)  # doctest: +SKIP
    """
    n = len(frames)
    for name, v in (("n_train", n_train), ("n_valid", n_valid)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    rest = n - n_train - n_valid
    if n_test is None:
        n_test = rest
    if n_test < 0 or n_train + n_valid + n_test > n:
        raise ValueError(
            f"split asks for {n_train} train + {n_valid} valid + {n_test} test frames "
            f"but only {n} are available"
        )
    perm = np.random.default_rng(seed).permutation(n)
    pick = lambda idx: [frames[int(k)] for k in idx]  # noqa: E731
    return (
        pick(perm[:n_train]),
        pick(perm[n_train : n_train + n_valid]),
        pick(perm[n_train + n_valid : n_train + n_valid + n_test]),
    )


def split_by_trajectory(
    frames: Sequence[Atoms],
    n_train: int,
    n_valid: int,
    seed: int = 0,
    key: str = "trajectory",
) -> tuple[list[Atoms], list[Atoms], list[Atoms]]:
    """Train/valid/test split that keeps every trajectory whole (no test frame next to a training frame).

    Trajectories (``atoms.info[key]``) are shuffled with ``numpy.random.default_rng(seed)``; whole
    trajectories go to train until it holds at least ``n_train`` frames, then to valid until it
    holds at least ``n_valid``; the rest is the test set. Frames keep their order within a part.

    Example
    -------
    >>> from sciml.datasets import load_alloys
    >>> train, valid, test = split_by_trajectory(load_alloys("full"), 1000, 100, seed=0)  # doctest: +SKIP
    """
    for name, v in (("n_train", n_train), ("n_valid", n_valid)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    groups: dict = {}
    for i, a in enumerate(frames):
        if key not in a.info:
            raise ValueError(f"frame {i} has no info[{key!r}]: cannot split by trajectory (use split_frames)")
        groups.setdefault(a.info[key], []).append(i)
    order = [list(groups)[k] for k in np.random.default_rng(seed).permutation(len(groups))]
    parts: list[list[int]] = [[], [], []]
    for t in order:
        part = 0 if len(parts[0]) < n_train else (1 if len(parts[1]) < n_valid else 2)
        parts[part].extend(groups[t])
    if len(parts[0]) < n_train or len(parts[1]) < n_valid:
        raise ValueError(
            f"split asks for {n_train} train + {n_valid} valid frames but the {len(groups)} trajectories hold "
            f"only {len(frames)} frames"
        )
    return tuple([frames[i] for i in sorted(p)] for p in parts)  # type: ignore[return-value]
