"""On-the-fly learning of a local GP during molecular dynamics (FLARE-style).

Loop (Vandermause et al., npj Comput. Mater. 6, 20 (2020)):

1. start: label the starting structure (and ``n_seed_frames - 1`` rattled copies) with the
   reference calculator and fit a :class:`~sciml.gp.local_gp.LocalGPPotential`;
2. run Langevin MD with the GP; after every step read the per-atom local-energy std
   (latent, cheap: no force variances);
3. when the largest one exceeds the threshold -- ``std_threshold`` times the model's signal std
   (``relative=True``, FLARE's convention: the std of a local energy the data say nothing about
   is the signal std) or ``std_threshold`` eV (``relative=False``): label that frame with the reference
   calculator (EMT for metals, GFN2-xTB for molecules, any ASE calculator), record the GP's
   error on it, add it to the training set and the ``n_add`` most uncertain environments of
   it (those above half the threshold, at least one) to the inducing set, and refit
   (signal and noise stds on all frames; every ``refit_every`` additions all
   hyperparameters); the MD continues from the labelled frame with the new model;
4. stop after ``steps`` MD steps or ``max_reference_calls`` labels.

Everything is logged: one row per MD step (uncertainty, temperature, whether it was labelled)
in ``log`` and one row per label (GP error against the reference before the refit,
hyperparameters and sizes after it) in ``labels``; with ``out`` both are written as CSV,
with the labelled frames (extxyz) and the final model, after every label.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from .local_gp import LocalGPPotential

__all__ = ["OnTheFlyResult", "on_the_fly", "LocalGPMDCalculator"]


class LocalGPMDCalculator(Calculator):
    """ASE calculator for MD driven by a :class:`LocalGPPotential`: energy, forces, stress and the
    per-atom ``local_energy_std`` (eV) in ``results`` (no force variances: they cost ``m`` projections per atom)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies", "energy_std", "local_energy_std"]

    def __init__(self, model: LocalGPPotential, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: D102
        super().calculate(atoms, properties, system_changes)
        self.results.update(self.model.calculator_results(self.atoms, uncertainty=True, forces_std=False))


@dataclass
class OnTheFlyResult:
    """Outcome of :func:`on_the_fly`: the final ``model``, the labelled ``frames``, the per-step ``log``
    and per-label ``labels`` tables (pandas), the number of ``reference_calls`` and written ``files``."""

    model: LocalGPPotential
    frames: list
    log: Any
    labels: Any
    reference_calls: int
    files: dict = field(default_factory=dict)

    def table(self) -> "pandas.DataFrame":  # noqa: F821
        """The per-label table."""
        return self.labels

    def summary(self) -> str:
        """Short text summary."""
        last = self.log.iloc[-1]
        lines = [f"on-the-fly local GP: {len(self.log)} MD steps, {self.reference_calls} reference calls, "
                 f"{len(self.frames)} training frames, {len(self.model.inducing_)} inducing environments",
                 f"last step max local-energy std {last['max_local_std']:.4g} eV"]
        if len(self.labels):
            lines.append("GP force MAE on the labelled frames (before each refit, meV/Å): "
                         + ", ".join(f"{v:.0f}" for v in self.labels["forces_mae_meV_per_A"]))
        return "\n".join(lines)


def _label(atoms: Atoms, reference: Any) -> Atoms:
    from sciml.atoms import attach_labels

    b = atoms.copy()
    b.calc = reference
    stress = b.get_stress() if b.pbc.all() else None
    return attach_labels(atoms, energy=b.get_potential_energy(), forces=b.get_forces(), stress=stress)


def _seed_frames(start: Atoms, reference: Any, n: int, rattle: float, rng: np.random.Generator) -> list[Atoms]:
    frames = [_label(start, reference)]
    for _ in range(n - 1):
        a = start.copy()
        a.positions += rng.normal(scale=rattle, size=a.positions.shape)
        frames.append(_label(a, reference))
    return frames


def _uncertain_atoms(std: np.ndarray, threshold: float, n_add: int) -> list[int]:
    order = np.argsort(-std)
    pick = [int(i) for i in order[:n_add] if std[i] > threshold / 2]
    return pick or [int(order[0])]


def _label_row(step: int, model: LocalGPPotential, atoms: Atoms, labelled: Atoms, std: np.ndarray,
               threshold: float) -> dict:
    from sciml.atoms import frame_labels

    p = model.predict([atoms])
    lab = frame_labels(labelled)
    return dict(step=step, max_local_std=float(std.max()), threshold=threshold,
                energy_error_meV_per_atom=1000 * abs(float(p.energy[0]) - lab["energy"]) / len(atoms),
                forces_mae_meV_per_A=1000 * float(np.mean(np.abs(p.forces[0] - lab["forces"]))))


def on_the_fly(
    start: Atoms,
    reference: Any = "emt",
    steps: int = 200,
    std_threshold: float = 0.2,
    relative: bool = True,
    n_add: int = 4,
    refit_every: int = 5,
    max_reference_calls: int = 50,
    temperature_K: float = 600.0,
    timestep_fs: float = 2.0,
    friction_per_fs: float = 0.02,
    n_seed_frames: int = 2,
    seed_rattle: float = 0.05,
    gp_params: dict | None = None,
    test_frames: Sequence[Atoms] | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> OnTheFlyResult:
    """Learn a local GP on the fly during Langevin MD (see the module docstring).

    Parameters
    ----------
    start: starting structure (periodic or not). reference: ASE calculator or a name for
        :func:`sciml.datasets.make_calculator` (``"emt"``, ``"gfn2-xtb"``, ...).
    steps: MD steps. std_threshold, relative: label when an atom's local-energy std exceeds
        ``std_threshold * signal_std_`` (relative) or ``std_threshold`` eV.
    n_add: inducing environments added per label. refit_every: re-optimise all hyperparameters
        every this many labels (otherwise signal and noise only).
    max_reference_calls: label budget (the seed frames count).
    gp_params: keyword arguments of :class:`LocalGPPotential` for the first fit.
    test_frames: optional labelled frames; errors on them are added to each label row.

    Example
    -------
    >>> from ase.build import bulk
    >>> atoms = bulk("Cu", cubic=True).repeat(2); atoms.numbers[::4] = 79
    >>> res = on_the_fly(atoms, "emt", steps=50, std_threshold=0.2)    # doctest: +SKIP
    >>> res.labels[["step", "forces_mae_meV_per_A"]]                   # doctest: +SKIP
    """
    import pandas as pd
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from tqdm.auto import tqdm

    from sciml._runtime import quiet_progress
    from sciml.datasets import make_calculator

    for name, v in (("steps", steps), ("n_add", n_add), ("refit_every", refit_every),
                    ("max_reference_calls", max_reference_calls), ("n_seed_frames", n_seed_frames)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if n_seed_frames < 2:
        raise ValueError("n_seed_frames must be at least 2 (the GP needs two frames to fit)")
    if not std_threshold > 0:
        raise ValueError(f"std_threshold must be positive, got {std_threshold!r}")
    if n_seed_frames > max_reference_calls:
        raise ValueError(f"max_reference_calls ({max_reference_calls}) is below n_seed_frames ({n_seed_frames})")
    rng = np.random.default_rng(seed)
    ref = make_calculator(reference, start)
    frames = _seed_frames(start, ref, n_seed_frames, seed_rattle, rng)
    calls = len(frames)
    params = dict(progress=False, seed=seed)
    params.update(gp_params or {})
    model = LocalGPPotential(**params).fit(frames)
    atoms = start.copy()
    atoms.calc = LocalGPMDCalculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    out_dir = Path(out) if out is not None else None
    log, labels = [], []
    n_labels = 0
    show = progress and not quiet_progress()
    t_start = time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc="on-the-fly MD", disable=not show):
        dyn.run(1)
        std = np.asarray(atoms.calc.results["local_energy_std"])
        threshold = std_threshold * model.signal_std_ if relative else std_threshold
        row = dict(step=step, time_fs=step * timestep_fs, temperature_K=float(atoms.get_temperature()),
                   max_local_std=float(std.max()), mean_local_std=float(std.mean()), threshold=threshold,
                   labelled=False, wall_s=time.perf_counter() - t_start)
        if std.max() > threshold and calls < max_reference_calls:
            calls += 1
            n_labels += 1
            labels.append(_label_and_refit(step, atoms, ref, model, frames, std, threshold, n_add,
                                           n_labels % refit_every == 0, test_frames))
            row["labelled"] = True
            atoms.calc = LocalGPMDCalculator(model)
            if out_dir is not None:
                _write(out_dir, frames, log + [row], labels, model)
        log.append(row)
    files = _write(out_dir, frames, log, labels, model) if out_dir is not None else {}
    return OnTheFlyResult(model=model, frames=frames, log=pd.DataFrame(log), labels=pd.DataFrame(labels),
                          reference_calls=calls, files=files)


def _label_and_refit(step: int, atoms: Atoms, ref: Any, model: LocalGPPotential, frames: list, std: np.ndarray,
                     threshold: float, n_add: int, retune: bool, test_frames) -> dict:
    """Label the current MD frame, record the model's error on it, add it and its most uncertain
    environments, refit (``frames`` and ``model`` are updated in place); returns the label row."""
    from .local_gp import evaluate_local

    snap = atoms.copy()
    snap.calc = None
    new = _label(snap, ref)
    row = _label_row(step, model, snap, new, std, threshold)
    frames.append(new)
    pick = _uncertain_atoms(std, threshold, n_add)
    t0 = time.perf_counter()
    model.refit(frames, add_inducing=[(len(frames) - 1, pick)], retune=retune)
    row.update(n_train=len(frames), n_sparse=len(model.inducing_), added=len(pick), retuned=retune,
               refit_s=time.perf_counter() - t0, lengthscale=model.lengthscale_, signal_std=model.signal_std_,
               **{f"{t}_noise": v for t, v in model.noise_.items()})
    if test_frames is not None:
        m = evaluate_local(model, test_frames, max_std_structures=0)
        row.update({f"test_{k}": v for k, v in m.items() if isinstance(v, (int, float))})
    return row


def _write(out: Path, frames: list, log: list, labels: list, model: LocalGPPotential) -> dict:
    import pandas as pd

    from sciml._io import atomic_write_text
    from sciml.atoms import write_frames

    out.mkdir(parents=True, exist_ok=True)
    files = dict(log=out / "md_log.csv", labels=out / "labels.csv", dataset=out / "dataset.extxyz",
                 model=out / "model.pt")
    atomic_write_text(files["log"], pd.DataFrame(log).to_csv(index=False))
    atomic_write_text(files["labels"], pd.DataFrame(labels).to_csv(index=False))
    write_frames(files["dataset"], frames)
    model.save(files["model"])
    return {k: str(v) for k, v in files.items()}
