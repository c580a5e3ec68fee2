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


def _check_md_args(steps, dt_fs, ensemble, temperature_K) -> None:
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


def initial_velocities(atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature_K`` (in place); centre-of-mass motion removed and,
    for a molecule (no periodic direction), the rotation too.

    Example
    -------
    >>> initial_velocities(atoms, 300.0, np.random.default_rng(0))  # doctest: +SKIP
    """
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

    try:  # ASE >= 3.29
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # pragma: no cover - older ASE
        thermalize_momenta = MaxwellBoltzmannDistribution
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)


def make_integrator(atoms, ensemble: str, dt_fs: float, temperature_K: Optional[float], friction_per_fs: float,
                    rng: np.random.Generator):
    """ASE's velocity Verlet (``"nve"``) or Langevin integrator (centre of mass fixed with ``FixCom``)."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    from ase.constraints import FixCom

    atoms.set_constraint(FixCom())  # ASE's recommended way to keep the centre of mass fixed
    return Langevin(atoms, timestep=dt_fs * units.fs, temperature_K=temperature_K,
                    friction=friction_per_fs / units.fs, rng=rng, fixcm=False)


class _Recorder:
    """Energies and temperature of every logged step; trajectory snapshots every ``write_every`` steps."""

    def __init__(self, atoms, dt_fs: float, keep_frames: bool, write_every: int) -> None:
        self.atoms, self.dt_fs, self.keep, self.write_every = atoms, dt_fs, keep_frames, write_every
        self.rows: list[tuple] = []
        self.frames: list = []

    def __call__(self, step: int) -> None:
        from ase.calculators.singlepoint import SinglePointCalculator

        a = self.atoms
        epot = a.get_potential_energy()
        ekin = a.get_kinetic_energy()
        t_ps = step * self.dt_fs / 1000.0
        self.rows.append((t_ps, epot, ekin, epot + ekin, a.get_temperature()))
        if self.keep and step % self.write_every == 0:
            snap = a.copy()
            snap.calc = SinglePointCalculator(snap, energy=epot, forces=a.get_forces().copy())
            snap.info["time_ps"] = t_ps
            self.frames.append(snap)


def _integrate(dyn, record: _Recorder, steps: int, log_every: int, desc: str, show: bool) -> float:
    """Run ``steps`` steps in chunks of ``log_every``, recording after each; returns the wall time (s)."""
    import time

    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    with tqdm(total=steps, desc=desc, unit="step", disable=not show, dynamic_ncols=True) as bar:
        done = 0
        while done < steps:
            k = min(log_every, steps - done)
            dyn.run(k)
            done += k
            record(done)
            bar.update(k)
            if show:
                bar.set_postfix(T=f"{record.rows[-1][4]:.0f}K", Etot=f"{record.rows[-1][3]:.4f}", refresh=False)
    return time.perf_counter() - t0


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
    from .._io import atomic_write_text
    from .._runtime import quiet_progress

    _check_md_args(steps, dt_fs, ensemble, temperature_K)
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    if temperature_K is not None:
        initial_velocities(atoms, temperature_K, rng)
    dyn = make_integrator(atoms, ensemble, dt_fs, temperature_K, friction_per_fs, rng)
    record = _Recorder(atoms, dt_fs, trajectory is not None, write_every)
    record(0)
    wall = _integrate(dyn, record, steps, log_every, f"md {ensemble}", progress and not quiet_progress())
    arr = np.array(record.rows)
    res = MDResult(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], len(atoms), steps, wall, ensemble)
    if trajectory is not None:
        from ..atoms import write_frames

        write_frames(trajectory, record.frames)
    if log is not None:
        atomic_write_text(log, res.table().to_csv(index=False))
    return res
