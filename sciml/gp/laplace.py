"""Laplace approximation to the posterior of the log-hyperparameters (statsmodels-style results).

At the marginal-likelihood optimum the posterior of the packed hyperparameters (flat prior) is
approximated by a Gaussian with covariance ``H^-1``, ``H`` the exact Hessian of the NLML
(:func:`sciml.gp.likelihood.nlml_hessian`). :class:`LaplaceResult` offers ``params``, ``bse``,
``cov_params``, ``conf_int()``, a tidy ``table()`` and ``summary()``. Directions the data do not
determine (typically the energy noise of noiseless reference labels) are reported as such, not
hidden: they get no standard error and the others are conditional on them.
"""
from __future__ import annotations

import numpy as np

from .hyperparameters import param_names

__all__ = ["LaplaceResult"]


class LaplaceResult:
    """Laplace approximation to the posterior of the log-hyperparameters.

    ``hessian`` is the exact Hessian of the NLML at the optimum with respect to
    ``params`` (log length-scales, log variance weights of the extra kernel
    components, log signal std, log noise stds, and the scaled mean; see
    :func:`param_names`); standard errors are ``sqrt(diag(H^-1))``.
    """

    def __init__(self, params: np.ndarray, hessian: np.ndarray, e_std: float, e_mean: float, at_bound: list[str],
                 names: list[str] | None = None):
        self.names = list(names) if names is not None else param_names((len(params) - 3) // 2)
        self.params = np.asarray(params, dtype=float)
        self.hessian = np.asarray(hessian, dtype=float)
        self.e_std = float(e_std)
        self.e_mean = float(e_mean)
        self.at_bound = list(at_bound)
        H = 0.5 * (self.hessian + self.hessian.T)
        eig = np.linalg.eigvalsh(H)
        self.eigenvalues = eig

        def pd(e: np.ndarray) -> bool:
            return bool(e.min() > 1e-10 * max(1.0, abs(e).max()))

        self.positive_definite = pd(eig)
        # Flat or negative-curvature directions (typically the energy noise of noiseless labels, far
        # below the jitter): drop the parameter that dominates the least-curved direction until the
        # rest is positive definite; the others get standard errors conditional on the dropped ones.
        keep = list(range(len(H)))
        while keep:
            e, v = np.linalg.eigh(H[np.ix_(keep, keep)])
            if pd(e):
                break
            keep.pop(int(np.argmax(np.abs(v[:, 0]))))
        self.unidentified = [self.names[j] for j in range(len(H)) if j not in keep]
        self.cov_params = np.full_like(H, np.nan)
        if keep:
            self.cov_params[np.ix_(keep, keep)] = np.linalg.inv(H[np.ix_(keep, keep)])
        d = np.diag(self.cov_params).copy()
        self.bse = np.where(d > 0, np.sqrt(np.where(d > 0, d, 1.0)), np.nan)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(k, 2)`` Wald intervals on the optimisation scale (log for scales)."""
        from scipy.stats import norm

        z = norm.ppf(1 - alpha / 2)
        return np.stack([self.params - z * self.bse, self.params + z * self.bse], axis=1)

    def table(self, alpha: float = 0.05) -> "pandas.DataFrame":  # noqa: F821
        """Tidy table: estimate and standard error on the log scale, value and interval on the natural scale."""
        import pandas as pd

        ci = self.conf_int(alpha)
        rows = []
        for k, name in enumerate(self.names):
            if name == "mean_energy":
                f = lambda t: self.e_mean + self.e_std * t  # noqa: E731
                rows.append(dict(param=name, estimate=self.params[k], std_err=self.bse[k] * self.e_std,
                                 value=f(self.params[k]), ci_low=f(ci[k, 0]), ci_high=f(ci[k, 1])))
            else:
                with np.errstate(over="ignore"):  # a flat direction can have an interval beyond float range
                    rows.append(dict(param=name, estimate=self.params[k], std_err=self.bse[k],
                                     value=float(np.exp(self.params[k])), ci_low=float(np.exp(ci[k, 0])),
                                     ci_high=float(np.exp(ci[k, 1]))))
        return pd.DataFrame(rows).set_index("param")

    def summary(self) -> str:
        """Human-readable summary (log-scale estimates with standard errors)."""
        t = self.table()
        lines = ["Laplace approximation of the hyperparameter posterior (Hessian of the NLML)",
                 f"Hessian positive definite: {self.positive_definite} (eigenvalues {np.array2string(self.eigenvalues, precision=3)})"]
        if self.at_bound:
            lines.append(f"at an optimisation bound: {', '.join(self.at_bound)}")
        if self.unidentified:
            lines.append(f"not determined by the data (flat NLML; no standard error): {', '.join(self.unidentified)}; "
                         "the other standard errors are conditional on them")
        lines.append(t.to_string(float_format=lambda v: f"{v:.5g}"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(params=self.params.tolist(), hessian=self.hessian.tolist(), e_std=self.e_std,
                    e_mean=self.e_mean, at_bound=self.at_bound, names=self.names)

    @classmethod
    def from_dict(cls, d: dict) -> "LaplaceResult":
        return cls(np.array(d["params"]), np.array(d["hessian"]), d["e_std"], d["e_mean"], d["at_bound"],
                   d.get("names"))
