"""Linear mixed models by restricted maximum likelihood (REML), from per-cluster moments.

Model (fitted to relative fitness in a mixed selection analysis)::

    y = X beta + Z b + e,    b ~ N(0, sigma^2 Psi(theta)),    e ~ N(0, sigma^2 I),

with ``Psi = Lambda Lambda'`` block diagonal (one lower-triangular factor ``T_t`` per grouping,
repeated for its levels; :mod:`~sciml.selection.random_effects`). Following Bates et al. (2015,
lme4), with ``V = I + Z Psi Z'``, ``L_c L_c' = Lambda_c' Z_c'Z_c Lambda_c + I`` per cluster and the
Schur complement ``H = X'V^-1 X = X'X - sum_c (L_c^-1 Lambda_c' Z_c'X)'(L_c^-1 Lambda_c' Z_c'X)``,
the profiled REML deviance is

    d(theta) = log|V| + log|H| + (n - p) [1 + log(2 pi r^2 / (n - p))],

``log|V| = sum_c 2 log|L_c|``, ``beta(theta) = H^-1 X'V^-1 y``, ``r^2 = y'V^-1 y - beta' X'V^-1 y``,
``sigma^2 = r^2 / (n - p)``; ``-d/2`` is statsmodels ``MixedLM``'s REML log-likelihood exactly.
Its exact gradient: with ``P = V^-1 - V^-1 X H^-1 X' V^-1``, ``dV/dtheta_k = Z Psi_k Z'`` gives

    dd/dtheta_k = tr(Psi_k Z'PZ) - (n - p) (Z'Py)' Psi_k (Z'Py) / r^2,

and for a grouping with factor ``T`` and ``G = sum_levels [(Z'PZ)_ll - (n-p)/r^2 (Z'Py)_l (Z'Py)_l']``,
``dd/dT = 2 G T`` (lower triangle). Everything needs only the per-cluster moments
``Z_c'Z_c, Z_c'X_c, Z_c'y_c, X_c'X_c, X_c'y_c, y_c'y_c``, so a cluster bootstrap is a weighted
sum of them (weights = how often each cluster was drawn). Fixed-effect covariance
``sigma^2 H^-1``; Wald z-tests as ``MixedLM``. Conditional modes (BLUPs) and their prediction-error
covariance come from the inverse of Henderson's mixed-model equations in ``u = Lambda^-1 b``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .random_effects import RandomEffects


@dataclass
class ClusterMoments:
    """Per-cluster cross-products (padded to ``q_max`` random-effect columns)."""

    A: np.ndarray       # (J, q, q)  Z_c'Z_c
    B: np.ndarray       # (J, q, p)  Z_c'X_c
    b: np.ndarray       # (J, q)     Z_c'y_c
    XX: np.ndarray      # (J, p, p)
    Xy: np.ndarray      # (J, p)
    yy: np.ndarray      # (J,)
    n: np.ndarray       # (J,)

    def scale_y(self, f: float | np.ndarray) -> "ClusterMoments":
        """Moments of ``f * y`` (relative fitness of a resample is fitness over its own mean)."""
        return ClusterMoments(self.A, self.B, self.b * f, self.XX, self.Xy * f, self.yy * f * f, self.n)


def cluster_moments(X: np.ndarray, y: np.ndarray, re: RandomEffects) -> ClusterMoments:
    """Sum the per-row cross-products of ``X``, ``y`` and the local random-effects design by cluster."""
    J, c = re.n_clusters, re.cluster
    Z = re.Zloc

    def by_cluster(a):
        out = np.zeros((J,) + a.shape[1:])
        np.add.at(out, c, a)
        return out

    return ClusterMoments(A=by_cluster(np.einsum("ni,nj->nij", Z, Z)), B=by_cluster(np.einsum("ni,nj->nij", Z, X)),
                          b=by_cluster(Z * y[:, None]), XX=by_cluster(np.einsum("ni,nj->nij", X, X)),
                          Xy=by_cluster(X * y[:, None]), yy=by_cluster(y * y), n=by_cluster(np.ones(len(y))))


@dataclass
class REMLState:
    """Everything the REML deviance at one ``theta`` computed (reused for BLUPs and SEs)."""

    theta: np.ndarray
    deviance: float
    gradient: np.ndarray | None
    beta: np.ndarray
    H: np.ndarray
    r2: float
    nobs: float
    Lam: np.ndarray = field(repr=False)
    M: np.ndarray = field(repr=False)

    @property
    def scale(self) -> float:
        return self.r2 / (self.nobs - len(self.beta))


def reml_deviance(theta: np.ndarray, mom: ClusterMoments, re: RandomEffects, weights: np.ndarray | None = None,
                  gradient: bool = True) -> REMLState:
    """Profiled REML deviance (and its exact gradient) at ``theta``; ``weights`` multiply each
    cluster's moments (cluster-bootstrap counts; default 1)."""
    theta = np.asarray(theta, float)
    w = np.ones(re.n_clusters) if weights is None else np.asarray(weights, float)
    Lam = re.lambda_of(theta)
    LamT = np.swapaxes(Lam, 1, 2)
    AL = mom.A @ Lam
    M = LamT @ AL + np.eye(re.q_max)
    L = np.linalg.cholesky(M)
    RZX = np.linalg.solve(L, LamT @ mom.B)                        # (J, q, p)
    rz = np.linalg.solve(L, (LamT @ mom.b[..., None]))[..., 0]    # (J, q)
    p = mom.XX.shape[1]
    N = float(w @ mom.n)
    H = np.einsum("j,jpq->pq", w, mom.XX) - np.einsum("j,jip,jiq->pq", w, RZX, RZX)
    XVy = w @ mom.Xy - np.einsum("j,jip,ji->p", w, RZX, rz)
    yVy = float(w @ mom.yy - np.einsum("j,ji,ji->", w, rz, rz))
    cH = np.linalg.cholesky(H)
    beta = np.linalg.solve(H, XVy)
    r2 = yVy - beta @ XVy
    logdetV = 2.0 * float(w @ np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1))
    dev = logdetV + 2.0 * np.log(np.diag(cH)).sum() + (N - p) * (1.0 + np.log(2 * np.pi * r2 / (N - p)))
    grad = _reml_gradient(theta, mom, re, w, Lam, AL, M, H, beta, r2, N, p) if gradient else None
    return REMLState(theta=theta, deviance=float(dev), gradient=grad, beta=beta, H=H, r2=float(r2), nobs=N,
                     Lam=Lam, M=M)


def _reml_gradient(theta, mom, re, w, Lam, AL, M, H, beta, r2, N, p) -> np.ndarray:
    """``dd/dtheta`` from ``Z'PZ`` and ``Z'Py`` (diagonal blocks of each grouping's levels)."""
    LamT = np.swapaxes(Lam, 1, 2)
    rhs = np.concatenate([np.swapaxes(AL, 1, 2), LamT @ mom.B, LamT @ mom.b[..., None]], axis=2)
    sol = np.linalg.solve(M, rhs)                                 # M^-1 Lambda' [A | Z'X | Z'y]
    q, p_ = mom.A.shape[1], mom.B.shape[2]
    ZVZ = mom.A - AL @ sol[..., :q]                               # Z'V^-1 Z = A - A Lambda M^-1 Lambda' A
    ZVX = mom.B - AL @ sol[..., q:q + p_]
    ZVy = mom.b - (AL @ sol[..., q + p_:])[..., 0]
    ZPZ = ZVZ - ZVX @ np.linalg.solve(H, np.swapaxes(ZVX, 1, 2))
    u = ZVy - ZVX @ beta
    s = (N - p) / r2
    grad = np.zeros_like(theta)
    for t, T, sl in zip(re.terms, re.T_of(theta), re.theta_slices()):
        c, st = t.level_cluster, t.level_start
        ix = st[:, None] + np.arange(t.d)
        blk = ZPZ[c[:, None, None], ix[:, :, None], ix[:, None, :]]
        ub = u[c[:, None], ix]
        G = np.einsum("l,lij->ij", w[c], blk - s * ub[:, :, None] * ub[:, None, :])
        grad[sl] = (2.0 * G @ T)[np.tril_indices(t.d)]
    return grad


def fit_reml(mom: ClusterMoments, re: RandomEffects, weights: np.ndarray | None = None,
             theta0: np.ndarray | None = None, polish: bool = True) -> REMLState:
    """Minimise the REML deviance over ``theta`` (L-BFGS-B with the exact gradient, diagonal of each
    ``T`` bounded below by 0), then polish interior optima with Newton steps on the gradient."""
    lb = re.theta_lower_bounds()
    x0 = re.theta_start() if theta0 is None else np.maximum(np.asarray(theta0, float), lb)

    def f(th):
        st = reml_deviance(th, mom, re, weights)
        return st.deviance, st.gradient

    sol = optimize.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=list(zip(lb, [np.inf] * len(lb))),
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    th = sol.x
    if polish:
        th = _newton_polish(th, lambda t: reml_deviance(t, mom, re, weights), lb)
    return reml_deviance(th, mom, re, weights)


def _newton_polish(theta, evaluate, lb, steps: int = 6, h: float = 1e-6) -> np.ndarray:
    """Newton steps (finite-difference Hessian of the exact gradient) on coordinates off their bound."""
    best = evaluate(theta)
    for _ in range(steps):
        free = ~((theta <= lb + 1e-10) & (best.gradient >= 0))
        if not free.any() or np.abs(best.gradient[free]).max() < 1e-12:
            break
        idx = np.flatnonzero(free)
        Hs = np.zeros((len(idx), len(idx)))
        for a, k in enumerate(idx):
            e = np.zeros_like(theta)
            e[k] = h * max(1.0, abs(theta[k]))
            gp, gm = evaluate(theta + e).gradient, evaluate(theta - e).gradient
            Hs[:, a] = (gp[idx] - gm[idx]) / (2 * e[k])
        Hs = 0.5 * (Hs + Hs.T)
        try:
            step = np.linalg.solve(Hs, best.gradient[idx])
        except np.linalg.LinAlgError:
            break
        cand = theta.copy()
        cand[idx] -= step
        cand = np.maximum(cand, lb)
        new = evaluate(cand)
        if not new.deviance <= best.deviance + 1e-12:
            break
        theta, best = cand, new
    return theta


@dataclass
class MixedFit:
    """REML fit of a linear mixed model, in statsmodels' vocabulary.

    ``params`` (fixed effects), ``bse``, ``tvalues`` (z), ``pvalues`` (two-sided normal, as
    ``MixedLM``), ``cov_params()``, ``conf_int(alpha)``, ``scale`` (residual variance), ``llf``
    (REML log-likelihood, equal to ``MixedLM``'s), ``cov_re`` (one covariance matrix per grouping),
    ``theta`` (lme4's relative Cholesky factors).
    """

    params: np.ndarray
    bse: np.ndarray
    scale: float
    llf: float
    theta: np.ndarray
    nobs: int
    exog_names: list[str]
    re: RandomEffects = field(repr=False)
    state: REMLState = field(repr=False)
    mom: ClusterMoments = field(repr=False)

    @property
    def tvalues(self) -> np.ndarray:
        return self.params / self.bse

    @property
    def pvalues(self) -> np.ndarray:
        return 2 * stats.norm.sf(np.abs(self.tvalues))

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.params)

    def cov_params(self) -> np.ndarray:
        return self.scale * np.linalg.inv(self.state.H)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        z = stats.norm.ppf(1 - alpha / 2)
        return np.column_stack([self.params - z * self.bse, self.params + z * self.bse])

    @property
    def cov_re(self) -> dict[str, pd.DataFrame]:
        """Covariance of the random coefficients of each grouping (``sigma^2 T T'``)."""
        return {t.grouping: pd.DataFrame(self.scale * T @ T.T, index=t.coefs, columns=t.coefs)
                for t, T in zip(self.re.terms, self.re.T_of(self.theta))}

    def variance_components(self) -> pd.DataFrame:
        """Tidy variances, covariances and SDs of the random coefficients and the residual."""
        rows = []
        for g, C in self.cov_re.items():
            coefs = list(C.index)
            for i, a in enumerate(coefs):
                for j in range(i + 1):
                    b = coefs[j]
                    v = float(C.iat[i, j])
                    rows.append({"group": g, "term": a if i == j else f"{b}:{a}",
                                 "kind": "variance" if i == j else "covariance", "estimate": v,
                                 "sd": np.sqrt(v) if i == j else np.nan})
        rows.append({"group": "residual", "term": "residual", "kind": "variance", "estimate": self.scale,
                     "sd": np.sqrt(self.scale)})
        return pd.DataFrame(rows)

    def blups(self) -> pd.DataFrame:
        """Conditional modes ``b`` of every level's random coefficients with their prediction-error
        SDs (including the uncertainty of the fixed effects), and the level-specific coefficient
        ``fixed + b`` with its prediction-error SD."""
        st, re = self.state, self.re
        Hi = np.linalg.inv(st.H)
        LamT = np.swapaxes(st.Lam, 1, 2)
        E = np.linalg.solve(st.M, LamT @ self.mom.B)                           # M^-1 Lambda' Z'X   (J, q, p)
        u = np.linalg.solve(st.M, (LamT @ (self.mom.b - self.mom.B @ st.beta)[..., None]))[..., 0]
        b = (st.Lam @ u[..., None])[..., 0]
        pev_u = self.scale * (np.linalg.inv(st.M) + E @ Hi @ np.swapaxes(E, 1, 2))
        pev_b = st.Lam @ pev_u @ LamT
        cov_fb = -self.scale * np.einsum("pr,jqr->jpq", Hi, st.Lam @ E)        # cov(beta - ., b - .)  (J, p, q)
        V_beta = self.scale * Hi
        rows = []
        for t in re.terms:
            for lv, (c, s0) in enumerate(zip(t.level_cluster, t.level_start)):
                for k, coef in enumerate(t.coefs):
                    col = s0 + k
                    fi = self.exog_names.index(coef) if coef != "intercept" else 0
                    pe_b = pev_b[c, col, col]
                    pe_sum = V_beta[fi, fi] + pe_b + 2 * cov_fb[c, fi, col]
                    rows.append({"group": t.grouping, "level": t.level_names[lv], "coef": coef, "blup": b[c, col],
                                 "blup_se": np.sqrt(max(pe_b, 0.0)), "estimate": self.params[fi] + b[c, col],
                                 "se": np.sqrt(max(pe_sum, 0.0))})
        return pd.DataFrame(rows)


def mixed_fit(X: np.ndarray, y: np.ndarray, re: RandomEffects, exog_names: list[str],
              theta0: np.ndarray | None = None) -> MixedFit:
    """REML fit of ``y ~ X`` with the random effects ``re`` (see the module docstring).

    Example
    -------
    >>> fit = mixed_fit(X, w, re, ["intercept", "z1", "z2"])     # doctest: +SKIP
    >>> fit.params, fit.bse, fit.variance_components()           # doctest: +SKIP
    """
    mom = cluster_moments(X, y, re)
    st = fit_reml(mom, re, theta0=theta0)
    bse = np.sqrt(np.diag(st.scale * np.linalg.inv(st.H)))
    return MixedFit(params=st.beta, bse=bse, scale=st.scale, llf=-0.5 * st.deviance, theta=st.theta,
                    nobs=len(y), exog_names=list(exog_names), re=re, state=st, mom=mom)
