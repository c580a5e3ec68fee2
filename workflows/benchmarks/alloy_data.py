"""The alloy benchmark split (sciml side only): ``split_by_trajectory(load_alloys("full"), 1000, 100, seed=0)``
written once to extxyz, and the random training subsets of the learning curves.

    train, valid, test = alloy_split(Path("bench-data/alloys"))   # paths to extxyz files
"""
from __future__ import annotations

from pathlib import Path


def alloy_split(data_dir: Path) -> dict[str, Path]:
    """The benchmark split as ``{train, valid, test}`` extxyz paths in ``data_dir`` (written on first use)."""
    paths = {k: Path(data_dir) / f"{k}.extxyz" for k in ("train", "valid", "test")}
    if not all(p.exists() for p in paths.values()):
        from sciml.atoms import split_by_trajectory, write_frames
        from sciml.datasets import load_alloys

        Path(data_dir).mkdir(parents=True, exist_ok=True)
        for k, frames in zip(paths, split_by_trajectory(load_alloys("full"), 1000, 100, seed=0)):
            write_frames(paths[k], frames)
    return paths


def subset(frames: list, n: int, seed: int = 0) -> list:
    """``n`` frames drawn at random (without replacement, order kept) from ``frames``; all if ``n >= len``."""
    import numpy as np

    if n >= len(frames):
        return list(frames)
    idx = np.sort(np.random.default_rng(seed).choice(len(frames), size=n, replace=False))
    return [frames[i] for i in idx]


def train_subset_file(data_dir: Path, n: int, seed: int = 0) -> Path:
    """The first-``n`` random training subset as its own extxyz file (``train_n{n}.extxyz``)."""
    paths = alloy_split(data_dir)
    out = Path(data_dir) / f"train_n{n}.extxyz"
    if not out.exists():
        from sciml.atoms import read_frames, write_frames

        write_frames(out, subset(read_frames(paths["train"]), n, seed))
    return out
