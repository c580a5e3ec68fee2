"""Committee (ensemble) uncertainty versus actual error on labelled data."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def committee_errors(calc, frames: Sequence) -> tuple["pandas.DataFrame", "pandas.DataFrame"]:  # noqa: F821
    """Committee predictions against labels, per structure and per atom.

    ``calc`` is a :class:`~sciml.potentials.SciMLCalculator` with >= 2 models. Returns
    ``(structures, atoms)`` DataFrames: per structure ``energy_error_eV`` (committee mean minus
    reference), ``energy_std_eV``, ``n_atoms``; per atom ``force_error_eV_A`` (norm of the
    error vector of the mean force), ``force_std_eV_A`` (norm of the per-component spread),
    and per-component errors/spreads ``err_x..z``, ``std_x..z``.

    Example
    -------
    >>> s, a = committee_errors(SciMLCalculator(["m0.pt", "m1.pt", "m2.pt"]), test)  # doctest: +SKIP
    """
    import pandas as pd

    if len(getattr(calc, "models", [])) < 2:
        raise ValueError("committee_errors needs a SciMLCalculator built from at least 2 models")
    srows, arows = [], []
    for k, ref in enumerate(frames):
        e_ref, f_ref = ref.get_potential_energy(), ref.get_forces()
        a = ref.copy()
        a.calc = calc
        e = a.get_potential_energy()
        f = a.get_forces()
        r = calc.results
        srows.append({"structure": k, "n_atoms": len(a), "energy_error_eV": e - e_ref, "energy_std_eV": r["energy_std"]})
        err = f - f_ref
        std = r["forces_std"]
        for i in range(len(a)):
            arows.append({
                "structure": k, "atom": i, "Z": int(a.numbers[i]),
                "force_error_eV_A": float(np.linalg.norm(err[i])), "force_std_eV_A": float(np.linalg.norm(std[i])),
                "err_x": err[i, 0], "err_y": err[i, 1], "err_z": err[i, 2],
                "std_x": std[i, 0], "std_y": std[i, 1], "std_z": std[i, 2],
            })
    return pd.DataFrame(srows), pd.DataFrame(arows)


def spearman_null_bound(n: int, level: float = 0.999) -> float:
    """Upper ``level`` quantile of Spearman's rho between ``n`` independent rankings (normal approximation
    ``z_level / sqrt(n - 1)``; accurate for n of a few dozen and more).

    Example
    -------
    >>> round(spearman_null_bound(1001), 4)
    0.0977
    """
    from scipy.stats import norm

    if n < 3:
        raise ValueError(f"need at least 3 pairs for a rank correlation, got {n}")
    return float(norm.ppf(level) / np.sqrt(n - 1))


def calibration_summary(structures, atoms) -> dict:
    """How well the committee spread tracks the error (keys as in :mod:`sciml.metrics`).

    ``forces_spearman_std_vs_error``: rank correlation of the per-atom spread (norm) with the
    per-atom error (norm); ``forces_spearman_null_999``: the value a random ranking of that many
    atoms exceeds with probability 0.1 % (``z_0.999 / sqrt(n - 1)``, the normal approximation of
    Spearman's rho under independence), so a committee whose rho is above it ranks errors;
    ``energy_spearman_std_vs_error`` the same per structure;
    ``forces_coverage_68`` / ``forces_coverage_95``: fraction of force components within 1 / 1.96
    committee standard deviations (a calibrated Gaussian gives 0.68 / 0.95; committees are usually
    over-confident, i.e. lower); ``forces_error_to_std_ratio``: RMS(error) / RMS(spread);
    ``energy_mae_meV`` and ``forces_mae_meV_per_A`` of the committee mean.
    """
    from scipy.stats import spearmanr

    from ..metrics import uncertainty_metrics

    err = atoms[["err_x", "err_y", "err_z"]].to_numpy().ravel()
    std = atoms[["std_x", "std_y", "std_z"]].to_numpy().ravel()
    out = {"n_structures": int(len(structures)), "n_atoms": int(len(atoms))}
    out.update(uncertainty_metrics(err, std, "forces", rank_errors=atoms.force_error_eV_A, rank_std=atoms.force_std_eV_A))
    out["forces_spearman_pvalue"] = float(spearmanr(atoms.force_std_eV_A, atoms.force_error_eV_A).pvalue)
    out["forces_spearman_null_999"] = spearman_null_bound(len(atoms), 0.999)
    e_err = structures.energy_error_eV.to_numpy()
    e_std = structures.energy_std_eV.to_numpy()
    out.update(uncertainty_metrics(e_err, e_std, "energy"))
    out["forces_mae_meV_per_A"] = float(1000 * np.mean(np.abs(err)))
    out["energy_mae_meV"] = float(1000 * np.mean(np.abs(e_err)))
    return out
