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


def calibration_summary(structures, atoms) -> dict:
    """How well the committee spread tracks the error.

    Spearman rank correlations (spread vs absolute error) per atom and per structure, and
    coverage: the fraction of force components whose error lies within 1 and 2 committee
    standard deviations (a calibrated Gaussian gives 0.68 and 0.95; committees are usually
    over-confident, i.e. lower), plus the error-to-spread ratio RMS(err)/RMS(std).
    """
    from scipy.stats import spearmanr

    err = atoms[["err_x", "err_y", "err_z"]].to_numpy().ravel()
    std = atoms[["std_x", "std_y", "std_z"]].to_numpy().ravel()
    rho_a = spearmanr(atoms.force_std_eV_A, atoms.force_error_eV_A)
    rho_s = spearmanr(structures.energy_std_eV, structures.energy_error_eV.abs()) if len(structures) > 2 else None
    return {
        "n_structures": int(len(structures)),
        "n_atoms": int(len(atoms)),
        "force_spearman_std_vs_error": float(rho_a.statistic),
        "force_spearman_pvalue": float(rho_a.pvalue),
        "energy_spearman_std_vs_abs_error": float(rho_s.statistic) if rho_s is not None else float("nan"),
        "force_coverage_1sigma": float(np.mean(np.abs(err) <= std)),
        "force_coverage_2sigma": float(np.mean(np.abs(err) <= 2 * std)),
        "force_error_to_spread_ratio": float(np.sqrt(np.mean(err**2)) / max(np.sqrt(np.mean(std**2)), 1e-300)),
        "committee_forces_mae_meV_per_A": float(1000 * np.mean(np.abs(err))),
        "committee_energy_mae_meV": float(1000 * structures.energy_error_eV.abs().mean()),
        "mean_force_std_meV_per_A": float(1000 * np.mean(std)),
    }
