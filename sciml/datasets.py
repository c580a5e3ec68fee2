"""Bundled data sets and the recipe that generates reference PES data.

Bundled data live in the repository's top-level ``datasets/`` folder, which is
installed as the package ``sciml._bundled`` (editable or wheel installs alike).

- :func:`load_bumpus` -- Bumpus (1898) house-sparrow survival data.
- :func:`load_pes` -- reference potential-energy-surface sets (extxyz) generated
  with :func:`generate_pes` by real calculators (tblite GFN2-xTB, ASE EMT).
- :func:`generate_pes` -- Langevin MD with any ASE calculator, writing extxyz
  with energies, forces (and stress for periodic cells) plus a dataset card.

Nothing is ever downloaded.
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["load_bumpus", "load_pes", "list_datasets", "dataset_path", "dataset_card", "generate_pes", "make_calculator"]


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


# ----------------------------------------------------------------------------- Bumpus
_BUMPUS_COLUMNS = {
    "BumpusNumber": "bumpus_number",
    "sex": "sex",
    "age": "age",
    "survival": "survival",
    "total_length_mm": "total_length_mm",
    "alar.extent_mm": "alar_extent_mm",
    "weight_g": "weight_g",
    "length_beak_and_head_mm_": "length_beak_and_head_mm",
    "length_humerus_in": "length_humerus_in",
    "length_femur_in": "length_femur_in",
    "length_tibiotarsus_in": "length_tibiotarsus_in",
    "skull_width_in": "skull_width_in",
    "keel_length_in": "keel_length_in",
}

BUMPUS_TRAITS = [
    "total_length_mm",
    "alar_extent_mm",
    "weight_g",
    "length_beak_and_head_mm",
    "length_humerus_in",
    "length_femur_in",
    "length_tibiotarsus_in",
    "skull_width_in",
    "keel_length_in",
]


def load_bumpus() -> "pandas.DataFrame":  # noqa: F821
    """Bumpus's 1898 house-sparrow data: 136 birds, 72 survived.

    Columns (snake_case): ``bumpus_number`` (int; Bumpus's specimen number,
    repeats across groups), ``sex`` (category ``m``/``f``), ``age`` (category
    ``a`` adult / ``y`` young; missing for females), ``survival`` (``yes``/``no``,
    as in the source), ``survived`` (int 0/1), and the nine measurements in
    :data:`BUMPUS_TRAITS` (mm, g, and inches as in the source).

    Example
    -------
    >>> from sciml.datasets import load_bumpus
    >>> df = load_bumpus()
    >>> len(df), int(df.survived.sum())
    (136, 72)
    """
    import pandas as pd

    df = pd.read_csv(dataset_path("bumpus") / "bumpus.csv")
    missing = set(_BUMPUS_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"bundled bumpus.csv lacks columns {sorted(missing)}")
    df = df.rename(columns=_BUMPUS_COLUMNS)[list(_BUMPUS_COLUMNS.values())]
    df["bumpus_number"] = df["bumpus_number"].astype("int64")
    df["sex"] = pd.Categorical(df["sex"], categories=["m", "f"])
    df["age"] = pd.Categorical(df["age"], categories=["a", "y"])
    df["survival"] = df["survival"].astype(str)
    bad = set(df["survival"]) - {"yes", "no"}
    if bad:
        raise ValueError(f"bundled bumpus.csv: unexpected survival values {sorted(bad)}")
    df.insert(4, "survived", (df["survival"] == "yes").astype("int64"))
    for col in BUMPUS_TRAITS:
        df[col] = df[col].astype("float64")
    return df


# ----------------------------------------------------------------------------- PES sets
def load_pes(name: str, index: str = ":") -> list:
    """Load a bundled reference PES set as a list of ``ase.Atoms`` with labels.

    Example
    -------
    >>> from sciml.datasets import load_pes
    >>> frames = load_pes("ethanol_gfn2_500K")  # doctest: +SKIP
    >>> frames[0].get_forces().shape            # doctest: +SKIP
    (9, 3)
    """
    from .atoms import read_frames

    folder = dataset_path(name)
    files = sorted(folder.glob("*.extxyz"))
    if not files:
        raise ValueError(f"data set {name!r} has no .extxyz file (it is not a PES set)")
    card = dataset_card(name)
    require = ("energy", "forces", "stress") if card.get("periodic") else ("energy", "forces")
    return read_frames(files[0], index=index, require=require)


def make_calculator(spec: str | Any | None, atoms: "Atoms") -> Any:  # noqa: F821
    """Build an ASE calculator from a name (``"gfn2-xtb"``, ``"gfn1-xtb"``, ``"emt"``,
    ``"lj"``), an instance (returned as is) or ``None`` (GFN2-xTB for molecules,
    EMT for periodic cells)."""
    if spec is None:
        spec = "emt" if atoms.pbc.any() else "gfn2-xtb"
    if not isinstance(spec, str):
        return spec
    key = spec.lower()
    if key in ("gfn2-xtb", "gfn1-xtb", "ipea1-xtb", "tblite"):
        from tblite.ase import TBLite

        method = "GFN2-xTB" if key == "tblite" else key.upper().replace("XTB", "xTB")
        return TBLite(method=method, verbosity=0)
    if key == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if key == "lj":
        from ase.calculators.lj import LennardJones

        return LennardJones()
    raise ValueError(f"unknown calculator {spec!r}; use 'gfn2-xtb', 'gfn1-xtb', 'emt', 'lj' or an ASE calculator")


def _calculator_description(calc: Any) -> dict:
    name = type(calc).__name__
    desc: dict[str, Any] = {"class": f"{type(calc).__module__}.{name}"}
    params = getattr(calc, "parameters", None)
    if params:
        desc["parameters"] = {k: v for k, v in dict(params).items() if isinstance(v, (str, int, float, bool))}
    mod = type(calc).__module__.split(".")[0]
    try:
        from importlib.metadata import version

        desc["package_version"] = version(mod)
    except Exception:  # noqa: BLE001 - version is informational only
        desc["package_version"] = None
    return desc


def generate_pes(
    atoms: "Atoms",  # noqa: F821
    out: str | os.PathLike,
    n_frames: int = 100,
    calculator: str | Any | None = None,
    temperature_K: float = 500.0,
    timestep_fs: float = 0.5,
    stride: int = 20,
    equilibration_steps: int = 200,
    friction_per_fs: float = 0.02,
    cell_strain: float = 0.0,
    seed: int = 0,
    name: str | None = None,
    description: str = "",
    progress: bool = True,
    checkpoint_every: int = 100,
) -> list:
    """Sample configurations by Langevin MD and label them with a reference calculator.

    Runs ``equilibration_steps`` of Langevin dynamics at ``temperature_K``, then
    keeps every ``stride``-th step until ``n_frames`` frames are collected. Each
    kept frame is labelled with energy (eV) and forces (eV/Å), plus stress
    (eV/Å^3) for periodic cells. With ``cell_strain > 0`` (periodic cells), each
    kept frame is labelled after a random symmetric strain with components
    uniform in ``[-cell_strain, cell_strain]`` (the MD itself is unstrained), so
    the set samples stress too.

    Writes ``out`` (extxyz, atomically, re-written every ``checkpoint_every``
    frames so a crash keeps what was done) and beside it ``card.json`` and
    ``README.md``: calculator, temperature, time step, stride, seed, wall time,
    versions.

    Example
    -------
    >>> from ase.build import molecule
    >>> from sciml.datasets import generate_pes
    >>> frames = generate_pes(molecule("CH3CH2OH"), "ethanol.extxyz", n_frames=10)  # doctest: +SKIP
    """
    import numpy as np
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

    from ._io import atomic_write_json, atomic_write_text
    from ._runtime import quiet_progress
    from ._version import __version__
    from .atoms import attach_labels, validate_frames, write_frames

    for key, val in (("n_frames", n_frames), ("stride", stride), ("checkpoint_every", checkpoint_every)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{key} must be a positive integer, got {val!r}")
    if equilibration_steps < 0:
        raise ValueError(f"equilibration_steps must be >= 0, got {equilibration_steps!r}")
    if not temperature_K > 0:
        raise ValueError(f"temperature_K must be positive, got {temperature_K!r}")
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs must be positive, got {timestep_fs!r}")
    if cell_strain < 0 or cell_strain > 0.2:
        raise ValueError(f"cell_strain must be in [0, 0.2], got {cell_strain!r}")
    validate_frames([atoms], require=(), source="generate_pes: start structure")
    periodic = bool(atoms.pbc.any())
    if cell_strain > 0 and not periodic:
        raise ValueError("cell_strain needs a periodic start structure")

    out = Path(out)
    rng = np.random.default_rng(seed)
    md_atoms = atoms.copy()
    md_atoms.set_constraint(FixCom())  # remove centre-of-mass drift (ASE's recommended Langevin setup)
    calc = make_calculator(calculator, md_atoms)
    md_atoms.calc = calc
    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        thermalize_momenta = MaxwellBoltzmannDistribution
    thermalize_momenta(md_atoms, temperature_K=temperature_K, rng=rng)
    Stationary(md_atoms)
    if not periodic:
        ZeroRotation(md_atoms)
    dyn = Langevin(
        md_atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature_K,
        friction=friction_per_fs / units.fs,
        rng=rng,
        fixcm=False,
    )

    def label(a: Any) -> Any:
        a = a.copy()
        a.set_constraint()
        if cell_strain > 0:
            eps = rng.uniform(-cell_strain, cell_strain, size=(3, 3))
            eps = 0.5 * (eps + eps.T)
            a.set_cell(a.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        a.calc = calc
        e = a.get_potential_energy()
        f = a.get_forces()
        s = a.get_stress(voigt=True) if periodic else None
        return attach_labels(a, e, f, s)

    frames: list = []
    t0 = time.time()
    show = progress and not quiet_progress()
    from tqdm.auto import tqdm

    bar = tqdm(total=n_frames, desc=f"generate_pes {out.name}", disable=not show, unit="frame")
    if equilibration_steps:
        dyn.run(equilibration_steps)
    while len(frames) < n_frames:
        dyn.run(stride)
        frames.append(label(md_atoms))
        bar.update(1)
        if len(frames) % checkpoint_every == 0 and len(frames) < n_frames:
            write_frames(out, frames)
    bar.close()
    wall = time.time() - t0
    validate_frames(frames, require=("energy", "forces", "stress") if periodic else ("energy", "forces"))
    write_frames(out, frames)

    energies = np.array([f.get_potential_energy() for f in frames])
    forces = np.concatenate([f.get_forces().ravel() for f in frames])
    import ase

    card = {
        "name": name or out.stem,
        "description": description,
        "file": out.name,
        "n_frames": int(n_frames),
        "n_atoms": len(atoms),
        "formula": atoms.get_chemical_formula(),
        "species": sorted(set(atoms.get_chemical_symbols())),
        "periodic": periodic,
        "cell": atoms.cell.array.tolist() if periodic else None,
        "calculator": _calculator_description(calc),
        "sampling": {
            "method": "Langevin MD (ase.md.langevin.Langevin)",
            "temperature_K": float(temperature_K),
            "timestep_fs": float(timestep_fs),
            "friction_per_fs": float(friction_per_fs),
            "equilibration_steps": int(equilibration_steps),
            "stride": int(stride),
            "cell_strain": float(cell_strain),
            "seed": int(seed),
        },
        "labels": ["energy", "forces"] + (["stress"] if periodic else []),
        "units": {"energy": "eV", "forces": "eV/Angstrom", "stress": "eV/Angstrom^3 (ASE sign, Voigt xx yy zz yz xz xy)"},
        "statistics": {
            "energy_mean_eV": float(energies.mean()),
            "energy_std_eV": float(energies.std()),
            "force_component_std_eV_per_A": float(forces.std()),
        },
        "wall_time_s": round(wall, 2),
        "generated_by": {
            "sciml": __version__,
            "ase": ase.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    atomic_write_json(out.parent / "card.json", card)
    atomic_write_text(out.parent / "README.md", _card_markdown(card))
    return frames


def _card_markdown(card: dict) -> str:
    s = card["sampling"]
    c = card["calculator"]
    lines = [
        f"# Dataset card: {card['name']}",
        "",
        card.get("description") or "Reference potential-energy-surface data generated by `sciml.datasets.generate_pes`.",
        "",
        f"- Structure: {card['formula']} ({card['n_atoms']} atoms), periodic: {card['periodic']}",
        f"- Frames: {card['n_frames']} in `{card['file']}` (extxyz; labels: {', '.join(card['labels'])})",
        f"- Reference calculator: `{c['class']}` {json.dumps(c.get('parameters', {}))} (package version {c.get('package_version')})",
        f"- Sampling: {s['method']} at {s['temperature_K']} K, time step {s['timestep_fs']} fs, "
        f"friction {s['friction_per_fs']} 1/fs, {s['equilibration_steps']} equilibration steps, "
        f"every {s['stride']}th step kept, seed {s['seed']}"
        + (f", random symmetric cell strain up to {s['cell_strain']}" if s["cell_strain"] else ""),
        f"- Units: energy eV, forces eV/Å" + (", stress eV/Å^3 (ASE sign convention, Voigt order)" if card["periodic"] else ""),
        f"- Energy mean {card['statistics']['energy_mean_eV']:.4f} eV, std {card['statistics']['energy_std_eV']:.4f} eV; "
        f"force-component std {card['statistics']['force_component_std_eV_per_A']:.4f} eV/Å",
        f"- Generation wall time: {card['wall_time_s']} s on {card['generated_by']['machine']} "
        f"(sciml {card['generated_by']['sciml']}, ASE {card['generated_by']['ase']})",
        "- Regenerate with `python datasets/generate_pes.py` (see that script for the exact arguments).",
        "- Consecutive frames are correlated (MD trajectory); use random splits (`sciml.atoms.split_frames`).",
        "",
    ]
    return "\n".join(lines)


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
    if name not in BUNDLED_RECIPES:
        raise ValueError(f"no recipe for {name!r}; recipes: {sorted(BUNDLED_RECIPES)}")
    kwargs = BUNDLED_RECIPES[name]()
    kwargs.update(overrides)
    folder = Path(folder) if folder is not None else _root() / name
    return generate_pes(out=folder / f"{name}.extxyz", name=name, **kwargs)
