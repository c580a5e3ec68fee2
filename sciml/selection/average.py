"""Average selection gradients of a GLM fitness function (Janzen & Stern 1998, generalised):
point estimates, delta-method standard errors, and a batched engine for their bootstrap."""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .bootstrap import CaseResampling, resample_scale
from .fits import glm
from .gradients import gamma_from_quadratic, quadratic_terms


def average_gradients(params: np.ndarray, X: np.ndarray, U: np.ndarray, link: str, n_groups: int,
                      group_codes: np.ndarray, quadratic: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Average gradients of a GLM fitness function (Janzen & Stern 1998, generalised).

    For ``W(z) = h(eta(z))`` (``h`` the inverse logit or exp), ``beta = E[dW/dz] / E[W]`` and
    ``gamma = E[d2W/dz dz'] / E[W]``, averaged over the individuals of each group and weighted
    by group size. For the linear logistic model this is ``alpha * mean(p(1-p)) / mean(p)``.
    """
    p = U.shape[1]
    eta = X @ params
    b = params[n_groups:n_groups + p]
    grad = np.broadcast_to(b, U.shape).copy()
    H = np.zeros((p, p))
    if quadratic:
        c = params[n_groups + p:]
        for k, (i, j) in enumerate(quadratic_terms(p)):
            if i == j:
                grad[:, i] += 2 * c[k] * U[:, i]
                H[i, i] += 2 * c[k]
            else:
                grad[:, i] += c[k] * U[:, j]
                grad[:, j] += c[k] * U[:, i]
                H[i, j] += c[k]
                H[j, i] += c[k]
    if link == "logit":
        W = expit(eta)
        d1 = W * (1 - W)
        d2 = d1 * (1 - 2 * W)
    elif link == "log":
        W = np.exp(eta)
        d1 = d2 = W
    else:
        raise ValueError(f"unknown link {link!r}")
    n = len(eta)
    beta = np.zeros(p)
    gamma = np.zeros((p, p)) if quadratic else None
    for g in range(n_groups):
        sel = group_codes == g
        wg = sel.sum() / n
        mW = W[sel].mean()
        beta += wg * (d1[sel, None] * grad[sel]).mean(0) / mW
        if quadratic:
            dd = np.einsum("n,ni,nj->ij", d2[sel], grad[sel], grad[sel]) / sel.sum() + d1[sel].mean() * H
            gamma += wg * dd / mW
    return beta, gamma


def delta_method_se(fn, params: np.ndarray, cov: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Delta-method standard errors of ``fn(params)`` (any shape) by central differences."""
    f0 = np.asarray(fn(params), float)
    J = np.zeros(f0.shape + (len(params),))
    for k in range(len(params)):
        h = eps * max(1.0, abs(params[k]))
        e = np.zeros_like(params)
        e[k] = h
        J[..., k] = (np.asarray(fn(params + e)) - np.asarray(fn(params - e))) / (2 * h)
    Jf = J.reshape(-1, len(params))
    var = np.einsum("ik,kl,il->i", Jf, cov, Jf)
    return np.sqrt(np.maximum(var, 0)).reshape(f0.shape)


class GLMAverageEngine(CaseResampling):
    """Average gradients of a logistic (``link="logit"``) or Poisson (``"log"``) fitness function
    for many weightings at once: one batched Newton-Raphson fit per row of ``K``, then
    ``beta = E[dW/dz]/E[W]`` and ``gamma = E[d2W/dzdz']/E[W]`` with the weighted individuals,
    rescaled to the trait standardisation of the resample. Replicates whose fit does not converge
    or separates (|linear predictor| > 30) are NaN.
    """

    def __init__(self, W: np.ndarray, Z_raw: np.ndarray, group_codes: np.ndarray, standardize: str | None,
                 link: str, quadratic: bool, start: np.ndarray | None = None):
        if link not in ("logit", "log"):
            raise ValueError(f"link must be 'logit' or 'log', got {link!r}")
        self.y = np.asarray(W, float)
        self.n, self.p = Z_raw.shape
        self.codes = np.asarray(group_codes, int)
        self.G = int(self.codes.max()) + 1
        self.link, self.quadratic, self.standardize = link, quadratic, standardize
        self.c, self.d = Z_raw.mean(0), Z_raw.std(0, ddof=1)
        self.Z = (Z_raw - self.c) / self.d
        D = np.zeros((self.n, self.G))
        D[np.arange(self.n), self.codes] = 1.0
        self.D = D
        self.pairs = quadratic_terms(self.p)
        cols = [D, self.Z]
        if quadratic:
            cols.append(np.column_stack([self.Z[:, i] * self.Z[:, j] for i, j in self.pairs]))
        self.X = np.hstack(cols)
        self.q = self.X.shape[1]
        self.iu, self.ju = np.triu_indices(self.q)
        self.XX = self.X[:, self.iu] * self.X[:, self.ju]
        if start is None:
            start = glm(self.X, self.y, "binomial" if link == "logit" else "poisson", what="bootstrap start").params
        self.start = np.asarray(start, float)

    def _mean(self, eta):
        return expit(eta) if self.link == "logit" else np.exp(np.minimum(eta, 700))

    def fit(self, K: np.ndarray, max_iter: int = 50, tol: float = 1e-9) -> np.ndarray:
        """Batched Newton-Raphson; only replicates still iterating are updated."""
        B = K.shape[0]
        th = np.broadcast_to(self.start, (B, self.q)).copy()
        active = np.ones(B, bool)
        bad = np.zeros(B, bool)
        for _ in range(max_iter):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            Ka, ta = K[idx], th[idx]
            eta = ta @ self.X.T
            sep = np.abs(np.where(Ka > 0, eta, 0)).max(1) > 30
            mu = self._mean(eta)
            v = mu * (1 - mu) if self.link == "logit" else mu
            score = (Ka * (self.y - mu)) @ self.X
            Hf = (Ka * v) @ self.XX
            H = np.empty((idx.size, self.q, self.q))
            H[:, self.iu, self.ju] = Hf
            H[:, self.ju, self.iu] = Hf
            H += 1e-12 * np.eye(self.q)
            try:
                step = np.linalg.solve(H, score[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = np.stack([np.linalg.lstsq(h, s, rcond=None)[0] for h, s in zip(H, score)])
            big = np.abs(step).max(1)
            step *= np.minimum(1.0, 5.0 / np.maximum(big, 1e-300))[:, None]   # damp wild steps
            th[idx] = ta + step
            bad[idx[sep | ~np.isfinite(big)]] = True
            active[idx[sep | ~np.isfinite(big) | (big < tol)]] = False
        bad |= active                                                         # did not converge
        th[bad] = np.nan
        return th

    def estimate(self, K: np.ndarray) -> dict[str, np.ndarray]:
        K = np.asarray(K, float)
        th = self.fit(K)
        G, p = self.G, self.p
        eta = th @ self.X.T
        mu = self._mean(eta)
        if self.link == "logit":
            d1 = mu * (1 - mu)
            d2 = d1 * (1 - 2 * mu)
        else:
            d1 = d2 = mu
        b = th[:, G:G + p]
        Gam = np.zeros((len(K), p, p))
        if self.quadratic:
            Gam = gamma_from_quadratic(th[:, G + p:], p)
        grad = b[:, None, :] + np.einsum("np,bpq->bnq", self.Z, Gam)
        Ng = K @ self.D
        N = Ng.sum(1)
        beta = np.zeros((len(K), p))
        gamma = np.zeros((len(K), p, p))
        for g in range(G):
            kg = K * self.D[:, g]
            mW = np.einsum("bn,bn->b", kg, mu) / Ng[:, g]
            wgt = (Ng[:, g] / N) / mW
            beta += wgt[:, None] * np.einsum("bn,bnp->bp", kg * d1, grad) / Ng[:, g][:, None]
            if self.quadratic:
                dd = np.einsum("bn,bnp,bnq->bpq", kg * d2, grad, grad) / Ng[:, g][:, None, None]
                dd += (np.einsum("bn,bn->b", kg, d1) / Ng[:, g])[:, None, None] * Gam
                gamma += wgt[:, None, None] * dd
        m = K @ self.Z / N[:, None]
        var = (K @ self.Z ** 2 / N[:, None] - m ** 2) * (N / (N - 1))[:, None]
        a = resample_scale(self.standardize, self.c, self.d, m, var)
        out = {"beta_avg": beta * a}
        if self.quadratic:
            out["gamma_avg"] = gamma * a[:, :, None] * a[:, None, :]
        return out

