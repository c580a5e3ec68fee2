"""Test-set metrics of a fitted GP potential, from :mod:`sciml.metrics` (one key scheme for every ``eval --json``)."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from ase import Atoms

from ..metrics import error_metrics, uncertainty_metrics
from .data import frames_to_arrays

__all__ = ["evaluate"]


def _uncertainty_keys(model, pos, e_err, f_err, batch_size: int) -> dict:
    """Calibrated and raw (``..._raw``) 95 % coverage of energy and force errors, mean predicted force std."""
    t1 = time.perf_counter()
    _, _, Es, Fs = model.predict_positions(pos, return_std=True, include_noise=True, batch_size=batch_size,
                                           calibrated=False)
    dts = time.perf_counter() - t1
    scale = getattr(model, "std_scale_", None) or {"energy": 1.0, "forces": 1.0}
    fu = uncertainty_metrics(f_err, Fs * scale["forces"], "forces")
    eu = uncertainty_metrics(e_err, Es * scale["energy"], "energy")
    return dict(
        forces_std_mean_meV_per_A=fu["forces_std_mean_meV_per_A"],
        forces_coverage_95=fu["forces_coverage_95"],
        energy_coverage_95=eu["energy_coverage_95"],
        forces_coverage_95_raw=uncertainty_metrics(f_err, Fs, "forces")["forces_coverage_95"],
        energy_coverage_95_raw=uncertainty_metrics(e_err, Es, "energy")["energy_coverage_95"],
        calibrated=bool(scale != {"energy": 1.0, "forces": 1.0}),
        n_structures_std=len(pos),
        predict_std_time_s_per_structure=dts / len(pos),
    )


def evaluate(model, frames: Sequence[Atoms], max_std_structures: int | None = None, batch_size: int = 16) -> dict:
    """Test-set metrics: MAE/RMSE of energies (meV, meV/atom) and forces (meV/Å), uncertainty calibration.

    ``model`` is a fitted :class:`~sciml.gp.GPPotential`. Keys: ``n_structures, energy_mae_meV,
    energy_rmse_meV, energy_mae_meV_per_atom, forces_mae_meV_per_A, forces_rmse_meV_per_A`` (all
    frames); ``forces_coverage_95`` and ``energy_coverage_95`` (fraction of errors inside the 95 %
    predictive interval, noise included, with the model's calibration factors), the same without
    them as ``forces_coverage_95_raw`` / ``energy_coverage_95_raw``, ``calibrated`` (whether the
    model carries calibration factors), ``forces_std_mean_meV_per_A`` (mean calibrated force std),
    ``n_structures_std`` (frames used for the uncertainty keys: the first ``max_std_structures``,
    all if ``None``; each costs a triangular solve), ``predict_time_s_per_structure`` (energies +
    forces) and ``predict_std_time_s_per_structure``.

    Example
    -------
    >>> metrics = evaluate(gp, test_frames)   # doctest: +SKIP
    """
    pos, e_ref, f_ref = frames_to_arrays(frames, labels=True, numbers=model.numbers_, source="test frames")
    t0 = time.perf_counter()
    E, F, _, _ = model.predict_positions(pos, return_std=False, batch_size=batch_size)
    dt = time.perf_counter() - t0
    k = len(pos) if max_std_structures is None else max(0, min(len(pos), int(max_std_structures)))
    out = error_metrics(E, e_ref, np.full(len(pos), pos.shape[1]), F, f_ref)
    if k > 0:
        out.update(_uncertainty_keys(model, pos[:k], E[:k] - e_ref[:k], F[:k] - f_ref[:k], batch_size))
    else:
        out.update(forces_std_mean_meV_per_A=None, forces_coverage_95=None, energy_coverage_95=None,
                   forces_coverage_95_raw=None, energy_coverage_95_raw=None, n_structures_std=0,
                   predict_std_time_s_per_structure=None)
    out["predict_time_s_per_structure"] = dt / len(pos)
    return out
