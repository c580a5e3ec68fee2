"""Error and uncertainty metrics: the one place every ``eval --json`` takes its numbers from.

Naming scheme (all keys): ``<quantity>_<statistic>[_<unit>]``

- quantity: ``energy`` (per structure), ``forces`` (Cartesian components), ``stress``
  (the 6 Voigt or 9 Cartesian components, as given);
- statistic: ``mae``, ``rmse``, ``coverage_68`` / ``coverage_95`` (fraction of errors inside the
  central 68.27 % / 95 % Gaussian interval of the predicted standard deviation), ``std_mean``
  (mean predicted standard deviation), ``spearman_std_vs_error`` (rank correlation of predicted
  spread and absolute error), ``error_to_std_ratio`` (RMS error / RMS std; 1 when calibrated);
- unit: ``meV``, ``meV_per_atom``, ``meV_per_A``, ``GPa``.

Inputs are in ASE units (eV, eV/Å, eV/Å³); outputs in the units the key names.

Example
-------
>>> import numpy as np
>>> m = error_metrics(np.array([1.0, 2.0]), np.array([1.001, 1.998]), n_atoms=[2, 2])
>>> round(m["energy_mae_meV"], 6), round(m["energy_mae_meV_per_atom"], 6)
(1.5, 0.75)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: 1 eV/Å³ in GPa.
EV_PER_A3_TO_GPA = 160.21766208

#: Sums kept by :class:`ErrorAccumulator` (in this order); a flat float64 vector, so that
#: distributed evaluation can all-reduce it in one call.
SUM_FIELDS = (
    "n_structures", "n_atoms",
    "energy_abs", "energy_sq", "energy_per_atom_abs", "energy_per_atom_sq",
    "forces_abs", "forces_sq", "forces_n",
    "stress_abs", "stress_sq", "stress_n",
)


def _z(level: float) -> float:
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise ValueError(f"coverage level must be in (0, 1), got {level!r}")
    return float(norm.ppf(0.5 + level / 2.0))


class ErrorAccumulator:
    """Streaming sums of prediction errors, turned into metrics at the end.

    Add batches with :meth:`add` (errors = prediction - reference, ASE units); :attr:`sums` is a
    flat vector (see :data:`SUM_FIELDS`) that can be all-reduced across processes before
    :meth:`metrics`.

    Example
    -------
    >>> acc = ErrorAccumulator()
    >>> acc.add(energy_error=[0.002], n_atoms=[4], forces_error=np.full((4, 3), 0.01))
    >>> round(acc.metrics()["forces_mae_meV_per_A"], 6)
    10.0
    """

    def __init__(self) -> None:
        self.sums = np.zeros(len(SUM_FIELDS), dtype=np.float64)

    def add(self, energy_error: Sequence[float], n_atoms: Sequence[int], forces_error=None, stress_error=None) -> None:
        """Add one batch: per-structure energy errors (eV), atom counts, force and stress errors."""
        de = np.asarray(energy_error, dtype=np.float64).reshape(-1)
        n = np.asarray(n_atoms, dtype=np.float64).reshape(-1)
        if de.shape != n.shape:
            raise ValueError(f"energy_error has {de.size} structures but n_atoms has {n.size}")
        s = self.sums
        s[0] += de.size
        s[1] += n.sum()
        s[2] += np.abs(de).sum()
        s[3] += (de**2).sum()
        s[4] += np.abs(de / n).sum()
        s[5] += ((de / n) ** 2).sum()
        if forces_error is not None:
            df = np.asarray(forces_error, dtype=np.float64)
            s[6] += np.abs(df).sum()
            s[7] += (df**2).sum()
            s[8] += df.size
        if stress_error is not None:
            ds = np.asarray(stress_error, dtype=np.float64)
            s[9] += np.abs(ds).sum()
            s[10] += (ds**2).sum()
            s[11] += ds.size

    def metrics(self) -> dict[str, float]:
        """MAE/RMSE of energies (meV, meV/atom), forces (meV/Å) and stress (GPa) added so far."""
        return metrics_from_sums(self.sums)


def metrics_from_sums(sums: Sequence[float]) -> dict[str, float]:
    """Metrics from the flat sums of :class:`ErrorAccumulator` (e.g. after an all-reduce)."""
    a = [float(v) for v in sums]
    if len(a) != len(SUM_FIELDS):
        raise ValueError(f"expected {len(SUM_FIELDS)} sums ({', '.join(SUM_FIELDS)}), got {len(a)}")
    ns = max(a[0], 1.0)
    out: dict[str, float] = {
        "n_structures": int(a[0]),
        "n_atoms": int(a[1]),
        "energy_mae_meV": 1000.0 * a[2] / ns,
        "energy_rmse_meV": 1000.0 * np.sqrt(a[3] / ns),
        "energy_mae_meV_per_atom": 1000.0 * a[4] / ns,
        "energy_rmse_meV_per_atom": 1000.0 * np.sqrt(a[5] / ns),
    }
    if a[8] > 0:
        out["forces_mae_meV_per_A"] = 1000.0 * a[6] / a[8]
        out["forces_rmse_meV_per_A"] = 1000.0 * float(np.sqrt(a[7] / a[8]))
    if a[11] > 0:
        out["stress_mae_GPa"] = EV_PER_A3_TO_GPA * a[9] / a[11]
        out["stress_rmse_GPa"] = EV_PER_A3_TO_GPA * float(np.sqrt(a[10] / a[11]))
    return out


def error_metrics(
    energy_pred: Sequence[float],
    energy_ref: Sequence[float],
    n_atoms: Sequence[int],
    forces_pred=None,
    forces_ref=None,
    stress_pred=None,
    stress_ref=None,
) -> dict[str, float]:
    """MAE and RMSE of predictions against references (ASE units in; meV, meV/Å, GPa out).

    Forces may be one array ``(n_structures, n_atoms, 3)`` or a list of ``(n_atoms_k, 3)`` arrays
    (structures of different sizes); the same for stress.
    """
    def _diff(p, r, name):
        if p is None and r is None:
            return None
        if p is None or r is None:
            raise ValueError(f"{name}: both predictions and references are needed")
        if isinstance(p, (list, tuple)):
            if len(p) != len(r):
                raise ValueError(f"{name}: {len(p)} predicted structures but {len(r)} references")
            parts = [np.asarray(a, np.float64) - np.asarray(b, np.float64) for a, b in zip(p, r)]
            return np.concatenate([d.ravel() for d in parts]) if parts else np.zeros(0)
        p, r = np.asarray(p, np.float64), np.asarray(r, np.float64)
        if p.shape != r.shape:
            raise ValueError(f"{name}: predictions have shape {p.shape} but references {r.shape}")
        return (p - r).ravel()

    acc = ErrorAccumulator()
    e_pred, e_ref = np.asarray(energy_pred, np.float64).reshape(-1), np.asarray(energy_ref, np.float64).reshape(-1)
    if e_pred.shape != e_ref.shape:
        raise ValueError(f"energies: {e_pred.size} predictions but {e_ref.size} references")
    acc.add(e_pred - e_ref, n_atoms, _diff(forces_pred, forces_ref, "forces"), _diff(stress_pred, stress_ref, "stress"))
    return acc.metrics()


def coverage(errors, std, level: float = 0.95) -> float:
    """Fraction of ``errors`` inside the central ``level`` Gaussian interval ``±z·std``."""
    err = np.abs(np.asarray(errors, np.float64)).ravel()
    sd = np.asarray(std, np.float64).ravel()
    if err.shape != sd.shape:
        raise ValueError(f"errors ({err.size}) and std ({sd.size}) differ in size")
    if err.size == 0:
        raise ValueError("coverage of an empty set of errors")
    return float(np.mean(err <= _z(level) * sd))


_UNIT = {"energy": ("meV", 1000.0), "forces": ("meV_per_A", 1000.0), "stress": ("GPa", EV_PER_A3_TO_GPA)}


def uncertainty_metrics(errors, std, quantity: str = "forces", rank_errors=None, rank_std=None) -> dict[str, float]:
    """How well predicted standard deviations describe actual errors.

    ``errors`` and ``std`` are matching arrays (ASE units). Keys (for ``quantity="forces"``):
    ``forces_coverage_68``, ``forces_coverage_95``, ``forces_std_mean_meV_per_A``,
    ``forces_error_to_std_ratio`` and ``forces_spearman_std_vs_error`` (rank correlation of
    ``rank_std`` with ``rank_errors`` when given -- e.g. per-atom norms -- else of ``std`` with
    ``|errors|``).
    """
    from scipy.stats import spearmanr

    if quantity not in _UNIT:
        raise ValueError(f"quantity must be one of {sorted(_UNIT)}, got {quantity!r}")
    unit, scale = _UNIT[quantity]
    err = np.asarray(errors, np.float64).ravel()
    sd = np.asarray(std, np.float64).ravel()
    out = {
        f"{quantity}_coverage_68": coverage(err, sd, 0.6826894921370859),
        f"{quantity}_coverage_95": coverage(err, sd, 0.95),
        f"{quantity}_std_mean_{unit}": scale * float(np.mean(sd)),
        f"{quantity}_error_to_std_ratio": float(np.sqrt(np.mean(err**2)) / max(np.sqrt(np.mean(sd**2)), 1e-300)),
    }
    re = np.abs(err) if rank_errors is None else np.asarray(rank_errors, np.float64).ravel()
    rs = sd if rank_std is None else np.asarray(rank_std, np.float64).ravel()
    out[f"{quantity}_spearman_std_vs_error"] = float(spearmanr(rs, re).statistic) if re.size > 2 else float("nan")
    return out
