"""The exact recipes of the bundled PES sets, and regenerating them."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .alloys import regenerate_bundled_alloys
from .bundled import _root
from .pes import generate_pes

__all__ = ["BUNDLED_RECIPES", "GENERATED_RECIPES", "regenerate_bundled", "generate_recipe"]


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


# Start structures of the held-out molecules (RDKit ETKDG + MMFF94 from SMILES, seed 0; written out here so the
# recipes need no RDKit). Langevin equilibration at the recipe temperature starts from these.
_MALONALDEHYDE = [  # OC=CC=O (enol form), C3H4O2
    ("O", -2.1410, 0.1240, -0.3056), ("C", -0.8117, 0.4458, -0.2531), ("C", 0.1529, -0.3838, 0.1508),
    ("C", 1.5523, 0.0808, 0.1628), ("O", 2.4601, -0.6556, 0.5277), ("H", -2.2654, -0.7941, -0.0049),
    ("H", -0.6564, 1.4663, -0.5852), ("H", -0.0222, -1.3996, 0.4790), ("H", 1.7315, 1.1162, -0.1715),
]
_ASPIRIN = [  # CC(=O)Oc1ccccc1C(=O)O, C9H8O4
    ("C", 3.0775, 1.1828, -0.8399), ("C", 2.0315, 0.4613, -0.0439), ("O", 2.1033, 0.2459, 1.1592),
    ("O", 1.0070, 0.0691, -0.8984), ("C", -0.0568, -0.5332, -0.2204), ("C", -0.1034, -1.9310, -0.2375),
    ("C", -1.1532, -2.5938, 0.3952), ("C", -2.1565, -1.8626, 1.0304), ("C", -2.1169, -0.4643, 1.0292),
    ("C", -1.0672, 0.2193, 0.3958), ("C", -1.0341, 1.7053, 0.3656), ("O", -0.2294, 2.4107, -0.2144),
    ("O", -2.0363, 2.2586, 1.0757), ("H", 2.6318, 2.0426, -1.3464), ("H", 3.5280, 0.4996, -1.5640),
    ("H", 3.8583, 1.5462, -0.1656), ("H", 0.6782, -2.4997, -0.7333), ("H", -1.1890, -3.6806, 0.3953),
    ("H", -2.9744, -2.3803, 1.5265), ("H", -2.9159, 0.0821, 1.5254), ("H", -1.8828, 3.2222, 0.9833),
]


def _atoms(rows):
    from ase import Atoms

    return Atoms([r[0] for r in rows], positions=[r[1:] for r in rows])


def _gfn2_500k(rows, description: str) -> dict:
    """The molecular recipe of the GP sets: Langevin MD at 500 K labelled with GFN2-xTB, 1500 frames."""
    return dict(atoms=_atoms(rows), n_frames=1500, calculator="gfn2-xtb", temperature_K=500.0, timestep_fs=0.5,
                stride=20, equilibration_steps=400, seed=0, description=description)


def _malonaldehyde_recipe() -> dict:
    return _gfn2_500k(_MALONALDEHYDE, (
        "Malonaldehyde (enol, C3H4O2) sampled by Langevin MD at 500 K, labelled with GFN2-xTB (tblite). "
        "Held out from every tuning decision of sciml.gp (defaults, kernels, descriptors were chosen on "
        "ethanol): the GP benchmarks report on it. Split: `split_frames(frames, 1000, 100, seed=0)`."))


def _aspirin_recipe() -> dict:
    return _gfn2_500k(_ASPIRIN, (
        "Aspirin (C9H8O4, 21 atoms) sampled by Langevin MD at 500 K, labelled with GFN2-xTB (tblite). "
        "Not bundled (4.5 MB): regenerate with `python datasets/generate_pes.py aspirin_gfn2_500K --out DIR` "
        "(about 15 min on one core). Used for the large-N GP (1000 frames = 64,000 outputs)."))


BUNDLED_RECIPES["malonaldehyde_gfn2_500K"] = _malonaldehyde_recipe

#: Recipes of sets too large to bundle: generated locally, deterministically (seeded), with the same card.
GENERATED_RECIPES: dict[str, Callable[[], dict]] = {"aspirin_gfn2_500K": _aspirin_recipe}


def generate_recipe(name: str, folder: str | os.PathLike, **overrides: Any) -> list:
    """Run a recipe of :data:`GENERATED_RECIPES` (or a bundled one) into ``folder``; returns the frames.

    Example
    -------
    >>> frames = generate_recipe("aspirin_gfn2_500K", "data/aspirin")   # doctest: +SKIP
    """
    recipes = {**BUNDLED_RECIPES, **GENERATED_RECIPES}
    if name not in recipes:
        raise ValueError(f"no recipe for {name!r}; recipes: {sorted(recipes)}")
    kwargs = recipes[name]()
    kwargs.update(overrides)
    return generate_pes(out=Path(folder) / f"{name}.extxyz", name=name, **kwargs)


def regenerate_bundled(name: str, folder: str | os.PathLike | None = None, **overrides: Any) -> list:
    """Re-run the exact recipe of a bundled PES set (``overrides`` change any argument)."""
    if name == "alloys_emt":
        return regenerate_bundled_alloys(folder, **overrides)
    if name in GENERATED_RECIPES:
        if folder is None:
            raise ValueError(f"{name!r} is not bundled: give the folder to generate it into")
        return generate_recipe(name, folder, **overrides)
    if name not in BUNDLED_RECIPES:
        raise ValueError(f"no recipe for {name!r}; recipes: {sorted(BUNDLED_RECIPES)}")
    kwargs = BUNDLED_RECIPES[name]()
    kwargs.update(overrides)
    folder = Path(folder) if folder is not None else _root() / name
    return generate_pes(out=folder / f"{name}.extxyz", name=name, **kwargs)
