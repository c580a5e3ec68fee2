"""Regression fits used by the selection analysis: OLS and GLMs (logistic, Poisson, negative binomial).

Every fit object speaks statsmodels' vocabulary: ``params``, ``bse``, ``tvalues``, ``pvalues``,
``cov_params()``, ``conf_int(alpha)``, ``df_resid``, ``nobs`` (and ``llf`` for likelihood fits),
so a result can be compared with, or swapped for, the statsmodels one line by line.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .gradients import SeparationWarning
from .._warnings import user_stacklevel
from .wald import WaldInference


@dataclass
class OLSFit:
    """Ordinary least squares with classical (homoscedastic) standard errors.

    ``params``, ``bse``, ``tvalues``, ``pvalues`` (two-sided t-test on ``df_resid``), ``ssr``
    (residual sum of squares), ``normalized_cov_params`` (``(X'X)^-1``), ``cov_params()`` and
    ``conf_int(alpha)`` as in ``statsmodels.regression.linear_model.RegressionResults``.
    """

    params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray
    df_resid: int
    ssr: float
    normalized_cov_params: np.ndarray

    @property
    def nobs(self) -> int:
        return int(self.df_resid + len(self.params))

    @property
    def scale(self) -> float:
        """Residual variance ``ssr / df_resid``."""
        return self.ssr / self.df_resid if self.df_resid > 0 else np.nan

    def cov_params(self) -> np.ndarray:
        return self.scale * self.normalized_cov_params

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(q, 2)`` t-based confidence intervals at level ``1 - alpha``."""
        q = stats.t.ppf(1 - alpha / 2, self.df_resid)
        return np.column_stack([self.params - q * self.bse, self.params + q * self.bse])


def ols(X: np.ndarray, y: np.ndarray) -> OLSFit:
    """Ordinary least squares (QR) with classical standard errors and two-sided t-test p-values.

    Example
    -------
    >>> X = np.column_stack([np.ones(4), [0.0, 1, 2, 3]])
    >>> ols(X, np.array([1.0, 3, 5, 7])).params.round(6)
    array([1., 2.])
    """
    n, q = X.shape
    Q, R = np.linalg.qr(X)
    coef = np.linalg.solve(R, Q.T @ y)
    resid = y - X @ coef
    df = n - q
    rss = float(resid @ resid)
    Rinv = np.linalg.solve(R, np.eye(q))
    XtX_inv = Rinv @ Rinv.T
    s2 = rss / df if df > 0 else np.nan
    se = np.sqrt(np.diag(s2 * XtX_inv))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
    p = 2 * stats.t.sf(np.abs(t), df) if df > 0 else np.full(q, np.nan)
    return OLSFit(coef, se, t, p, df, rss, XtX_inv)


@dataclass
class GLMFit(WaldInference):
    """A logistic, Poisson or negative-binomial (NB2) fit with Wald inference.

    ``family`` is ``"binomial"``, ``"poisson"`` or ``"negbin"``; ``dispersion`` is the Pearson
    dispersion of the Poisson fit (1 for the logistic) or the NB2 ``alpha``; ``separation`` flags
    fitted probabilities of 0 or 1 in a logistic fit.
    """

    params: np.ndarray
    bse: np.ndarray
    pvalues: np.ndarray
    _cov: np.ndarray
    llf: float
    family: str
    dispersion: float
    separation: bool
    nobs: int

    def cov_params(self) -> np.ndarray:
        return self._cov


def glm(X: np.ndarray, y: np.ndarray, family: str, what: str = "model", count_model: str = "auto") -> GLMFit:
    """Fit a logistic (``"binomial"``) or count (``"poisson"``/``"negbin"``/``"count"``) GLM.

    ``family="count"`` fits a Poisson GLM and switches to a negative binomial (statsmodels
    ``NegativeBinomial``, NB2, dispersion estimated) when the Pearson dispersion exceeds 1.5
    (``count_model="auto"``). Separation in a logistic fit emits :class:`SeparationWarning`.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(200), rng.normal(size=200)])
    >>> y = rng.poisson(np.exp(0.2 + 0.5 * X[:, 1]))
    >>> glm(X, y, "poisson").family
    'poisson'
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if family == "binomial":
            return _logistic(X, y, what)
        if family in ("poisson", "count"):
            fit = _poisson(X, y)
            if family == "poisson" or count_model == "poisson" or (count_model == "auto" and fit.dispersion <= 1.5):
                return fit
            return _negbin(X, y)
        if family == "negbin":
            return _negbin(X, y)
    raise ValueError(f"unknown GLM family {family!r}")


def _logistic(X, y, what) -> GLMFit:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sm.GLM(y, X, family=sm.families.Binomial()).fit()
    mu = np.asarray(res.mu)
    flagged = any(issubclass(c.category, (PerfectSeparationWarning, ConvergenceWarning)) for c in caught)
    separation = bool(flagged or np.any(mu < 1e-8) or np.any(mu > 1 - 1e-8))
    if separation:
        warnings.warn(
            f"logistic {what}: complete or quasi-complete separation (fitted probabilities of 0 or 1); "
            f"its coefficients and p-values are unreliable -- prefer the OLS estimates with "
            f"bootstrap or permutation inference", SeparationWarning, stacklevel=user_stacklevel())
    return GLMFit(np.asarray(res.params), np.asarray(res.bse), np.asarray(res.pvalues),
                  np.asarray(res.cov_params()), float(res.llf), "binomial", 1.0, separation, len(y))


def _poisson(X, y) -> GLMFit:
    import statsmodels.api as sm

    res = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    disp = float(res.pearson_chi2 / max(res.df_resid, 1))
    return GLMFit(np.asarray(res.params), np.asarray(res.bse), np.asarray(res.pvalues),
                  np.asarray(res.cov_params()), float(res.llf), "poisson", disp, False, len(y))


def _negbin(X, y) -> GLMFit:
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = sm.NegativeBinomial(y, X).fit(disp=0, maxiter=200)
    q = X.shape[1]
    params = np.asarray(res.params)
    return GLMFit(params[:q], np.asarray(res.bse)[:q], np.asarray(res.pvalues)[:q],
                  np.asarray(res.cov_params())[:q, :q], float(res.llf), "negbin", float(params[q]), False, len(y))
