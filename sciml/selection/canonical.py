"""Canonical analysis of the quadratic selection matrix gamma (Phillips & Arnold 1989).

``gamma = M diag(lambda) M^T``; the canonical traits are ``y = M^T z``. Positive eigenvalues
are axes of disruptive (concave-up) selection, negative ones of stabilising selection.
Significance of each eigenvalue follows the double-regression method (Bisgaard & Ankenman
1996; Blows & Brooks 2003): regress relative fitness on ``y`` and ``y^2``; twice the quadratic
coefficients are exactly the eigenvalues. Their naive standard errors ignore that ``M`` was
estimated (anticonservative), so intervals come from the bootstrap (eigen-decomposing every
replicate's gamma) and p-values from permuting fitness (Reynolds et al. 2010).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .bootstrap import percentile_interval
from .fits import ols
from .permutation import permutation_pvalue
from .vocabulary import TidyResultVocabulary


@dataclass
class CanonicalResult(TidyResultVocabulary):
    """Eigen-decomposition of gamma with inference on the eigenvalues.

    Attributes
    ----------
    eigenvalues : DataFrame indexed ``y1..yp`` (descending eigenvalue) with ``estimate, se,
        ci_low, ci_high, p_value, se_naive, p_naive, method``.
    M : DataFrame (traits x canonical axes) of eigenvectors (columns; unit length).
    theta : DataFrame of linear gradients along the canonical axes (double regression).
    """

    eigenvalues: pd.DataFrame
    M: pd.DataFrame
    theta: pd.DataFrame

    def reconstruct(self) -> pd.DataFrame:
        """``M diag(lambda) M^T`` -- equals gamma."""
        M = self.M.to_numpy()
        g = M @ np.diag(self.eigenvalues["estimate"].to_numpy()) @ M.T
        return pd.DataFrame(g, index=self.M.index, columns=self.M.index)

    def canonical_traits(self, U: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Project (standardised, centred) traits onto the canonical axes: ``y = z M``."""
        arr = U[list(self.M.index)].to_numpy() if isinstance(U, pd.DataFrame) else np.asarray(U)
        return pd.DataFrame(arr @ self.M.to_numpy(), columns=self.M.columns)

    def table(self) -> pd.DataFrame:
        """Tidy table of eigenvalues and linear canonical gradients."""
        ev = self.eigenvalues.reset_index(names="term").assign(type="lambda")
        th = self.theta.reset_index(names="term").assign(type="theta")
        cols = ["term", "type", "estimate", "se", "ci_low", "ci_high", "p_value", "method"]
        return pd.concat([ev[cols], th[cols]], ignore_index=True)

    def conf_int(self) -> pd.DataFrame:
        """Intervals ``[lower, upper]`` aligned with :attr:`params` (at the analysis' level)."""
        return self._indexed()[["ci_low", "ci_high"]].set_axis(["lower", "upper"], axis=1)

    def __repr__(self) -> str:
        return ("Canonical analysis of gamma\n" + self.eigenvalues.round(4).to_string()
                + "\n\nEigenvectors M (columns)\n" + self.M.round(3).to_string())


def eigen_sorted(gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors of symmetric matrices (batched over leading axes).

    Eigenvector signs are fixed so that the largest-magnitude loading is positive.
    """
    lam, vec = np.linalg.eigh(gamma)
    lam = lam[..., ::-1]
    vec = vec[..., ::-1]
    idx = np.argmax(np.abs(vec), axis=-2)[..., None, :]
    sign = np.sign(np.take_along_axis(vec, idx, axis=-2))
    return lam, vec * np.where(sign == 0, 1, sign)


def canonical_analysis(
    gamma: np.ndarray | pd.DataFrame,
    traits: Sequence[str] | None = None,
    *,
    w: np.ndarray | None = None,
    U: np.ndarray | None = None,
    intercepts: np.ndarray | None = None,
    gamma_boot: np.ndarray | None = None,
    gamma_null: np.ndarray | None = None,
    level: float = 0.95,
) -> CanonicalResult:
    """Canonical analysis of ``gamma`` with double-regression, bootstrap and permutation inference.

    Parameters
    ----------
    gamma : (p, p) symmetric quadratic selection gradients.
    w, U : relative fitness and standardised traits of the analysis; when given, the double
        regression ``w ~ y + y^2`` gives naive SEs/p-values and the canonical linear gradients.
    intercepts : (n, G) group intercept columns for the double regression (default: one).
    gamma_boot : (B, p, p) bootstrap replicates of gamma -> SEs and percentile intervals of the
        ordered eigenvalues.
    gamma_null : (B, p, p) gamma under permuted fitness -> permutation p-values of the ordered
        eigenvalues (two-sided on ``|lambda|``).

    Example
    -------
    >>> g = np.array([[-0.2, 0.05], [0.05, 0.1]])
    >>> res = canonical_analysis(g, ["a", "b"])
    >>> np.allclose(res.reconstruct().to_numpy(), g)
    True
    """
    if isinstance(gamma, pd.DataFrame):
        traits = list(gamma.index) if traits is None else list(traits)
        gamma = gamma.to_numpy()
    gamma = np.asarray(gamma, float)
    p = gamma.shape[0]
    if gamma.shape != (p, p) or not np.allclose(gamma, gamma.T, atol=1e-10 * max(1.0, np.abs(gamma).max())):
        raise ValueError(f"gamma must be a symmetric square matrix, got shape {gamma.shape}")
    traits = [f"z{i + 1}" for i in range(p)] if traits is None else list(traits)
    axes = [f"y{i + 1}" for i in range(p)]
    lam, M = eigen_sorted(gamma)
    ev = pd.DataFrame({"estimate": lam}, index=axes)
    theta = pd.DataFrame({"estimate": np.full(p, np.nan)}, index=axes)
    for col in ("se", "ci_low", "ci_high", "p_value", "se_naive", "p_naive"):
        ev[col] = np.nan
        theta[col] = np.nan
    ev_method = "eigen-decomposition"
    th_method = ""
    if w is not None and U is not None:
        n = len(w)
        Y = U @ M
        D = np.ones((n, 1)) if intercepts is None else intercepts
        G = D.shape[1]
        fit = ols(np.hstack([D, Y, Y ** 2]), w)
        from scipy import stats
        tq = stats.t.ppf(0.5 + level / 2, fit.df_resid)
        ev["se_naive"] = 2 * fit.bse[G + p:]
        ev["p_naive"] = fit.pvalues[G + p:]
        ev["se"] = ev["se_naive"]
        ev["ci_low"] = lam - tq * ev["se_naive"]
        ev["ci_high"] = lam + tq * ev["se_naive"]
        ev["p_value"] = ev["p_naive"]
        ev_method = "double regression (naive, anticonservative)"
        theta["estimate"] = fit.params[G:G + p]
        theta["se"] = theta["se_naive"] = fit.bse[G:G + p]
        theta["p_value"] = theta["p_naive"] = fit.pvalues[G:G + p]
        theta["ci_low"] = fit.params[G:G + p] - tq * fit.bse[G:G + p]
        theta["ci_high"] = fit.params[G:G + p] + tq * fit.bse[G:G + p]
        th_method = "double regression (naive)"
    if gamma_boot is not None:
        ok = np.all(np.isfinite(gamma_boot.reshape(len(gamma_boot), -1)), axis=1)
        lb, _ = eigen_sorted(gamma_boot[ok])
        ev["se"] = lb.std(axis=0, ddof=1)
        lo, hi = percentile_interval(lb, level)
        ev["ci_low"], ev["ci_high"] = lo, hi
        ev_method = (f"CI: bootstrap percentile of ordered eigenvalues (B={int(ok.sum())}; sorting biases them "
                     f"away from zero -- judge significance by the permutation p-value)")
    if gamma_null is not None:
        ok = np.all(np.isfinite(gamma_null.reshape(len(gamma_null), -1)), axis=1)
        ln, _ = eigen_sorted(gamma_null[ok])
        ev["p_value"] = permutation_pvalue(lam, ln)
        ev_method += f"; p: permutation of fitness (B={int(ok.sum())})"
    elif w is not None:
        ev_method += "; p: naive double regression"
    ev["method"] = ev_method
    theta["method"] = th_method
    return CanonicalResult(eigenvalues=ev, M=pd.DataFrame(M, index=traits, columns=axes), theta=theta)
