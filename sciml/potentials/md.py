"""Molecular dynamics with an ASE calculator (NVE velocity Verlet or Langevin), with energy log.

Energy drift is the slope of a least-squares line through the total energy per atom
against time, in eV/atom/ps (``drift_eV_per_atom_per_ps``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np


@dataclass
class MDResult:
    """Time series of an MD run (``time_ps``, energies in eV, ``temperature_K``) and summary numbers."""

    time_ps: np.ndarray
    epot: np.ndarray
    ekin: np.ndarray
    etot: np.ndarray
    temperature_K: np.ndarray
    n_atoms: int
    steps: int
    wall_time_s: float
    ensemble: str

    @property
    def drift_eV_per_atom_per_ps(self) -> float:
        if len(self.time_ps) < 2:
            return float("nan")
        return float(np.polyfit(self.time_ps, self.etot / self.n_atoms, 1)[0])

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else float("nan")

    def summary(self) -> dict:
        return {
            "ensemble": self.ensemble,
            "steps": self.steps,
            "n_atoms": self.n_atoms,
            "simulated_ps": float(self.time_ps[-1] - self.time_ps[0]) if len(self.time_ps) else 0.0,
            "drift_eV_per_atom_per_ps": self.drift_eV_per_atom_per_ps,
            "etot_std_meV_per_atom": float(1000 * np.std(self.etot / self.n_atoms)),
            "mean_temperature_K": float(np.mean(self.temperature_K)),
            "steps_per_s": self.steps_per_s,
            "wall_time_s": self.wall_time_s,
        }

    def table(self):
        import pandas as pd

        return pd.DataFrame(
            {"time_ps": self.time_ps, "epot_eV": self.epot, "ekin_eV": self.ekin, "etot_eV": self.etot,
             "temperature_K": self.temperature_K}
        )


def run_md(
    atoms,
    calc,
    steps: int,
    dt_fs: float = 0.5,
    temperature_K: Optional[float] = None,
    ensemble: str = "nve",
    friction_per_fs: float = 0.01,
    trajectory: Optional[str | Path] = None,
    log: Optional[str | Path] = None,
    write_every: int = 10,
    log_every: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> MDResult:
    """Run ASE MD of ``atoms`` with ``calc``; optionally write an extxyz trajectory and a CSV energy log.

    ``temperature_K`` initialises Maxwell-Boltzmann velocities (centre-of-mass motion and, for
    molecules, rotation removed) and is the Langevin bath temperature; without it the
    momenta stored in ``atoms`` are used. Files are written atomically when the run ends.

    Example
    -------
    >>> res = run_md(molecule("CH3CH2OH"), SciMLCalculator("model.pt"), steps=1000, dt_fs=0.5,
    ...              temperature_K=300)  # doctest: +SKIP
    >>> res.summary()["drift_eV_per_atom_per_ps"]  # doctest: +SKIP
    """
    import time

    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet
    from tqdm.auto import tqdm

    from .._io import atomic_write_text
    from .._runtime import quiet_progress

    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not dt_fs > 0:
        raise ValueError(f"dt_fs must be positive, got {dt_fs!r}")
    if ensemble not in ("nve", "langevin"):
        raise ValueError(f"ensemble must be 'nve' or 'langevin', got {ensemble!r}")
    if ensemble == "langevin" and temperature_K is None:
        raise ValueError("ensemble='langevin' needs temperature_K")
    if temperature_K is not None and temperature_K < 0:
        raise ValueError(f"temperature_K must be >= 0, got {temperature_K!r}")
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    if temperature_K is not None:
        try:  # ASE >= 3.29
            from ase.md.velocitydistribution import thermalize_momenta
        except ImportError:  # pragma: no cover - older ASE
            thermalize_momenta = MaxwellBoltzmannDistribution
        thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
        Stationary(atoms)
        if not atoms.pbc.any():
            ZeroRotation(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    else:
        from ase.constraints import FixCom

        atoms.set_constraint(FixCom())  # ASE's recommended way to keep the centre of mass fixed
        dyn = Langevin(atoms, timestep=dt_fs * units.fs, temperature_K=temperature_K,
                       friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
    n = len(atoms)
    rows, frames = [], []

    def record(step: int) -> None:
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        rows.append((step * dt_fs / 1000.0, epot, ekin, epot + ekin, atoms.get_temperature()))
        if trajectory is not None and step % write_every == 0:
            snap = atoms.copy()
            snap.calc = SinglePointCalculator(snap, energy=epot, forces=atoms.get_forces().copy())
            snap.info["time_ps"] = step * dt_fs / 1000.0
            frames.append(snap)

    show = progress and not quiet_progress()
    record(0)
    t0 = time.perf_counter()
    with tqdm(total=steps, desc=f"md {ensemble}", unit="step", disable=not show, dynamic_ncols=True) as bar:
        done = 0
        while done < steps:
            k = min(log_every, steps - done)
            dyn.run(k)
            done += k
            record(done)
            bar.update(k)
            if show:
                bar.set_postfix(T=f"{rows[-1][4]:.0f}K", Etot=f"{rows[-1][3]:.4f}", refresh=False)
    wall = time.perf_counter() - t0
    arr = np.array(rows)
    res = MDResult(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], n, steps, wall, ensemble)
    if trajectory is not None:
        from ..atoms import write_frames

        write_frames(trajectory, frames)
    if log is not None:
        atomic_write_text(log, res.table().to_csv(index=False))
    return res
