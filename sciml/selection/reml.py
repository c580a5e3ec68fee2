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
from scipy import optimize

from .blas import blas_single_thread
from .random_effects import RandomEffects
from .wald import NormalWaldInference


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


def reml_batch(theta: np.ndarray, mom: ClusterMoments, re: RandomEffects, weights: np.ndarray,
               gradient: bool = True) -> dict[str, np.ndarray]:
    """Profiled REML deviance, its exact gradient, ``beta`` and ``r^2`` for a batch of ``theta``
    (``(B, n_theta)``) with per-row cluster weights (``(B, J)``). See the module docstring."""
    theta = np.atleast_2d(np.asarray(theta, float))
    w = np.atleast_2d(np.asarray(weights, float))
    Lam = re.lambda_of(theta)                                     # (B, J, q, q)
    LamT = np.swapaxes(Lam, -1, -2)
    AL = mom.A @ Lam
    M = LamT @ AL + np.eye(re.q_max)
    L = np.linalg.cholesky(M)
    RZX = np.linalg.solve(L, LamT @ mom.B)                        # (B, J, q, p)
    rz = np.linalg.solve(L, LamT @ mom.b[..., None])[..., 0]      # (B, J, q)
    p = mom.XX.shape[1]
    N = w @ mom.n
    H = np.einsum("bj,jpq->bpq", w, mom.XX) - np.einsum("bj,bjip,bjiq->bpq", w, RZX, RZX)
    XVy = w @ mom.Xy - np.einsum("bj,bjip,bji->bp", w, RZX, rz)
    yVy = w @ mom.yy - np.einsum("bj,bji,bji->b", w, rz, rz)
    cH = np.linalg.cholesky(H)
    beta = np.linalg.solve(H, XVy[..., None])[..., 0]
    r2 = yVy - np.einsum("bp,bp->b", beta, XVy)
    logdetV = 2.0 * np.einsum("bj,bj->b", w, np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1))
    dev = logdetV + 2.0 * np.log(np.diagonal(cH, axis1=-2, axis2=-1)).sum(-1) \
        + (N - p) * (1.0 + np.log(2 * np.pi * r2 / (N - p)))
    out = {"deviance": dev, "beta": beta, "r2": r2, "H": H, "N": N, "Lam": Lam, "M": M}
    if gradient:
        out["gradient"] = _reml_gradient(theta, mom, re, w, Lam, AL, M, H, beta, r2, N, p)
    return out


def _reml_gradient(theta, mom, re, w, Lam, AL, M, H, beta, r2, N, p) -> np.ndarray:
    """``dd/dtheta`` from the diagonal blocks of ``Z'PZ`` and ``Z'Py`` of each grouping's levels."""
    LamT = np.swapaxes(Lam, -1, -2)
    q, pp = mom.A.shape[1], mom.B.shape[2]
    rhs = np.concatenate([np.swapaxes(AL, -1, -2), LamT @ mom.B, LamT @ mom.b[..., None]], axis=-1)
    sol = np.linalg.solve(M, rhs)                                 # M^-1 Lambda' [A | Z'X | Z'y]
    ZVZ = mom.A - AL @ sol[..., :q]                               # Z'V^-1 Z = A - A Lambda M^-1 Lambda' A
    ZVX = mom.B - AL @ sol[..., q:q + pp]
    ZVy = mom.b - (AL @ sol[..., q + pp:])[..., 0]
    HiXZ = np.linalg.solve(H[:, None], np.swapaxes(ZVX, -1, -2))  # (B, J, p, q)
    ZPZ = ZVZ - ZVX @ HiXZ
    u = ZVy - np.einsum("bjqp,bp->bjq", ZVX, beta)
    s = (N - p) / r2
    grad = np.zeros_like(theta)
    for t, sl in zip(re.terms, re.theta_slices()):
        T = np.zeros((len(theta), t.d, t.d))
        T[:, np.tril_indices(t.d)[0], np.tril_indices(t.d)[1]] = theta[:, sl]
        c, st = t.level_cluster, t.level_start
        ix = st[:, None] + np.arange(t.d)
        blk = ZPZ[:, c[:, None, None], ix[:, :, None], ix[:, None, :]]    # (B, levels, d, d)
        ub = u[:, c[:, None], ix]                                        # (B, levels, d)
        G = np.einsum("bl,blij->bij", w[:, c], blk - s[:, None, None, None] * ub[..., :, None] * ub[..., None, :])
        grad[:, sl] = (2.0 * G @ T)[:, np.tril_indices(t.d)[0], np.tril_indices(t.d)[1]]
    return grad


def reml_deviance(theta: np.ndarray, mom: ClusterMoments, re: RandomEffects, weights: np.ndarray | None = None,
                  gradient: bool = True) -> REMLState:
    """Profiled REML deviance (and its exact gradient) at one ``theta``; ``weights`` multiply each
    cluster's moments (cluster-bootstrap counts; default 1)."""
    w = np.ones(re.n_clusters) if weights is None else np.asarray(weights, float)
    o = reml_batch(np.asarray(theta, float)[None], mom, re, w[None], gradient)
    return REMLState(theta=np.asarray(theta, float), deviance=float(o["deviance"][0]),
                     gradient=o["gradient"][0] if gradient else None, beta=o["beta"][0], H=o["H"][0],
                     r2=float(o["r2"][0]), nobs=float(o["N"][0]), Lam=o["Lam"][0], M=o["M"][0])


def canonical_theta(theta: np.ndarray, re: RandomEffects) -> np.ndarray:
    """Flip the sign of columns of each ``T_t`` with a negative diagonal (``T T'`` is unchanged):
    ``theta`` is optimised without bounds and reported with non-negative diagonals, as lme4."""
    theta = np.array(theta, float)
    single = theta.ndim == 1
    theta = np.atleast_2d(theta)
    for t, sl in zip(re.terms, re.theta_slices()):
        ii, jj = np.tril_indices(t.d)
        T = np.zeros((len(theta), t.d, t.d))
        T[:, ii, jj] = theta[:, sl]
        sign = np.where(np.diagonal(T, axis1=1, axis2=2) < 0, -1.0, 1.0)
        theta[:, sl] = (T * sign[:, None, :])[:, ii, jj]
    return theta[0] if single else theta


@blas_single_thread
def fit_reml(mom: ClusterMoments, re: RandomEffects, weights: np.ndarray | None = None,
             theta0: np.ndarray | None = None, polish: bool = True) -> REMLState:
    """Minimise the REML deviance over ``theta`` (L-BFGS with the exact gradient), then polish with
    Newton steps on the gradient.

    ``theta`` is unconstrained: ``Psi = T T'`` is a covariance for any real ``T``, so zero variances
    are interior points where the deviance is smooth (no boundary to get stuck on, and no saddle
    at a zero diagonal of ``T``); signs are made canonical at the end.
    """
    x0 = re.theta_start() if theta0 is None else np.asarray(theta0, float)

    def f(th):
        st = reml_deviance(th, mom, re, weights)
        return st.deviance, st.gradient

    sol = optimize.minimize(f, x0, jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    th = sol.x
    if polish:
        th = _newton_polish(th, lambda t: reml_deviance(t, mom, re, weights),
                            lambda t: reml_hessian(t, mom, re, weights))
    return reml_deviance(canonical_theta(th, re), mom, re, weights)


def _newton_polish(theta, evaluate, hessian, steps: int = 6) -> np.ndarray:
    """Newton steps with a finite-difference Hessian of the exact gradient (kept only if they lower
    the deviance)."""
    best = evaluate(theta)
    for _ in range(steps):
        if np.abs(best.gradient).max() < 1e-12:
            break
        Hs = hessian(theta)
        try:
            cand = theta - np.linalg.solve(Hs, best.gradient)
        except np.linalg.LinAlgError:
            break
        new = evaluate(cand)
        if not new.deviance <= best.deviance + 1e-12:
            break
        theta, best = cand, new
    return theta


def reml_hessian(theta: np.ndarray, mom: ClusterMoments, re: RandomEffects, weights: np.ndarray | None = None,
                 h: float = 1e-6) -> np.ndarray:
    """Hessian of the REML deviance by central differences of its exact gradient."""
    k = len(theta)
    Hs = np.zeros((k, k))
    for a in range(k):
        e = np.zeros(k)
        e[a] = h * max(1.0, abs(theta[a]))
        Hs[:, a] = (reml_deviance(theta + e, mom, re, weights).gradient
                    - reml_deviance(theta - e, mom, re, weights).gradient) / (2 * e[a])
    return 0.5 * (Hs + Hs.T)


@blas_single_thread
def fit_reml_batch(mom: ClusterMoments, re: RandomEffects, weights: np.ndarray, theta0: np.ndarray,
                   hess0: np.ndarray | None = None, max_iter: int = 200,
                   tol: float = 1e-14) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """REML fits for every row of ``weights`` at once: BFGS vectorised over replicates (per-row
    inverse-Hessian updates and Armijo backtracking), warm-started at ``theta0`` with the inverse of
    ``hess0`` (the deviance Hessian at ``theta0``, e.g. of the full data) as first inverse Hessian.
    A row stops when its Newton decrement ``g' H^-1 g`` falls below ``tol * max(1, |d|)``."""
    w = np.atleast_2d(weights)
    B, k = len(w), len(theta0)
    x = np.tile(np.asarray(theta0, float), (B, 1))
    ev = reml_batch(x, mom, re, w)
    f, g = ev["deviance"], ev["gradient"]
    H0i = np.eye(k)
    if hess0 is not None:
        lam, vec = np.linalg.eigh(hess0)
        lam = np.maximum(lam, 1e-6 * max(lam.max(), 1e-12))
        H0i = (vec / lam) @ vec.T
    Hi = np.tile(H0i, (B, 1, 1))
    active = np.isfinite(f)
    for _ in range(max_iter):
        dec = np.einsum("bi,bij,bj->b", g, Hi, g)
        active &= dec > tol * np.maximum(1.0, np.abs(f))
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        d = -np.einsum("bij,bj->bi", Hi[idx], g[idx])
        slope = np.einsum("bi,bi->b", d, g[idx])
        bad = slope >= 0                                          # not a descent direction: reset to -g
        d[bad], Hi[idx[bad]] = -g[idx[bad]], H0i
        d[bad] = -g[idx[bad]] @ H0i
        slope[bad] = np.einsum("bi,bi->b", d[bad], g[idx[bad]])
        alpha = np.ones(len(idx))
        todo = np.ones(len(idx), bool)
        xn, fn, gn = x[idx].copy(), f[idx].copy(), g[idx].copy()
        for _ls in range(30):
            r = np.flatnonzero(todo)
            if not len(r):
                break
            trial = x[idx[r]] + alpha[r, None] * d[r]
            with np.errstate(all="ignore"):
                try:
                    e = reml_batch(trial, mom, re, w[idx[r]])
                    ft, gt = e["deviance"], e["gradient"]
                except np.linalg.LinAlgError:
                    ft, gt = np.full(len(r), np.inf), np.zeros((len(r), k))
            ok = np.isfinite(ft) & (ft <= f[idx[r]] + 1e-4 * alpha[r] * slope[r])
            xn[r[ok]], fn[r[ok]], gn[r[ok]] = trial[ok], ft[ok], gt[ok]
            todo[r[ok]] = False
            alpha[r[~ok]] *= 0.5
        stuck = todo                                              # no decrease found: converged (or stuck)
        s_, y_ = xn - x[idx], gn - g[idx]
        sy = np.einsum("bi,bi->b", s_, y_)
        upd = (sy > 1e-300) & ~stuck
        if upd.any():
            rho = 1.0 / sy[upd]
            I = np.eye(k)
            V = I - rho[:, None, None] * s_[upd][:, :, None] * y_[upd][:, None, :]
            Hi[idx[upd]] = V @ Hi[idx[upd]] @ np.swapaxes(V, 1, 2) + rho[:, None, None] * s_[upd][:, :, None] * s_[upd][:, None, :]
        x[idx], f[idx], g[idx] = xn, fn, gn
        active[idx[stuck]] = False
    x = canonical_theta(x, re)
    return x, reml_batch(x, mom, re, w, gradient=False)


@dataclass
class MixedFit(NormalWaldInference):
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

    def cov_params(self) -> np.ndarray:
        return self.scale * np.linalg.inv(self.state.H)

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
                    rows.append({"group": g, "term": a if i == j else f"{b},{a}",
                                 "kind": "variance" if i == j else "covariance", "estimate": v,
                                 "sd": np.sqrt(v) if i == j else np.nan})
        rows.append({"group": "residual", "term": "residual", "kind": "variance", "estimate": self.scale,
                     "sd": np.sqrt(self.scale)})
        return pd.DataFrame(rows).assign(se=np.nan, ci_low=np.nan, ci_high=np.nan)

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


@blas_single_thread
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
