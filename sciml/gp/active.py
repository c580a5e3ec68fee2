"""Uncertainty-driven active learning of a GP potential.

Loop: fit :class:`~sciml.gp.GPPotential` on the labelled set -> run Langevin MD
with the GP as calculator -> record the model's (latent) force uncertainty along
the trajectory -> label the ``n_select`` most uncertain frames (kept at least
``min_separation`` steps apart) with a reference ASE calculator (tblite
GFN2-xTB by default) -> refit -> repeat until the largest force std seen in MD
falls below ``target_force_std`` or the reference-call budget is spent.
Every iteration appends a row to the learning curve (training-set size,
uncertainty, and errors on an optional held-out set); the growing data set,
the curve and the final model are written to ``out``.

Steps of :func:`active_learning`: ``_check_loop_args`` -> ``_label_missing`` -> per iteration
``_fit`` -> :func:`run_md_with_uncertainty` -> ``_curve_row`` -> ``_write_state`` -> ``_select``
+ ``_label`` -> ``_result``.

For materials (periodic, several elements, large cells) the FLARE-style on-the-fly mode
:func:`on_the_fly` (:mod:`sciml.gp.onthefly`) learns a :class:`~sciml.gp.LocalGPPotential`
during one MD run, labelling single frames when an atom's local-energy uncertainty crosses a threshold.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .evaluation import evaluate
from .global_gp import GPPotential
from .onthefly import OnTheFlyResult, on_the_fly

__all__ = ["ActiveLearningResult", "active_learning", "run_md_with_uncertainty", "on_the_fly", "OnTheFlyResult"]


@dataclass
class ActiveLearningResult:
    """Outcome of :func:`active_learning`.

    Attributes
    ----------
    model: the final fitted GP. frames: the labelled data set (initial + selected).
    curve: learning curve (pandas DataFrame, one row per fit).
    converged: the target uncertainty was reached. reference_calls: reference calculations made.
    """

    model: GPPotential
    frames: list
    curve: Any
    converged: bool
    reference_calls: int
    files: dict = field(default_factory=dict)

    def table(self) -> "pandas.DataFrame":  # noqa: F821
        """The learning curve."""
        return self.curve

    def summary(self) -> str:
        """Short text summary."""
        last = self.curve.iloc[-1]
        lines = [f"GP active learning: {len(self.frames)} labelled frames, {self.reference_calls} reference calls, "
                 f"converged={self.converged}",
                 f"final max force std in MD: {last['md_max_force_std']:.4g} eV/Å"]
        if "test_forces_mae_meV_per_A" in self.curve:
            lines.append(f"final test force MAE: {last['test_forces_mae_meV_per_A']:.4g} meV/Å, "
                         f"energy MAE: {last['test_energy_mae_meV']:.4g} meV")
        return "\n".join(lines)


def run_md_with_uncertainty(
    model: GPPotential,
    start: Atoms,
    steps: int,
    temperature_K: float = 500.0,
    timestep_fs: float = 0.5,
    friction_per_fs: float = 0.02,
    max_force_std: float | None = None,
    seed: int = 0,
) -> tuple[list[Atoms], np.ndarray]:
    """Langevin MD driven by the GP; returns the frames and the max latent force std (eV/Å) of each.

    Stops early when the uncertainty exceeds ``max_force_std``, two atoms come
    closer than 0.5 Å, or an atom is more than 4 Å from all others (the GP has left
    its training region); the last frames are then the most informative ones to label.

    Example
    -------
    >>> frames, std = run_md_with_uncertainty(gp, start, 100)   # doctest: +SKIP
    """
    from ase import units
    from ase.md.langevin import Langevin
    try:  # ASE >= 3.28
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # older ASE
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta

    from .calculator import GPCalculator

    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    atoms = start.copy()
    atoms.calc = GPCalculator(model, uncertainty=True, include_noise=False)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    frames, stds = [], []
    for _ in range(steps):
        dyn.run(1)
        std = float(np.max(atoms.calc.results["forces_std"]))
        snap = atoms.copy()
        snap.calc = None
        frames.append(snap)
        stds.append(std)
        d = atoms.get_all_distances()
        np.fill_diagonal(d, np.inf)
        if (max_force_std is not None and std > max_force_std) or d.min() < 0.5 or d.min(axis=1).max() > 4.0:
            break
    return frames, np.array(stds)


def _select(stds: np.ndarray, k: int, min_separation: int) -> list[int]:
    order = np.argsort(-stds)
    chosen: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= min_separation for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return sorted(chosen)


def _label(frames: Sequence[Atoms], reference: Any) -> list[Atoms]:
    from sciml.atoms import attach_labels

    out = []
    for a in frames:
        b = a.copy()
        b.calc = reference
        e = b.get_potential_energy()
        f = b.get_forces()
        out.append(attach_labels(a, energy=e, forces=f))
    return out


def active_learning(
    initial_frames: Sequence[Atoms],
    reference: Any = "gfn2-xtb",
    test_frames: Sequence[Atoms] | None = None,
    n_iterations: int = 10,
    md_steps: int = 200,
    n_select: int = 5,
    min_separation: int = 10,
    target_force_std: float = 0.1,
    max_reference_calls: int = 100,
    stop_force_std: float = 2.0,
    temperature_K: float = 500.0,
    timestep_fs: float = 0.5,
    friction_per_fs: float = 0.02,
    gp_params: dict | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ActiveLearningResult:
    """Grow a training set by uncertainty-driven active learning.

    Parameters
    ----------
    initial_frames:
        Starting configurations of one molecule (at least 2). Frames without
        energy/forces are labelled with ``reference`` (and count towards the budget).
    reference:
        An ASE calculator or a name understood by :func:`sciml.datasets.make_calculator`
        (``"gfn2-xtb"`` default, ``"emt"``, ...).
    test_frames:
        Optional labelled held-out frames: test errors are added to the learning curve.
    n_iterations, md_steps, n_select, min_separation:
        Loop length, MD steps per iteration, frames labelled per iteration, minimum
        MD-step distance between frames selected in one iteration.
    target_force_std:
        Stop when the largest latent force std (eV/Å) along an MD run is below this.
    max_reference_calls:
        Budget of reference calculations.
    stop_force_std:
        An MD run stops early when the largest force std exceeds this (eV/Å).
    temperature_K, timestep_fs, friction_per_fs:
        Langevin MD settings.
    gp_params:
        Keyword arguments for :class:`GPPotential`.
    out:
        Folder for ``dataset.extxyz``, ``learning_curve.csv`` and ``model.pt`` (updated every iteration).

    Example
    -------
    >>> from sciml.datasets import load_pes
    >>> frames = load_pes("ethanol_gfn2_500K")
    >>> res = active_learning(frames[:5], test_frames=frames[-100:], n_iterations=3)   # doctest: +SKIP
    >>> res.curve[["n_train", "test_forces_mae_meV_per_A"]]                            # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from sciml._runtime import quiet_progress
    from sciml.datasets import make_calculator

    _check_loop_args(initial_frames, n_iterations, md_steps, n_select, max_reference_calls)
    ref = make_calculator(reference, initial_frames[0])
    frames, calls = _label_missing(list(initial_frames), ref)
    params = dict(progress=False, seed=seed)
    params.update(gp_params or {})
    out_dir = Path(out) if out is not None else None
    rows: list[dict] = []
    converged = False
    rng = np.random.default_rng(seed)
    start = frames[0]
    bar = tqdm(range(n_iterations), desc="active learning", disable=not (progress and not quiet_progress()))
    model = None
    for it in bar:
        model, fit_s = _fit(frames, params)
        md_frames, stds = run_md_with_uncertainty(
            model, start, md_steps, temperature_K, timestep_fs, friction_per_fs,
            max_force_std=stop_force_std, seed=seed + it)
        rows.append(_curve_row(it, frames, calls, fit_s, model, md_frames, stds, test_frames))
        bar.set_postfix(n=len(frames), std=f"{rows[-1]['md_max_force_std']:.3g}")
        if out_dir is not None:
            _write_state(out_dir, rows, frames, model)
        if stds.max() < target_force_std:
            converged = True
            break
        budget = max_reference_calls - calls
        if budget <= 0 or it == n_iterations - 1:
            break
        new = _label([md_frames[i] for i in _select(stds, min(n_select, budget), min_separation)], ref)
        calls += len(new)
        frames.extend(new)
        # next MD run starts from a labelled frame (cycling through the data set): GP-driven MD from
        # an early, poor model drifts into unphysical regions, labelled frames keep it anchored
        start = frames[int(rng.integers(len(frames)))]
    return _result(model, frames, rows, converged, calls, out_dir)


def _check_loop_args(initial_frames, n_iterations, md_steps, n_select, max_reference_calls) -> None:
    if len(initial_frames) < 2:
        raise ValueError(f"initial_frames: need at least 2 configurations, got {len(initial_frames)}")
    for name, v in (("n_iterations", n_iterations), ("md_steps", md_steps), ("n_select", n_select),
                    ("max_reference_calls", max_reference_calls)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _label_missing(frames: list, ref: Any) -> tuple[list, int]:
    """Label the frames that lack energy or forces; returns the frames and the number of reference calls."""
    from sciml.atoms import frame_labels

    unlabelled = [k for k, a in enumerate(frames)
                  if frame_labels(a)["energy"] is None or frame_labels(a)["forces"] is None]
    for k, a in zip(unlabelled, _label([frames[k] for k in unlabelled], ref)):
        frames[k] = a
    return frames, len(unlabelled)


def _fit(frames: list, params: dict) -> tuple[GPPotential, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # noise at its floor is expected for noiseless reference data
        model = GPPotential(**params).fit(frames)
    return model, time.perf_counter() - t0


def _curve_row(it, frames, calls, fit_s, model, md_frames, stds, test_frames) -> dict:
    row = dict(iteration=it, n_train=len(frames), reference_calls=calls, fit_time_s=fit_s,
               lengthscale=model.lengthscale_, force_noise=model.force_noise_,
               md_steps_run=len(md_frames), md_max_force_std=float(stds.max()),
               md_mean_force_std=float(stds.mean()))
    if test_frames is not None:
        m = evaluate(model, test_frames)
        row.update({f"test_{k}": v for k, v in m.items() if isinstance(v, (int, float)) and v is not None})
    return row


def _write_state(out_dir: Path, rows: list, frames: list, model: GPPotential) -> None:
    import pandas as pd

    from sciml._io import atomic_write_text
    from sciml.atoms import write_frames

    atomic_write_text(out_dir / "learning_curve.csv", pd.DataFrame(rows).to_csv(index=False))
    write_frames(out_dir / "dataset.extxyz", frames)
    model.save(out_dir / "model.pt")


def _result(model, frames, rows, converged, calls, out_dir) -> ActiveLearningResult:
    import pandas as pd

    files = {}
    if out_dir is not None:
        files = {k: str(out_dir / v) for k, v in
                 (("dataset", "dataset.extxyz"), ("learning_curve", "learning_curve.csv"), ("model", "model.pt"))}
    return ActiveLearningResult(model=model, frames=frames, curve=pd.DataFrame(rows), converged=converged,
                                reference_calls=calls, files=files)
