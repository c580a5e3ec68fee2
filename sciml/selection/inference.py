"""Inference for selection gradients: OLS, GLMs, average gradients, bootstrap, permutation.

The bootstrap is vectorised: a block of resamples is a matrix ``K`` of resampling counts
(replicates x individuals); every quantity of the Lande--Arnold analysis of a replicate is a
function of weighted moments ``K @ F`` of per-individual features ``F`` (the products of the
design columns, fitness times design columns, ...). The normal equations of all replicates are
then solved at once. Relative fitness (within groups) and the trait standardisation are
recomputed inside every replicate, exactly as in a stand-alone analysis of the resample.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from .gradients import SeparationWarning, quadratic_terms


# --------------------------------------------------------------------------------------------
# OLS and GLMs
# --------------------------------------------------------------------------------------------
@dataclass
class OLSFit:
    coef: np.ndarray
    se: np.ndarray
    t: np.ndarray
    p: np.ndarray
    df: int
    rss: float
    cov: np.ndarray
    XtX_inv: np.ndarray


def ols(X: np.ndarray, y: np.ndarray) -> OLSFit:
    """Ordinary least squares with classical standard errors and two-sided t-test p-values.

    Example
    -------
    >>> X = np.column_stack([np.ones(4), [0.0, 1, 2, 3]])
    >>> ols(X, np.array([1.0, 3, 5, 7])).coef.round(6)
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
    cov = s2 * XtX_inv
    se = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
    p = 2 * stats.t.sf(np.abs(t), df) if df > 0 else np.full(q, np.nan)
    return OLSFit(coef, se, t, p, df, rss, cov, XtX_inv)


@dataclass
class GLMFit:
    params: np.ndarray
    se: np.ndarray
    p: np.ndarray
    cov: np.ndarray
    llf: float
    family: str
    dispersion: float
    separation: bool


def glm(X: np.ndarray, y: np.ndarray, family: str, what: str = "model", count_model: str = "auto") -> GLMFit:
    """Fit a logistic (``"binomial"``) or count (``"poisson"``/``"negbin"``/``"count"``) GLM.

    ``family="count"`` fits a Poisson GLM and switches to a negative binomial (statsmodels
    ``NegativeBinomial``, NB2, dispersion estimated) when the Pearson dispersion exceeds 1.5
    (``count_model="auto"``). Separation in a logistic fit emits :class:`SeparationWarning`.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _glm(X, y, family, what, count_model)


def _glm(X, y, family, what, count_model):
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    separation = False
    if family == "binomial":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sm.GLM(y, X, family=sm.families.Binomial()).fit()
        mu = np.asarray(res.mu)
        flagged = any(issubclass(c.category, (PerfectSeparationWarning, ConvergenceWarning)) for c in caught)
        if flagged or np.any(mu < 1e-8) or np.any(mu > 1 - 1e-8):
            separation = True
            warnings.warn(
                f"logistic {what}: complete or quasi-complete separation (fitted probabilities of 0 or 1); "
                f"its coefficients and p-values are unreliable -- prefer the OLS estimates with "
                f"bootstrap or permutation inference", SeparationWarning, stacklevel=5)
        return GLMFit(np.asarray(res.params), np.asarray(res.bse), np.asarray(res.pvalues),
                      np.asarray(res.cov_params()), float(res.llf), "binomial", 1.0, separation)
    if family in ("poisson", "count"):
        res = sm.GLM(y, X, family=sm.families.Poisson()).fit()
        disp = float(res.pearson_chi2 / max(res.df_resid, 1))
        if family == "poisson" or count_model == "poisson" or (count_model == "auto" and disp <= 1.5):
            return GLMFit(np.asarray(res.params), np.asarray(res.bse), np.asarray(res.pvalues),
                          np.asarray(res.cov_params()), float(res.llf), "poisson", disp, False)
        family = "negbin"
    if family == "negbin":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = sm.NegativeBinomial(y, X).fit(disp=0, maxiter=200)
        q = X.shape[1]
        params = np.asarray(res.params)
        return GLMFit(params[:q], np.asarray(res.bse)[:q], np.asarray(res.pvalues)[:q],
                      np.asarray(res.cov_params())[:q, :q], float(res.llf), "negbin",
                      float(params[q]), False)
    raise ValueError(f"unknown GLM family {family!r}")


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
        from scipy.special import expit

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


# --------------------------------------------------------------------------------------------
# Vectorised resampling engine
# --------------------------------------------------------------------------------------------
class MomentEngine:
    """Lande--Arnold estimates for many weightings (bootstrap counts, jackknife) at once.

    ``estimate(K)`` takes a ``(B, n)`` matrix of non-negative weights and returns, per row, the
    linear gradients ``beta``, ``gamma``, ``S`` and ``C`` exactly as a stand-alone analysis of
    the corresponding resample (relative fitness within groups and the trait standardisation
    recomputed). Invalid replicates (singular design, zero mean fitness in a group) are NaN.
    """

    def __init__(self, W: np.ndarray, Z_raw: np.ndarray, group_codes: np.ndarray, standardize: str | None,
                 quadratic: bool = True):
        self.W = np.asarray(W, float)
        self.n, self.p = Z_raw.shape
        self.codes = np.asarray(group_codes, int)
        self.G = int(self.codes.max()) + 1
        self.standardize = standardize
        self.quadratic = quadratic
        self.c = Z_raw.mean(0)
        self.d = Z_raw.std(0, ddof=1)
        Z = (Z_raw - self.c) / self.d
        n, p, G = self.n, self.p, self.G
        D = np.zeros((n, G))
        D[np.arange(n), self.codes] = 1.0
        self.pairs = quadratic_terms(p)
        Q = np.column_stack([Z[:, i] * Z[:, j] for i, j in self.pairs])
        X = np.hstack([D, Z, Q]) if quadratic else np.hstack([D, Z])
        self.q = X.shape[1]
        self.ql = G + p
        iu, ju = np.triu_indices(self.q)
        self.iu, self.ju = iu, ju
        XX = X[:, iu] * X[:, ju]
        XWD = (X * self.W[:, None])[:, None, :] * D[:, :, None]          # n x G x q
        parts = [XX, XWD.reshape(n, G * self.q), D * self.W[:, None], D, Z, Q]
        self.sizes = [p_.shape[1] for p_ in parts]
        self.F = np.ascontiguousarray(np.hstack(parts))

    def estimate(self, K: np.ndarray) -> dict[str, np.ndarray]:
        K = np.asarray(K, float)
        B = K.shape[0]
        G, p, q, ql = self.G, self.p, self.q, self.ql
        R = K @ self.F
        o = np.cumsum([0] + self.sizes)
        XX, XWD, WD, D, Zm, Qm = (R[:, o[k]:o[k + 1]] for k in range(6))
        A = np.empty((B, q, q))
        A[:, self.iu, self.ju] = XX
        A[:, self.ju, self.iu] = XX
        Ng = D
        with np.errstate(divide="ignore", invalid="ignore"):
            Wbar = WD / Ng
            rhs = np.einsum("bgq,bg->bq", XWD.reshape(B, G, q), 1.0 / Wbar)
        valid = np.all(Wbar > 0, axis=1) & np.all(np.isfinite(rhs), axis=1)
        N = Ng.sum(1)
        m = Zm / N[:, None]
        EZZ = Qm / N[:, None]
        # trait scale in the resample, relative to the global standardisation
        if self.standardize == "sd":
            diag = [k for k, (i, j) in enumerate(self.pairs) if i == j]
            var = (EZZ[:, diag] - m ** 2) * (N / (N - 1))[:, None]
            a = np.sqrt(np.maximum(var, 0))
        elif self.standardize == "mean":
            a = (self.c + self.d * m) / self.d
        else:
            a = np.broadcast_to(1.0 / self.d, (B, p))
        rhs = np.where(valid[:, None], rhs, 0.0)
        coef_l = _batched_solve(A[:, :ql, :ql], rhs[:, :ql], valid)
        beta = coef_l[:, G:G + p] * a
        rz = rhs[:, G:G + p]
        S = (rz - m * N[:, None]) / (N - 1)[:, None] / a
        out = {"beta": beta, "S": S}
        if self.quadratic:
            coef = _batched_solve(A, rhs, valid)
            cq = coef[:, G + p:]
            gam = np.zeros((B, p, p))
            rq = rhs[:, G + p:]
            C = np.zeros((B, p, p))
            for k, (i, j) in enumerate(self.pairs):
                val = cq[:, k] * a[:, i] * a[:, j]
                cij = (rq[:, k] - m[:, i] * rz[:, j] - m[:, j] * rz[:, i] + N * m[:, i] * m[:, j]
                       - N * (EZZ[:, k] - m[:, i] * m[:, j])) / (N - 1) / (a[:, i] * a[:, j])
                if i == j:
                    gam[:, i, i] = 2 * val
                    C[:, i, i] = cij
                else:
                    gam[:, i, j] = gam[:, j, i] = val
                    C[:, i, j] = C[:, j, i] = cij
            out["gamma"] = gam
            out["C"] = C
        for k in out:
            out[k][~valid] = np.nan
        return out


def _batched_solve(A: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Solve many small SPD systems; rows that are singular (or invalid) come back as NaN."""
    out = np.full(b.shape, np.nan)
    try:
        L = np.linalg.cholesky(np.where(valid[:, None, None], A, np.eye(A.shape[1])))
        y = _tri_solve(L, b, lower=True)
        x = _tri_solve(np.swapaxes(L, 1, 2), y, lower=False)
        out[:] = x
    except np.linalg.LinAlgError:
        for k in np.flatnonzero(valid):
            try:
                out[k] = np.linalg.solve(A[k], b[k])
            except np.linalg.LinAlgError:
                pass
    out[~valid] = np.nan
    return out


def _tri_solve(T: np.ndarray, b: np.ndarray, lower: bool) -> np.ndarray:
    # column-by-column substitution vectorised over the batch (q is small)
    B, q, _ = T.shape
    x = np.zeros((B, q))
    rng = range(q) if lower else range(q - 1, -1, -1)
    for i in rng:
        if lower:
            s = np.einsum("bk,bk->b", T[:, i, :i], x[:, :i])
        else:
            s = np.einsum("bk,bk->b", T[:, i, i + 1:], x[:, i + 1:])
        x[:, i] = (b[:, i] - s) / T[:, i, i]
    return x


def bootstrap_counts(rng: np.random.Generator, B: int, group_codes: np.ndarray) -> np.ndarray:
    """``(B, n)`` case-resampling counts, resampling within each group (stratified)."""
    n = len(group_codes)
    groups = np.unique(group_codes)
    if len(groups) == 1:
        idx = rng.integers(0, n, size=(B, n))
    else:
        idx = np.empty((B, n), dtype=np.int64)
        for g in groups:
            members = np.flatnonzero(group_codes == g)
            idx[:, members] = members[rng.integers(0, len(members), size=(B, len(members)))]
    idx += np.arange(0, B * n, n)[:, None]
    return np.bincount(idx.ravel(), minlength=B * n).reshape(B, n).astype(np.float64)


def run_bootstrap(engine: MomentEngine, B: int, seed: int | None = None, chunk: int = 1000,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """``B`` stratified case-bootstrap replicates of every estimate (dict of stacked arrays)."""
    from tqdm.auto import tqdm

    from sciml._runtime import quiet_progress

    rng = np.random.default_rng(seed)
    outs: list[dict] = []
    bar = tqdm(total=B, desc="bootstrap", disable=(not progress) or quiet_progress() or B < 5 * chunk, leave=False)
    done = 0
    while done < B:
        b = min(chunk, B - done)
        outs.append(engine.estimate(bootstrap_counts(rng, b, engine.codes)))
        done += b
        bar.update(b)
    bar.close()
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def run_jackknife(engine: MomentEngine, chunk: int = 1000) -> dict[str, np.ndarray]:
    """Leave-one-out estimates (for the BCa acceleration)."""
    n = engine.n
    outs = []
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        K = np.ones((e - s, n))
        K[np.arange(e - s), np.arange(s, e)] = 0.0
        outs.append(engine.estimate(K))
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def percentile_interval(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 (NaN replicates ignored)."""
    a = (1 - level) / 2
    return np.nanquantile(boot, a, axis=0), np.nanquantile(boot, 1 - a, axis=0)


def bca_interval(estimate: np.ndarray, boot: np.ndarray, jack: np.ndarray,
                 level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated interval (Efron 1987), elementwise over axis 0."""
    est = np.asarray(estimate, float)
    valid = np.isfinite(boot)
    nb = valid.sum(0)
    prop = ((boot < est) & valid).sum(0) + 0.5 * ((boot == est) & valid).sum(0)
    prop = np.clip(prop / np.maximum(nb, 1), 1.0 / (nb + 1), 1 - 1.0 / (nb + 1))
    z0 = stats.norm.ppf(prop)
    jm = np.nanmean(jack, axis=0)
    dj = jm - jack
    num = np.nansum(dj ** 3, axis=0)
    den = 6.0 * np.nansum(dj ** 2, axis=0) ** 1.5
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(den > 0, num / den, 0.0)
    a = (1 - level) / 2
    bflat = boot.reshape(boot.shape[0], -1)
    nbf = np.broadcast_to(nb, est.shape).ravel()
    out = []
    for zq in (stats.norm.ppf(a), stats.norm.ppf(1 - a)):
        adj = np.broadcast_to(stats.norm.cdf(z0 + (z0 + zq) / (1 - acc * (z0 + zq))), est.shape).ravel()
        vals = [np.nanquantile(bflat[:, k], adj[k]) if nbf[k] and np.isfinite(adj[k]) else np.nan
                for k in range(bflat.shape[1])]
        out.append(np.asarray(vals, float).reshape(est.shape))
    lo, hi = out
    return lo, hi


# --------------------------------------------------------------------------------------------
# Permutation tests
# --------------------------------------------------------------------------------------------
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
    XtXi = full.XtX_inv
    t_obs = np.abs(full.t)
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


# --------------------------------------------------------------------------------------------
# Comparison of gradients between groups
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Bootstrap of GLM average gradients (batched Newton-Raphson with resampling weights)
# --------------------------------------------------------------------------------------------
class GLMAverageEngine:
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
        from scipy.special import expit

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
            Gam = gamma_from_quadratic_batched(th[:, G + p:], p, self.pairs)
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
        if self.standardize == "sd":
            var = (K @ self.Z ** 2 / N[:, None] - m ** 2) * (N / (N - 1))[:, None]
            a = np.sqrt(var)
        elif self.standardize == "mean":
            a = (self.c + self.d * m) / self.d
        else:
            a = np.broadcast_to(1.0 / self.d, (len(K), p))
        out = {"beta_avg": beta * a}
        if self.quadratic:
            out["gamma_avg"] = gamma * a[:, :, None] * a[:, None, :]
        return out


def gamma_from_quadratic_batched(c: np.ndarray, p: int, pairs) -> np.ndarray:
    """Hessian of the quadratic part (diagonal doubled) for a batch of coefficient vectors."""
    out = np.zeros(c.shape[:-1] + (p, p))
    for k, (i, j) in enumerate(pairs):
        if i == j:
            out[..., i, i] = 2 * c[..., k]
        else:
            out[..., i, j] = out[..., j, i] = c[..., k]
    return out
