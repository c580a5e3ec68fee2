"""Multi-element periodic alloy reference data (ASE EMT): random fcc solid solutions, vacancies, slabs.

Each trajectory is one random cell -- a bulk fcc solid solution of 4-6 of Al, Cu, Ag, Au, Ni, Pd,
Pt (32-108 atoms), the same with 1-3 vacancies, or a (111)/(100) surface slab with vacuum -- at a
random temperature in 300-1500 K, sampled by Langevin MD and labelled with energies, forces and
stress after a random symmetric cell strain of up to 3 %. Trajectory ``i`` draws everything from
its own seed (``SeedSequence(seed).spawn``), so the set is deterministic by seed and the first
``k`` trajectories of a larger set are exactly a smaller set: the bundled ``alloys_emt`` subset
is the first trajectories of the full set that :func:`load_alloys` generates on first use.

Frames carry ``info["trajectory"]`` (int), ``info["kind"]`` (bulk / vacancy / slab) and
``info["temperature_K"]``: split them by trajectory (:func:`sciml.atoms.split_by_trajectory`) so
that no test frame is a few femtoseconds away from a training frame.

Example
-------
>>> from sciml.datasets import load_alloys
>>> from sciml.atoms import split_by_trajectory
>>> frames = load_alloys()                        # bundled subset (no generation)  # doctest: +SKIP
>>> full = load_alloys("full")                    # 2,400 frames, generated once (~10 min)  # doctest: +SKIP
>>> train, valid, test = split_by_trajectory(full, 1000, 100, seed=0)  # doctest: +SKIP
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atoms import read_frames, validate_frames, write_frames
from .bundled import _root, dataset_path
from .pes import dataset_card_dict, sample_langevin, write_card

__all__ = ["ALLOY_ELEMENTS", "ALLOY_RECIPE", "random_alloy", "alloy_trajectory_specs", "generate_alloys",
           "load_alloys", "regenerate_bundled_alloys"]

#: The elements of ASE's EMT that form fcc metals, with their fcc lattice constants (Å).
ALLOY_ELEMENTS: dict[str, float] = {"Al": 4.05, "Cu": 3.61, "Ag": 4.09, "Au": 4.08, "Ni": 3.52, "Pd": 3.89, "Pt": 3.92}

_BULK_REPEATS = [(2, 2, 2), (2, 2, 3), (2, 3, 3), (3, 3, 3)]          # 32, 48, 72, 108 atoms
_SLAB_SIZES = {"fcc111": [(4, 4, 4), (4, 4, 5), (3, 3, 6)], "fcc100": [(3, 3, 6), (4, 4, 4), (4, 4, 5)]}
_KINDS = ("bulk", "vacancy", "slab")
_KIND_P = (0.5, 0.25, 0.25)

#: The recipe of the full set and of the bundled subset (its first trajectories).
ALLOY_RECIPE: dict[str, Any] = dict(
    n_trajectories=120, frames_per_trajectory=20, seed=0, timestep_fs=2.0, stride=10, equilibration_steps=100,
    friction_per_fs=0.02, cell_strain=0.03, temperature_range_K=(300.0, 1500.0), n_species=(4, 6),
)
_BUNDLED_TRAJECTORIES = 10


def _composition(rng: np.random.Generator, n_atoms: int, n_species: tuple[int, int]) -> list[str]:
    """Random chemical symbols for ``n_atoms`` sites: 4-6 species, Dirichlet fractions, each present."""
    k = int(rng.integers(n_species[0], n_species[1] + 1))
    species = list(rng.choice(sorted(ALLOY_ELEMENTS), size=k, replace=False))
    counts = np.ones(k, dtype=int) + rng.multinomial(n_atoms - k, rng.dirichlet(np.ones(k)))
    symbols = np.repeat(species, counts)
    return list(rng.permutation(symbols))


def random_alloy(rng: np.random.Generator, kind: str = "bulk", n_species: tuple[int, int] = (4, 6)) -> "Atoms":  # noqa: F821
    """One random fcc solid-solution cell: ``kind`` is ``"bulk"``, ``"vacancy"`` or ``"slab"``.

    The lattice constant follows Vegard's law over the chosen species; slabs are (111) or (100)
    surfaces with 6 Å of vacuum on each side (periodic in all three directions, as plane-wave
    data are). Vacancy cells lose 1-3 random atoms of a bulk cell.
    """
    from ase.build import bulk, fcc100, fcc111

    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    if kind == "slab":
        facet = ("fcc111", "fcc100")[int(rng.integers(2))]
        size = _SLAB_SIZES[facet][int(rng.integers(len(_SLAB_SIZES[facet])))]
        build = fcc111 if facet == "fcc111" else fcc100
        atoms = build("Cu", size=size, a=3.6, vacuum=6.0, periodic=True)
    else:
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(_BULK_REPEATS[int(rng.integers(len(_BULK_REPEATS)))])
    symbols = _composition(rng, len(atoms), n_species)
    a = float(np.mean([ALLOY_ELEMENTS[s] for s in symbols]))
    atoms.set_chemical_symbols(symbols)
    atoms.set_cell(atoms.cell.array * (a / 3.6), scale_atoms=True)
    if kind == "vacancy":
        n_vac = int(rng.integers(1, 4))
        del atoms[sorted(rng.choice(len(atoms), size=n_vac, replace=False).tolist())]
    atoms.pbc = True
    atoms.info.clear()          # ase.build's adsorbate_info is not data
    return atoms


def alloy_trajectory_specs(n_trajectories: int, seed: int = 0, temperature_range_K=(300.0, 1500.0),
                           n_species: tuple[int, int] = (4, 6)) -> list[dict]:
    """The start cell, temperature and random stream of each trajectory (deterministic by ``seed``)."""
    if not isinstance(n_trajectories, (int, np.integer)) or n_trajectories < 1:
        raise ValueError(f"n_trajectories must be a positive integer, got {n_trajectories!r}")
    specs = []
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(int(n_trajectories))):
        rng = np.random.default_rng(ss)
        kind = str(rng.choice(_KINDS, p=_KIND_P))
        atoms = random_alloy(rng, kind, n_species)
        t = float(rng.uniform(*temperature_range_K))
        specs.append(dict(trajectory=i, kind=kind, temperature_K=t, atoms=atoms, rng=rng))
    return specs


def _trajectory_frames(spec: dict, calc, recipe: dict) -> list:
    frames = sample_langevin(
        spec["atoms"], calc, recipe["frames_per_trajectory"], spec["rng"], temperature_K=spec["temperature_K"],
        timestep_fs=recipe["timestep_fs"], stride=recipe["stride"], equilibration_steps=recipe["equilibration_steps"],
        friction_per_fs=recipe["friction_per_fs"], cell_strain=recipe["cell_strain"],
    )
    for f in frames:
        f.info.update(trajectory=spec["trajectory"], kind=spec["kind"], temperature_K=round(spec["temperature_K"], 3))
    return frames


def generate_alloys(out: str | os.PathLike, n_trajectories: int | None = None, progress: bool = True,
                    checkpoint_every: int = 10, **recipe_overrides: Any) -> list:
    """Generate the alloy set into ``out`` (extxyz, plus ``card.json`` and ``README.md`` beside it).

    The file is rewritten atomically every ``checkpoint_every`` trajectories; when ``out`` already holds complete
    trajectories of the same recipe (an interrupted run), those are kept and generation resumes
    after them. Arguments default to :data:`ALLOY_RECIPE`.

    Example
    -------
    >>> frames = generate_alloys("alloys.extxyz", n_trajectories=2, frames_per_trajectory=3)  # doctest: +SKIP
    """
    from ase.calculators.emt import EMT
    from tqdm.auto import tqdm

    from .._runtime import quiet_progress

    unknown = set(recipe_overrides) - set(ALLOY_RECIPE)
    if unknown:
        raise ValueError(f"unknown recipe arguments {sorted(unknown)}; known: {sorted(ALLOY_RECIPE)}")
    recipe = {**ALLOY_RECIPE, **recipe_overrides}
    if n_trajectories is not None:
        recipe["n_trajectories"] = n_trajectories
    out = Path(out)
    frames = _resumable_frames(out, recipe)
    done = {int(f.info["trajectory"]) for f in frames}
    specs = alloy_trajectory_specs(recipe["n_trajectories"], recipe["seed"], recipe["temperature_range_K"],
                                   recipe["n_species"])
    calc = EMT()
    t0 = time.time()
    new = 0
    for spec in tqdm(specs, desc=f"generate_alloys {out.name}", unit="traj", disable=not progress or quiet_progress()):
        if spec["trajectory"] in done:
            continue
        frames.extend(_trajectory_frames(spec, calc, recipe))
        new += 1
        if new % checkpoint_every == 0:
            write_frames(out, frames)
    frames.sort(key=lambda f: int(f.info["trajectory"]))
    write_frames(out, frames)
    validate_frames(frames, require=("energy", "forces", "stress"))
    sampling = {"method": "Langevin MD (ase.md.langevin.Langevin), one random cell per trajectory",
                **{k: (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()}}
    card = dataset_card_dict(out.stem, _DESCRIPTION, out, frames, specs[0]["atoms"], calc, sampling, time.time() - t0)
    card.update(n_atoms=sorted({len(f) for f in frames}), formula="random fcc solid solutions",
                cell=None, kinds={k: sum(f.info["kind"] == k for f in frames) for k in _KINDS})
    write_card(out.parent, card, _card_markdown(card))
    return frames


def _resumable_frames(out: Path, recipe: dict) -> list:
    """Complete trajectories already in ``out`` whose card matches ``recipe`` (else nothing)."""
    card_path = out.parent / "card.json"
    if not out.exists():
        return []
    frames = read_frames(out, require=("energy", "forces", "stress"))
    n = recipe["frames_per_trajectory"]
    by_traj: dict[int, list] = {}
    for f in frames:
        by_traj.setdefault(int(f.info["trajectory"]), []).append(f)
    complete = [t for t in sorted(by_traj) if len(by_traj[t]) == n]
    if card_path.exists():
        import json

        old = json.loads(card_path.read_text()).get("sampling", {})
        same = all(old.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()
                   if k != "n_trajectories")
        if not same:
            return []
    return [f for t in complete for f in by_traj[t]]


_DESCRIPTION = (
    "Multi-element periodic alloys labelled with ASE's EMT: random fcc solid solutions of 4-6 of Al, Cu, Ag, "
    "Au, Ni, Pd, Pt (bulk 32-108 atoms, bulk with 1-3 vacancies, (111)/(100) slabs with 6 A of vacuum), "
    "one random cell per Langevin trajectory at 300-1500 K, each frame labelled after a random symmetric "
    "cell strain of up to 3 %. Frames carry info['trajectory'], info['kind'], info['temperature_K']; "
    "split by trajectory (sciml.atoms.split_by_trajectory)."
)


def _card_markdown(card: dict) -> str:
    s = card["sampling"]
    return "\n".join([
        f"# Dataset card: {card['name']}",
        "",
        card["description"],
        "",
        f"- Frames: {card['n_frames']} from {s['n_trajectories']} trajectories of {s['frames_per_trajectory']} "
        f"(`{card['file']}`, extxyz; labels: energy, forces, stress); kinds: {card['kinds']}",
        f"- Atoms per cell: {min(card['n_atoms'])}-{max(card['n_atoms'])}; species: {', '.join(card['species'])}",
        f"- Reference calculator: `{card['calculator']['class']}` (ASE {card['generated_by']['ase']})",
        f"- Sampling: time step {s['timestep_fs']} fs, friction {s['friction_per_fs']} 1/fs, "
        f"{s['equilibration_steps']} equilibration steps, every {s['stride']}th step kept, temperatures "
        f"{s['temperature_range_K'][0]:.0f}-{s['temperature_range_K'][1]:.0f} K, strain up to {s['cell_strain']}, "
        f"seed {s['seed']}",
        "- Units: energy eV, forces eV/Å, stress eV/Å^3 (ASE sign convention, Voigt order)",
        f"- Energy mean {card['statistics']['energy_mean_eV']:.3f} eV, std {card['statistics']['energy_std_eV']:.3f} eV; "
        f"force-component std {card['statistics']['force_component_std_eV_per_A']:.3f} eV/Å",
        f"- Generation wall time: {card['wall_time_s']} s (sciml {card['generated_by']['sciml']})",
        "- Regenerate: `python datasets/generate_pes.py alloys_emt` (bundled subset) or "
        "`sciml datasets alloys --out DIR` (full set); `sciml.datasets.load_alloys('full')` generates and caches it.",
        "",
    ])


def _cache_dir() -> Path:
    return Path(os.environ.get("SCIML_DATA_DIR") or Path.home() / ".cache" / "sciml")


def load_alloys(which: str = "bundled", cache_dir: str | os.PathLike | None = None, progress: bool = True) -> list:
    """The alloy set: ``"bundled"`` (the first 10 trajectories, shipped with sciml) or ``"full"``.

    The full set (:data:`ALLOY_RECIPE`: 120 trajectories x 20 frames) is generated with EMT on
    first use into ``cache_dir`` (default ``$SCIML_DATA_DIR`` or ``~/.cache/sciml``), then read
    from there; nothing is downloaded.
    """
    if which == "bundled":
        return read_frames(dataset_path("alloys_emt") / "alloys_emt.extxyz", require=("energy", "forces", "stress"))
    if which != "full":
        raise ValueError(f"which must be 'bundled' or 'full', got {which!r}")
    path = Path(cache_dir or _cache_dir()) / "alloys_emt_full" / "alloys_emt_full.extxyz"
    if path.exists():
        frames = read_frames(path, require=("energy", "forces", "stress"))
        expected = ALLOY_RECIPE["n_trajectories"] * ALLOY_RECIPE["frames_per_trajectory"]
        if len(frames) == expected:
            return frames
    path.parent.mkdir(parents=True, exist_ok=True)
    return generate_alloys(path, progress=progress)


def regenerate_bundled_alloys(folder: str | os.PathLike | None = None, progress: bool = True, **recipe_overrides: Any) -> list:
    """Re-make the bundled subset: the first 10 trajectories of the full recipe."""
    folder = Path(folder) if folder is not None else _root() / "alloys_emt"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "alloys_emt.extxyz"
    if out.exists():
        out.unlink()
    recipe_overrides.setdefault("n_trajectories", _BUNDLED_TRAJECTORIES)
    return generate_alloys(out, progress=progress, **recipe_overrides)
