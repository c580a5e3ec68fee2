"""Do selection gradients differ between groups? F-test (OLS) or likelihood-ratio test (GLM) of
group x trait interactions, with an optional permutation test of group labels."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .fits import glm
from .gradients import (PreparedData, SeparationWarning, quadratic_terms, relative_fitness,
                        standardize_traits)


def _interaction_designs(U: np.ndarray, codes: np.ndarray, G: int, quadratic: bool):
    n, p = U.shape
    D = np.zeros((n, G))
    D[np.arange(n), codes] = 1.0
    lin_by = (U[:, :, None] * D[:, None, :]).reshape(n, -1)
    if not quadratic:
        return np.hstack([D, U]), np.hstack([D, lin_by])
    Q = np.column_stack([U[:, i] * U[:, j] for i, j in quadratic_terms(p)])
    quad_by = (Q[:, :, None] * D[:, None, :]).reshape(n, -1)
    return np.hstack([D, lin_by, Q]), np.hstack([D, lin_by, quad_by])


def group_f_stat(w: np.ndarray, U: np.ndarray, codes: np.ndarray, G: int, quadratic: bool) -> tuple[float, int, int]:
    """F statistic for group-specific (vs common) linear or quadratic coefficients."""
    Xr, Xf = _interaction_designs(U, codes, G, quadratic)
    rss = []
    for X in (Xr, Xf):
        coef, *_ = np.linalg.lstsq(X, w, rcond=None)
        r = w - X @ coef
        rss.append(float(r @ r))
    df1 = Xf.shape[1] - Xr.shape[1]
    df2 = len(w) - Xf.shape[1]
    F = ((rss[0] - rss[1]) / df1) / (rss[1] / df2)
    return F, df1, df2


def group_lrt(W: np.ndarray, U: np.ndarray, codes: np.ndarray, G: int, quadratic: bool,
              family: str) -> tuple[float, int]:
    """Likelihood-ratio statistic (GLM) for group-specific vs common coefficients."""
    Xr, Xf = _interaction_designs(U, codes, G, quadratic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        lf = glm(Xf, W, family, what="group comparison (group-specific gradients)")
        lr = glm(Xr, W, lf.family, what="group comparison (common gradients)")   # same family as the full fit
    return 2 * (lf.llf - lr.llf), Xf.shape[1] - Xr.shape[1], lf.family


def group_test(prep: PreparedData, quadratic: bool, permutations: int, seed: int | None) -> pd.DataFrame:
    """Test that linear (and quadratic) gradients are equal in all groups of ``prep``.

    Continuous fitness: F-test of the group x trait (and group x quadratic-term) interactions in
    the OLS of within-group relative fitness; binary/count fitness: likelihood-ratio test of the
    same interactions in the GLM. With ``permutations``, group labels are permuted (keeping the
    traits and fitness of each individual together) and the F statistic recomputed.
    Returns a DataFrame with one row per gradient type (``beta``, ``gamma``).
    """
    U = standardize_traits(prep.Z_raw, prep.standardize)
    codes, G = prep.group_codes, len(prep.group_names)
    w = relative_fitness(prep.W, codes)
    rows = []
    for quad in ([False, True] if quadratic else [False]):
        label = "gamma" if quad else "beta"
        per_group = 1 + prep.p + (prep.p * (prep.p + 1) // 2 if quad else 0)
        sizes = np.bincount(codes, minlength=G)
        small = [f"{prep.group_names[g]!r} has {sizes[g]}" for g in range(G) if sizes[g] <= per_group]
        if small:
            rows.append({"gradients": label, "statistic": np.nan, "df": np.nan, "df_resid": np.nan, "p_value": np.nan,
                         "method": f"not testable: the group-specific model has {per_group} parameters per group "
                                   f"and group {', '.join(small)} individuals"})
            continue
        if prep.fitness_type == "continuous":
            F, df1, df2 = group_f_stat(w, U, codes, G, quad)
            row = {"gradients": label, "statistic": F, "df": df1, "df_resid": df2,
                   "p_value": stats.f.sf(F, df1, df2), "method": "F-test of group x trait interactions (OLS)"}
        else:
            fam = "binomial" if prep.fitness_type == "binary" else "count"
            lr, df1, fam = group_lrt(prep.W, U, codes, G, quad, fam)
            row = {"gradients": label, "statistic": lr, "df": df1, "df_resid": np.nan,
                   "p_value": stats.chi2.sf(lr, df1),
                   "method": f"likelihood-ratio test of group x trait interactions ({fam} GLM)"}
        if permutations:
            F_obs, *_ = group_f_stat(w, U, codes, G, quad)
            rng = np.random.default_rng(None if seed is None else seed + 2)
            null = np.empty(permutations)
            for b in range(permutations):
                c = rng.permutation(codes)
                if any(prep.W[c == g].sum() == 0 for g in range(G)):
                    null[b] = np.nan
                    continue
                null[b] = group_f_stat(relative_fitness(prep.W, c), U, c, G, quad)[0]
            null = null[np.isfinite(null)]
            row["p_permutation"] = (1 + np.sum(null >= F_obs * (1 - 1e-12))) / (len(null) + 1)
            row["method"] += f"; p_permutation: group labels permuted (B={len(null)})"
        rows.append(row)
    return pd.DataFrame(rows)
