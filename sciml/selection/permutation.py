"""Permutation tests: Freedman--Lane p-values of regression coefficients and null distributions
of any statistic under within-group permutation of fitness."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .fits import ols


def permutation_indices(rng: np.random.Generator, B: int, group_codes: np.ndarray) -> np.ndarray:
    """``(B, n)`` random permutations that keep every individual within its group."""
    n = len(group_codes)
    order = np.argsort(group_codes, kind="stable")
    keys = group_codes[order][None, :] * 2.0 + rng.random((B, n))
    perm_sorted = np.argsort(keys, axis=1)
    out = np.empty((B, n), dtype=np.int64)
    out[:, order] = order[perm_sorted]
    return out


def freedman_lane_pvalues(y: np.ndarray, X: np.ndarray, test_cols: Sequence[int], B: int,
                          group_codes: np.ndarray, seed: int | None = None,
                          chunk: int = 500) -> np.ndarray:
    """Permutation p-values of single coefficients by the Freedman & Lane (1983) method.

    For each tested column, the residuals of the model without it are permuted (within
    groups) and added back to its fitted values; the statistic is the absolute t-value.
    ``p = (1 + #{|t*| >= |t|}) / (B + 1)``.
    """
    rng = np.random.default_rng(seed)
    n, q = X.shape
    full = ols(X, y)
    XtXi = full.normalized_cov_params
    t_obs = np.abs(full.tvalues)
    counts = np.zeros(len(test_cols))
    done = 0
    reduced = []
    for j in test_cols:
        keep = [c for c in range(q) if c != j]
        Xr = X[:, keep]
        coef_r, *_ = np.linalg.lstsq(Xr, y, rcond=None)
        fit = Xr @ coef_r
        reduced.append((fit, y - fit))
    while done < B:
        b = min(chunk, B - done)
        perm = permutation_indices(rng, b, group_codes)
        for k, j in enumerate(test_cols):
            fit, res = reduced[k]
            Y = fit[None, :] + res[perm]
            XtY = Y @ X
            coef = XtY @ XtXi
            rss = np.einsum("bn,bn->b", Y, Y) - np.einsum("bq,bq->b", coef, XtY)
            se = np.sqrt(np.maximum(rss, 0) / (n - q) * XtXi[j, j])
            counts[k] += np.sum(np.abs(coef[:, j] / se) >= t_obs[j] * (1 - 1e-12))
        done += b
    return (1 + counts) / (B + 1)


def permutation_null(y: np.ndarray, stat, B: int, group_codes: np.ndarray, seed: int | None = None,
                     chunk: int = 500) -> np.ndarray:
    """Stack ``stat(Yperm)`` over ``B`` within-group permutations of ``y`` (``Yperm`` is (b, n))."""
    rng = np.random.default_rng(seed)
    outs, done = [], 0
    while done < B:
        b = min(chunk, B - done)
        outs.append(stat(y[permutation_indices(rng, b, group_codes)]))
        done += b
    return np.concatenate(outs)


def permutation_pvalue(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided ``(1 + #{|null| >= |obs|}) / (B + 1)`` elementwise."""
    B = null.shape[0]
    return (1 + np.sum(np.abs(null) >= np.abs(observed) * (1 - 1e-12), axis=0)) / (B + 1)

