"""Where bundled data live, and loading the reference PES sets.

Bundled data sit in the repository's top-level ``datasets/`` folder, which is installed as the
package ``sciml._bundled`` (editable or wheel installs alike). Nothing is ever downloaded.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

__all__ = ["dataset_path", "list_datasets", "dataset_card", "load_pes"]


def _root() -> Path:
    return Path(str(resources.files("sciml._bundled")))


def dataset_path(name: str) -> Path:
    """Folder of a bundled data set (``datasets/<name>/``)."""
    p = _root() / name
    if not p.is_dir():
        raise ValueError(f"unknown data set {name!r}; bundled: {list_datasets()}")
    return p


def list_datasets() -> list[str]:
    """Names of the bundled data sets."""
    return sorted(p.name for p in _root().iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def dataset_card(name: str) -> dict:
    """The dataset card (``card.json``) of a bundled PES set, or the Bumpus card text."""
    folder = dataset_path(name)
    card = folder / "card.json"
    if card.exists():
        return json.loads(card.read_text())
    return {"name": name, "README": (folder / "README.md").read_text()}


def load_pes(name: str, index: str = ":") -> list:
    """Load a bundled reference PES set as a list of ``ase.Atoms`` with labels.

    Example
    -------
    >>> from sciml.datasets import load_pes
    >>> frames = load_pes("ethanol_gfn2_500K")  # doctest: +SKIP
    >>> frames[0].get_forces().shape            # doctest: +SKIP
    (9, 3)
    """
    from ..atoms import read_frames

    folder = dataset_path(name)
    files = sorted(folder.glob("*.extxyz"))
    if not files:
        raise ValueError(f"data set {name!r} has no .extxyz file (it is not a PES set)")
    card = dataset_card(name)
    require = ("energy", "forces", "stress") if card.get("periodic") else ("energy", "forces")
    return read_frames(files[0], index=index, require=require)
