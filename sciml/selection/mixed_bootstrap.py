"""Cluster bootstrap of mixed-model selection gradients, vectorised over replicates.

Resampling follows the hierarchy (Davison & Hinkley 1997, sec. 3.8): whole levels of the
outermost grouping (a year, a site, with all their individuals) are drawn with replacement, and a
level drawn twice enters the replicate as two independent levels. The REML deviance of a
replicate is then the per-cluster moments of the data weighted by the draw counts
(:mod:`~sciml.selection.reml`), so no replicate data set is ever built. Inside each replicate,
relative fitness is recomputed (fitness over the replicate's mean) and gradients are re-expressed
on the replicate's own trait standardisation, exactly as a stand-alone analysis of the resample.
REML is invariant to both changes of scale (and to re-centring the traits, the random-slope
covariance being unstructured), so every replicate is fitted on the fixed global design.

With a single random intercept (one variance ratio ``theta``), all replicates are fitted at
once: the deviance is evaluated on a grid of ``theta`` for every replicate, and the root of its
exact derivative is polished inside the best bracket by the Illinois (false-position) method to
``1e-12`` relative precision. Other structures (random slopes, nested groupings) are fitted by a
BFGS iteration vectorised over replicates (exact gradient, Armijo backtracking, warm start at the
full-data estimate).
"""
from __future__ import annotations

import numpy as np

from .bootstrap import CaseResampling, MomentEngine, resample_scale
from .gradients import gamma_from_quadratic, quadratic_terms
from .blas import blas_single_thread
from .random_effects import RandomEffects
from .reml import ClusterMoments, cluster_moments, fit_reml_batch, reml_hessian


class MixedEngine(CaseResampling):
    """Mixed-model gradients (``beta``, ``gamma``), differentials (``S``, ``C``) and variance
    components (``vc``, as :meth:`MixedFit.variance_components` rows) for many cluster weightings.

    ``estimate(K)`` takes ``(B, J)`` counts of the ``J`` clusters; replicates whose fit fails
    are NaN.
    """

    def __init__(self, W: np.ndarray, Z_raw: np.ndarray, standardize: str | None, re: RandomEffects,
                 quadratic: bool, theta_lin: np.ndarray, theta_quad: np.ndarray | None = None):
        self.re, self.quadratic, self.standardize = re, quadratic, standardize
        self.codes = np.arange(re.n_clusters)
        self.W = np.asarray(W, float)
        self.n, self.p = Z_raw.shape
        self.c, self.d = Z_raw.mean(0), Z_raw.std(0, ddof=1)
        U = (Z_raw - self.c) / self.d
        self.pairs = quadratic_terms(self.p)
        Xl = np.column_stack([np.ones(self.n), U])
        self.scalar = len(re.terms) == 1 and re.terms[0].d == 1
        self.mom = {"lin": cluster_moments(Xl, self.W, re)}
        self.theta = {"lin": np.asarray(theta_lin, float)}
        if quadratic:
            Xq = np.column_stack([Xl] + [U[:, i] * U[:, j] for i, j in self.pairs])
            self.mom["quad"] = cluster_moments(Xq, self.W, re)
            self.theta["quad"] = np.asarray(theta_quad, float)
        self.hess = {} if self.scalar else {k: reml_hessian(self.theta[k], m, re) for k, m in self.mom.items()}
        self.sW = np.bincount(re.cluster, weights=self.W, minlength=re.n_clusters)
        self.moments = MomentEngine(self.W, Z_raw, np.zeros(self.n, int), standardize, quadratic)

    def draw(self, rng: np.random.Generator, B: int) -> np.ndarray:
        """``(B, J)`` counts: ``J`` clusters drawn with replacement per replicate."""
        J = self.n_units
        idx = rng.integers(0, J, size=(B, J)) + np.arange(0, B * J, J)[:, None]
        return np.bincount(idx.ravel(), minlength=B * J).reshape(B, J).astype(float)

    def estimate(self, K: np.ndarray) -> dict[str, np.ndarray]:
        K = np.asarray(K, float)
        out = self.moments.estimate(K[:, self.re.cluster])              # S, C (and least-squares beta/gamma)
        out = {k: out[k] for k in ("S", "C") if k in out}
        ml = self.mom["lin"]
        N = K @ ml.n
        with np.errstate(divide="ignore", invalid="ignore"):
            f = N / (K @ self.sW)                                      # relative fitness = W * f
            mu = (K @ ml.XX[:, 0, 1:]) / N[:, None]
            ex2 = (K @ np.diagonal(ml.XX[:, 1:, 1:], axis1=1, axis2=2)) / N[:, None]
            a = resample_scale(self.standardize, self.c, self.d, mu, (ex2 - mu ** 2) * (N / (N - 1))[:, None])
        coef, scale, theta = self._fit_all("lin", K, f)
        out["beta"] = coef[:, 1:] * a
        out["vc"] = self._variance_components(theta, scale, mu, a)
        if self.quadratic:
            cq, _, _ = self._fit_all("quad", K, f)
            ii, jj = np.array(self.pairs).T
            out["gamma"] = gamma_from_quadratic(cq[:, 1 + self.p:] * a[:, ii] * a[:, jj], self.p)
        bad = ~np.isfinite(out["beta"]).all(1) | ~np.isfinite(f)
        for k in out:
            out[k][bad] = np.nan
        return out

    @blas_single_thread
    def _fit_all(self, key: str, K: np.ndarray, f: np.ndarray):
        """Fixed effects, residual variance and theta of every replicate (response ``f * W``)."""
        mom = self.mom[key]
        if self.scalar:
            return scalar_reml_batch(mom, K, f, float(self.theta[key][0]))
        B, p = len(K), mom.XX.shape[1]
        coef, scale = np.full((B, p), np.nan), np.full(B, np.nan)
        theta = np.full((B, self.re.n_theta), np.nan)
        ok = np.flatnonzero(np.isfinite(f))
        chunk = max(1, int(4e6 // (self.re.n_clusters * self.re.q_max ** 2 * max(p, 4))))
        for s in range(0, len(ok), chunk):
            r = ok[s:s + chunk]
            try:
                th, ev = fit_reml_batch(mom, self.re, K[r], self.theta[key], self.hess[key])
            except np.linalg.LinAlgError:
                continue
            coef[r] = ev["beta"] * f[r, None]
            scale[r] = ev["r2"] / (ev["N"] - p) * f[r] ** 2
            theta[r] = th
        return coef, scale, theta

    def _variance_components(self, theta: np.ndarray, scale: np.ndarray, mu: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Per replicate: the lower triangle of each grouping's covariance on the replicate's trait
        scale (re-centring and rescaling the slope design), then the residual variance."""
        cols = []
        for t, sl in zip(self.re.terms, self.re.theta_slices()):
            T = np.zeros((len(theta), t.d, t.d))
            T[:, np.tril_indices(t.d)[0], np.tril_indices(t.d)[1]] = theta[:, sl]
            C = scale[:, None, None] * T @ np.swapaxes(T, 1, 2)
            S = [self.re.traits.index(c) for c in t.coefs[1:]]
            A = np.zeros((len(theta), t.d, t.d))
            A[:, 0, 0] = 1.0
            for k, j in enumerate(S):
                A[:, 0, k + 1] = mu[:, j]
                A[:, k + 1, k + 1] = a[:, j]
            C = A @ C @ np.swapaxes(A, 1, 2)
            ii, jj = np.tril_indices(t.d)
            cols.append(C[:, ii, jj])
        cols.append(scale[:, None])
        return np.hstack(cols)


def scalar_reml_batch(mom: ClusterMoments, K: np.ndarray, f: np.ndarray, theta_hat: float,
                      n_grid: int = 25, tol: float = 1e-12, max_iter: int = 80):
    """REML fits of a random-intercept model for every row of cluster weights ``K`` at once.

    ``f`` rescales the response of each replicate. Returns ``(coef (B, p), scale (B,), theta (B, 1))``.
    """
    n, Bs, sy = mom.n, mom.B[:, 0, :], mom.b[:, 0]
    B, p = len(K), mom.XX.shape[1]
    XX = (K @ mom.XX.reshape(len(n), -1)).reshape(B, p, p)
    Xy = (K @ mom.Xy) * f[:, None]
    yy = (K @ mom.yy) * f ** 2
    N = K @ n
    BB = np.einsum("jp,jq->jpq", Bs, Bs).reshape(len(n), -1)
    Bsy = Bs * sy[:, None]

    def evaluate(theta, grad=False):
        t2 = theta[:, None] ** 2
        s = 1.0 / (1.0 + t2 * n)
        cf = K * t2 * s
        H = XX - (cf @ BB).reshape(B, p, p)
        XVy = Xy - (cf @ Bsy) * f[:, None]
        yVy = yy - (cf @ sy ** 2) * f ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            try:
                Lh = np.linalg.cholesky(H)
            except np.linalg.LinAlgError:
                Lh = np.linalg.cholesky(H + 1e-300 * np.eye(p))
            beta = np.linalg.solve(H, XVy[..., None])[..., 0]
            r2 = yVy - np.einsum("bp,bp->b", beta, XVy)
            dev = ((K * np.log1p(t2 * n)).sum(1) + 2 * np.log(np.diagonal(Lh, axis1=1, axis2=2)).sum(1)
                   + (N - p) * (1 + np.log(2 * np.pi * r2 / (N - p))))
        if not grad:
            return dev, beta, r2, None
        Hi = np.linalg.inv(H)
        qf = np.einsum("jp,bpq,jq->bj", Bs, Hi, Bs)
        resid = sy[None, :] * f[:, None] - beta @ Bs.T
        h = (K * (n * s - s ** 2 * qf - ((N - p) / r2)[:, None] * s ** 2 * resid ** 2)).sum(1)
        return dev, beta, r2, h

    # 1. grid (0 and a log grid around the full-data estimate); 2. bracket the best grid point
    centre = theta_hat if theta_hat > 1e-8 else 1.0
    grid = np.concatenate([[0.0], centre * np.geomspace(1e-3, 1e3, n_grid)])
    devs = np.stack([evaluate(np.full(B, g))[0] for g in grid], axis=1)
    devs[~np.isfinite(devs)] = np.inf
    k = np.argmin(devs, axis=1)
    lo = grid[np.maximum(k - 1, 0)]
    hi = grid[np.minimum(k + 1, len(grid) - 1)]
    theta = grid[k].astype(float)
    _, _, _, h0 = evaluate(np.zeros(B), grad=True)
    at_zero = (k == 0) & (h0 >= 0)                                    # boundary optimum: no variance
    # 3. Illinois iterations on h(theta) = (dd/dtheta) / (2 theta) inside [lo, hi]
    a, b = lo.copy(), hi.copy()
    fa, fb = evaluate(a, grad=True)[3], evaluate(b, grad=True)[3]
    ok = (fa <= 0) & (fb >= 0) & ~at_zero
    for _ in range(max_iter):
        act = ok & (np.abs(b - a) > tol * np.maximum(1.0, np.abs(b)))
        if not act.any():
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            c = b - fb * (b - a) / (fb - fa)
        bad = ~np.isfinite(c) | (c <= np.minimum(a, b)) | (c >= np.maximum(a, b))
        c = np.where(bad, 0.5 * (a + b), c)
        c = np.where(act, c, b)
        fc = evaluate(c, grad=True)[3]
        same = np.sign(fc) == np.sign(fb)
        a, fa = np.where(act & ~same, b, a), np.where(act & ~same, fb, np.where(act & same, fa / 2, fa))
        b, fb = np.where(act, c, b), np.where(act, fc, fb)
    theta = np.where(ok, b, np.where(at_zero, 0.0, theta))
    dev, beta, r2, _ = evaluate(theta)
    beta[~np.isfinite(dev)] = np.nan
    return beta, r2 / (N - p), theta[:, None]
