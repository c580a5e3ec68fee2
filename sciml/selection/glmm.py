"""Generalised linear mixed models (logistic, Poisson) by Laplace or adaptive Gauss--Hermite quadrature.

Model: ``y_i ~ Bernoulli(mu_i)`` (logit link) or ``Poisson(mu_i)`` (log link) with
``eta = X beta + Z Lambda u``, ``u ~ N(0, I)``; ``cov(b) = Lambda Lambda'`` is built from the
lower-triangular factors ``T_t`` of every grouping exactly as in :mod:`~sciml.selection.reml` (here
``theta`` holds absolute, not relative, scales). The marginal likelihood is a product over clusters
(levels of the outermost grouping) of ``int prod_i p(y_i | eta_i) phi(u_c) du_c``:

* **Laplace** (lme4's default, ``nAGQ=1``): with the conditional mode ``u_c*`` (Newton's method on
  the concave log-integrand, vectorised over clusters) and ``H_c = Lambda' Z_c' W_c Z_c Lambda + I``
  (``W`` = variance function at the mode), ``log L_c = l_c(u_c*) - |u_c*|^2/2 - log|H_c|/2``;
* **adaptive Gauss--Hermite** (``nAGQ = K > 1``, a single scalar random intercept only):
  ``log L_c = log(s_c/sqrt(pi)) + log sum_k w_k exp(x_k^2 + g_c(u* + sqrt(2) s_c x_k))`` with
  ``s_c = H_c^(-1/2)`` and ``g_c`` the log-integrand (Liu & Pierce 1994).

``(beta, theta)`` maximise the approximate log-likelihood (L-BFGS; central-difference gradients
evaluated for all coordinates in one vectorised pass). Standard errors of ``beta`` are conditional
on ``theta`` (lme4's ``RX``): ``(X'WX - X'WZ Lambda H^-1 Lambda'Z'WX)^-1`` at the modes; Wald z-tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, sparse
from scipy.special import expit, gammaln, logsumexp

from .blas import blas_single_thread
from .random_effects import RandomEffects
from .reml import canonical_theta
from .wald import NormalWaldInference


@dataclass
class GLMMFit(NormalWaldInference):
    """A fitted GLMM in statsmodels' vocabulary (``params``, ``bse``, ``pvalues``, ``conf_int()``...)."""

    params: np.ndarray
    bse: np.ndarray
    llf: float
    theta: np.ndarray
    family: str
    nAGQ: int
    nobs: int
    converged: bool
    exog_names: list[str]
    re: RandomEffects = field(repr=False)
    _cov: np.ndarray = field(repr=False, default=None)

    def cov_params(self) -> np.ndarray:
        return self._cov

    @property
    def cov_re(self) -> dict[str, pd.DataFrame]:
        """Covariance of each grouping's random coefficients on the linear-predictor scale (``T T'``)."""
        return {t.grouping: pd.DataFrame(T @ T.T, index=t.coefs, columns=t.coefs)
                for t, T in zip(self.re.terms, self.re.T_of(self.theta))}


class GLMMProblem:
    """Laplace / AGHQ log-likelihood of a GLMM for batches of parameter vectors ``[beta, theta]``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, re: RandomEffects, family: str, nAGQ: int = 1):
        if family not in ("binomial", "poisson"):
            raise ValueError(f"family must be 'binomial' or 'poisson', got {family!r}")
        scalar = len(re.terms) == 1 and re.terms[0].d == 1
        if nAGQ < 1 or (nAGQ > 1 and not scalar):
            raise ValueError(f"nAGQ={nAGQ}: adaptive quadrature needs a single random intercept; use nAGQ=1 (Laplace)")
        self.X, self.y, self.re, self.family, self.nAGQ = np.asarray(X, float), np.asarray(y, float), re, family, nAGQ
        self.n, self.p = self.X.shape
        self.S = sparse.csr_matrix((np.ones(self.n), (re.cluster, np.arange(self.n))), shape=(re.n_clusters, self.n))
        self.const = -gammaln(self.y + 1).sum() if family == "poisson" else 0.0
        self.nodes, self.weights = np.polynomial.hermite.hermgauss(nAGQ) if nAGQ > 1 else (None, None)

    def _segment(self, a: np.ndarray) -> np.ndarray:
        """Sum ``(P, n, ...)`` row values by cluster -> ``(P, J, ...)``."""
        P, n = a.shape[:2]
        flat = np.moveaxis(a, 1, 0).reshape(n, -1)
        return np.moveaxis((self.S @ flat).reshape((self.re.n_clusters, P) + a.shape[2:]), 0, 1)

    def _rowlik(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row log-likelihood (without constants), score factor ``y - mu`` and variance ``v``."""
        if self.family == "binomial":
            mu = expit(eta)
            return self.y * eta - np.logaddexp(0.0, eta), self.y - mu, mu * (1 - mu)
        mu = np.exp(np.minimum(eta, 700.0))
        return self.y * eta - mu, self.y - mu, mu

    def modes(self, phi: np.ndarray, u0: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 50):
        """Conditional modes ``u*`` for a batch ``phi`` (``(P, p + n_theta)``) by damped Newton."""
        P = len(phi)
        beta, theta = phi[:, :self.p], phi[:, self.p:]
        Lam = self.re.lambda_of(theta)                                       # (P, J, q, q)
        c, Zl, q = self.re.cluster, self.re.Zloc, self.re.q_max
        ZL = np.zeros((P, self.n, q))                                        # rows of Z Lambda
        for a in range(q):
            for r in range(q):
                if np.any(Lam[:, :, a, r]):
                    ZL[:, :, r] += Zl[:, a] * Lam[:, c, a, r]
        off = beta @ self.X.T                                                # (P, n)
        u = np.zeros((P, self.re.n_clusters, self.re.q_max)) if u0 is None else u0.copy()
        I = np.eye(self.re.q_max)

        def objective(uu):
            eta = off + np.einsum("Pnr,Pnr->Pn", ZL, uu[:, c])
            ll, sc, v = self._rowlik(eta)
            return eta, ll, sc, v, self._segment(ll[..., None])[..., 0] - 0.5 * (uu ** 2).sum(-1)

        eta, _, sc, v, obj = objective(u)
        for _ in range(max_iter):
            g = self._segment(ZL * sc[..., None]) - u
            H = self._segment(ZL[..., :, None] * ZL[..., None, :] * v[..., None, None]) + I
            step = np.linalg.solve(H, g[..., None])[..., 0]
            t = np.ones(u.shape[:2])
            for _h in range(30):                                             # halve where the objective drops
                cand = u + t[..., None] * step
                e2, _, s2, v2, o2 = objective(cand)
                worse = o2 < obj - 1e-12 * np.abs(obj)
                if not worse.any():
                    break
                t = np.where(worse, t / 2, t)
            u, eta, sc, v, obj = cand, e2, s2, v2, o2
            if np.abs(step * t[..., None]).max() < tol:
                break
        H = self._segment(ZL[..., :, None] * ZL[..., None, :] * v[..., None, None]) + I
        return u, H, obj, eta, v, ZL

    def loglik(self, phi: np.ndarray, u0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate marginal log-likelihood of every row of ``phi`` (and the modes)."""
        phi = np.atleast_2d(np.asarray(phi, float))
        u, H, obj, eta, v, ZL = self.modes(phi, u0)
        if self.nAGQ == 1:
            logdet = 2 * np.log(np.diagonal(np.linalg.cholesky(H), axis1=-2, axis2=-1)).sum(-1)
            return (obj - 0.5 * logdet).sum(1) + self.const, u
        s = 1.0 / np.sqrt(H[..., 0, 0])                                        # (P, J)
        zl = ZL[..., 0]                                                        # (P, n)
        terms = []
        for x_k, w_k in zip(self.nodes, self.weights):
            uk = u[..., 0] + np.sqrt(2.0) * s * x_k
            ek = eta + zl * (uk - u[..., 0])[:, self.re.cluster]
            gk = self._segment(self._rowlik(ek)[0][..., None])[..., 0] - 0.5 * uk ** 2
            terms.append(np.log(w_k) + x_k ** 2 + gk)
        logL = -0.5 * np.log(np.pi) + np.log(s) + logsumexp(np.stack(terms), axis=0)
        return logL.sum(1) + self.const, u

    def laplace_beta_gradient(self, phi: np.ndarray, u0: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """Laplace log-likelihood at ``phi`` and its exact gradient in ``beta`` (``theta`` fixed).

        With the modes ``u*(beta)``, ``h_i = zl_i' H_c^-1 zl_i`` and ``du*/dbeta = -H_c^-1 sum_i v_i zl_i x_i'``:
        ``d/dbeta = X'(y - mu) - 1/2 sum_i v'_i h_i (x_i + zl_i' du*/dbeta)`` (envelope theorem for the
        mode, ``d log|H_c| = tr(H_c^-1 dH_c)``; ``v' = dv/deta``).
        """
        u, H, obj, eta, v, ZL = self.modes(np.atleast_2d(phi), u0)
        Hi = np.linalg.inv(H[0])                                              # (J, q, q)
        zl, c = ZL[0], self.re.cluster
        h = np.einsum("nq,nqr,nr->n", zl, Hi[c], zl)
        mu = expit(eta[0]) if self.family == "binomial" else np.exp(np.minimum(eta[0], 700.0))
        dv = v[0] * (1 - 2 * mu) if self.family == "binomial" else v[0]
        Bc = self._segment((zl[:, :, None] * (v[0][:, None] * self.X)[:, None, :])[None])[0]   # (J, q, p)
        D = -Hi @ Bc                                                          # du*/dbeta  (J, q, p)
        deta = self.X + np.einsum("nq,nqp->np", zl, D[c])
        grad = self.X.T @ (self.y - mu) - 0.5 * (dv * h) @ deta
        logdet = 2 * np.log(np.diagonal(np.linalg.cholesky(H[0]), axis1=-2, axis2=-1)).sum(-1)
        return float((obj[0] - 0.5 * logdet).sum() + self.const), grad, u

    def beta_covariance(self, phi: np.ndarray) -> np.ndarray:
        """``(X'WX - X'WZL H^-1 L'Z'WX)^-1`` at the modes (conditional on ``theta``)."""
        u, H, obj, eta, v, ZL = self.modes(np.atleast_2d(phi))
        XWX = (self.X * v[0][:, None]).T @ self.X
        LZWX = self._segment((ZL[0][:, :, None] * (v[0][:, None] * self.X)[:, None, :])[None])[0]   # (J, q, p)
        schur = XWX - np.einsum("jqp,jqr,jrs->ps", LZWX, np.linalg.inv(H[0]), LZWX)
        return np.linalg.inv(schur)


@blas_single_thread
def fit_glmm(X: np.ndarray, y: np.ndarray, re: RandomEffects, family: str, exog_names: list[str],
             nAGQ: int = 1, start: np.ndarray | None = None, h: float = 1e-5) -> GLMMFit:
    """Maximum (Laplace/AGHQ) likelihood fit of a logistic or Poisson GLMM (see the module docstring).

    Example
    -------
    >>> fit = fit_glmm(X, survived, re, "binomial", ["intercept", "z1"])   # doctest: +SKIP
    >>> fit.params, fit.pvalues, fit.cov_re                               # doctest: +SKIP
    """
    prob = GLMMProblem(X, y, re, family, nAGQ)
    if start is None:
        import statsmodels.api as sm

        fam = sm.families.Binomial() if family == "binomial" else sm.families.Poisson()
        start = np.concatenate([np.asarray(sm.GLM(y, X, family=fam).fit().params), 0.5 * re.theta_start()])
    k, p = len(start), prob.p
    cache: dict = {}

    def f(phi):
        """Laplace: exact gradient in beta, central differences in theta (one batched pass);
        AGHQ: central differences in every coordinate."""
        coords = np.arange(p, k) if nAGQ == 1 else np.arange(k)
        E = np.zeros((2 * len(coords), k))
        steps = h * np.maximum(1.0, np.abs(phi[coords]))
        E[np.arange(len(coords)), coords] = steps
        E[len(coords) + np.arange(len(coords)), coords] = -steps
        grad = np.zeros(k)
        if nAGQ == 1:
            ll0, grad[:p], u = prob.laplace_beta_gradient(phi, cache.get("u0"))
            cache["u0"] = u
        if len(coords):
            ll, u = prob.loglik(phi[None] + E, cache.get("u"))
            cache["u"] = u
            grad[coords] = (ll[:len(coords)] - ll[len(coords):]) / (2 * steps)
        if nAGQ > 1:
            ll0 = float(prob.loglik(phi[None], cache.get("u", None)[:1] if "u" in cache else None)[0][0])
        return -ll0, -grad

    sol = optimize.minimize(f, np.asarray(start, float), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-13, "gtol": 1e-6, "maxiter": 1000})
    phi = sol.x
    phi[prob.p:] = canonical_theta(phi[prob.p:], re)
    cov = prob.beta_covariance(phi)
    ll = float(prob.loglik(phi)[0][0])
    return GLMMFit(params=phi[:prob.p], bse=np.sqrt(np.diag(cov)), llf=ll, theta=phi[prob.p:], family=family,
                   nAGQ=nAGQ, nobs=len(y), converged=bool(sol.success), exog_names=list(exog_names), re=re, _cov=cov)
