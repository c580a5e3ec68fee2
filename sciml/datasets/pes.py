"""The reference-data recipe: Langevin MD with any ASE calculator, labelled frames, a dataset card."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._io import atomic_write_json, atomic_write_text
from .._runtime import quiet_progress
from .._version import __version__
from ..atoms import attach_labels, validate_frames, write_frames
from .calculators import calculator_description, make_calculator

__all__ = ["generate_pes", "sample_langevin"]

_UNITS = {"energy": "eV", "forces": "eV/Angstrom", "stress": "eV/Angstrom^3 (ASE sign, Voigt xx yy zz yz xz xy)"}


def _check_sampling_args(n_frames, stride, equilibration_steps, temperature_K, timestep_fs, cell_strain,
                         checkpoint_every=1) -> None:
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


def _langevin(atoms, calc, temperature_K: float, timestep_fs: float, friction_per_fs: float, rng):
    """ASE Langevin dynamics with thermalised momenta and no centre-of-mass drift (ASE's recommended setup)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    md_atoms = atoms.copy()
    md_atoms.set_constraint(FixCom())
    md_atoms.calc = calc
    thermalize_momenta(md_atoms, temperature_K=temperature_K, rng=rng)
    Stationary(md_atoms)
    if not md_atoms.pbc.any():
        ZeroRotation(md_atoms)
    dyn = Langevin(md_atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
    return md_atoms, dyn


def _label(atoms, calc, cell_strain: float, rng):
    """A copy of ``atoms`` (randomly strained when ``cell_strain`` > 0) with the calculator's labels."""
    a = atoms.copy()
    a.set_constraint()
    if cell_strain > 0:
        eps = rng.uniform(-cell_strain, cell_strain, size=(3, 3))
        eps = 0.5 * (eps + eps.T)
        a.set_cell(a.cell.array @ (np.eye(3) + eps), scale_atoms=True)
    a.calc = calc
    e = a.get_potential_energy()
    f = a.get_forces()
    s = a.get_stress(voigt=True) if a.pbc.any() else None
    return attach_labels(a, e, f, s)


def sample_langevin(
    atoms: "Atoms",  # noqa: F821
    calc: Any,
    n_frames: int,
    rng: np.random.Generator,
    temperature_K: float = 500.0,
    timestep_fs: float = 0.5,
    stride: int = 20,
    equilibration_steps: int = 200,
    friction_per_fs: float = 0.02,
    cell_strain: float = 0.0,
    on_frame: Callable[[list], None] | None = None,
    progress: str | None = None,
) -> list:
    """Labelled frames from one Langevin trajectory: every ``stride``-th step after equilibration.

    ``rng`` drives the momenta, the thermostat and the strains (so a seed fixes everything);
    ``on_frame(frames)`` is called after each new frame (checkpointing); ``progress`` is the
    label of a progress bar (none when ``None``).
    """
    from tqdm.auto import tqdm

    _check_sampling_args(n_frames, stride, equilibration_steps, temperature_K, timestep_fs, cell_strain)
    md_atoms, dyn = _langevin(atoms, calc, temperature_K, timestep_fs, friction_per_fs, rng)
    bar = tqdm(total=n_frames, desc=progress, disable=progress is None or quiet_progress(), unit="frame")
    if equilibration_steps:
        dyn.run(equilibration_steps)
    frames: list = []
    while len(frames) < n_frames:
        dyn.run(stride)
        frames.append(_label(md_atoms, calc, cell_strain, rng))
        bar.update(1)
        if on_frame is not None:
            on_frame(frames)
    bar.close()
    return frames


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
    _check_sampling_args(n_frames, stride, equilibration_steps, temperature_K, timestep_fs, cell_strain,
                         checkpoint_every)
    validate_frames([atoms], require=(), source="generate_pes: start structure")
    periodic = bool(atoms.pbc.any())
    if cell_strain > 0 and not periodic:
        raise ValueError("cell_strain needs a periodic start structure")
    out = Path(out)
    calc = make_calculator(calculator, atoms)

    def checkpoint(frames: list) -> None:
        if len(frames) % checkpoint_every == 0 and len(frames) < n_frames:
            write_frames(out, frames)

    t0 = time.time()
    frames = sample_langevin(
        atoms, calc, n_frames, np.random.default_rng(seed), temperature_K=temperature_K, timestep_fs=timestep_fs,
        stride=stride, equilibration_steps=equilibration_steps, friction_per_fs=friction_per_fs,
        cell_strain=cell_strain, on_frame=checkpoint, progress=f"generate_pes {out.name}" if progress else None,
    )
    wall = time.time() - t0
    validate_frames(frames, require=("energy", "forces", "stress") if periodic else ("energy", "forces"))
    write_frames(out, frames)
    sampling = {
        "method": "Langevin MD (ase.md.langevin.Langevin)", "temperature_K": float(temperature_K),
        "timestep_fs": float(timestep_fs), "friction_per_fs": float(friction_per_fs),
        "equilibration_steps": int(equilibration_steps), "stride": int(stride), "cell_strain": float(cell_strain),
        "seed": int(seed),
    }
    card = dataset_card_dict(name or out.stem, description, out, frames, atoms, calc, sampling, wall)
    write_card(out.parent, card, _card_markdown(card))
    return frames


def dataset_card_dict(name: str, description: str, out: Path, frames: list, atoms, calc, sampling: dict,
                      wall_time_s: float) -> dict:
    """The ``card.json`` of a generated set: what, how, with which calculator and versions."""
    import ase

    periodic = bool(atoms.pbc.any())
    energies = np.array([f.get_potential_energy() for f in frames])
    forces = np.concatenate([f.get_forces().ravel() for f in frames])
    return {
        "name": name,
        "description": description,
        "file": out.name,
        "n_frames": len(frames),
        "n_atoms": len(atoms),
        "formula": atoms.get_chemical_formula(),
        "species": sorted({s for f in frames for s in f.get_chemical_symbols()}),
        "periodic": periodic,
        "cell": atoms.cell.array.tolist() if periodic else None,
        "calculator": calculator_description(calc),
        "sampling": sampling,
        "labels": ["energy", "forces"] + (["stress"] if periodic else []),
        "units": dict(_UNITS),
        "statistics": {
            "energy_mean_eV": float(energies.mean()),
            "energy_std_eV": float(energies.std()),
            "force_component_std_eV_per_A": float(forces.std()),
        },
        "wall_time_s": round(wall_time_s, 2),
        "generated_by": {"sciml": __version__, "ase": ase.__version__, "python": platform.python_version(),
                         "machine": platform.machine()},
    }


def write_card(folder: Path, card: dict, markdown: str) -> None:
    """Write ``card.json`` and ``README.md`` (atomically) into ``folder``."""
    atomic_write_json(Path(folder) / "card.json", card)
    atomic_write_text(Path(folder) / "README.md", markdown)


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
