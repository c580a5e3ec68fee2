"""The exact recipes of the bundled PES sets, and regenerating them."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .alloys import regenerate_bundled_alloys
from .bundled import _root
from .pes import generate_pes

__all__ = ["BUNDLED_RECIPES", "regenerate_bundled"]


#: The bundled PES sets and the exact recipe that made each one.
BUNDLED_RECIPES: dict[str, Callable[[], dict]] = {}


def _ethanol_recipe() -> dict:
    from ase.build import molecule

    return dict(
        atoms=molecule("CH3CH2OH"),
        n_frames=1500,
        calculator="gfn2-xtb",
        temperature_K=500.0,
        timestep_fs=0.5,
        stride=20,
        equilibration_steps=400,
        seed=0,
        description=(
            "Ethanol (C2H5OH) sampled by Langevin MD at 500 K, labelled with GFN2-xTB (tblite). "
            "Benchmark split used throughout sciml: `split_frames(frames, 1000, 100, seed=0)` "
            "(1000 train, 100 valid, 400 test)."
        ),
    )


def _cu_recipe() -> dict:
    from ase.build import bulk

    return dict(
        atoms=bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2)),
        n_frames=200,
        calculator="emt",
        temperature_K=300.0,
        timestep_fs=2.0,
        stride=10,
        equilibration_steps=200,
        cell_strain=0.02,
        seed=0,
        description=(
            "Periodic fcc copper, 2x2x2 cubic supercell (32 atoms), Langevin MD at 300 K with ASE's EMT, "
            "each kept frame labelled after a random symmetric cell strain of up to 2% so stress varies."
        ),
    )


BUNDLED_RECIPES["ethanol_gfn2_500K"] = _ethanol_recipe
BUNDLED_RECIPES["cu_emt_300K"] = _cu_recipe


def regenerate_bundled(name: str, folder: str | os.PathLike | None = None, **overrides: Any) -> list:
    """Re-run the exact recipe of a bundled PES set (``overrides`` change any argument)."""
    if name == "alloys_emt":
        return regenerate_bundled_alloys(folder, **overrides)
    if name not in BUNDLED_RECIPES:
        raise ValueError(f"no recipe for {name!r}; recipes: {sorted(BUNDLED_RECIPES)}")
    kwargs = BUNDLED_RECIPES[name]()
    kwargs.update(overrides)
    folder = Path(folder) if folder is not None else _root() / name
    return generate_pes(out=folder / f"{name}.extxyz", name=name, **kwargs)
