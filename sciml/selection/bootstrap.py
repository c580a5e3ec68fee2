"""Vectorised case bootstrap and jackknife of the Lande--Arnold analysis, and bootstrap intervals.

A block of resamples is a matrix ``K`` of resampling counts (replicates x individuals); every
quantity of the Lande--Arnold analysis of a replicate is a function of weighted moments ``K @ F``
of per-individual features ``F`` (the products of the design columns, fitness times design
columns, ...). The normal equations of all replicates are then solved at once. Relative fitness
(within groups) and the trait standardisation are recomputed inside every replicate, exactly as
in a stand-alone analysis of the resample.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .gradients import quadratic_terms


class CaseResampling:
    """Stratified case resampling of individuals (strata ``codes``); the engines inherit it.

    An engine has ``estimate(K)`` for a ``(B, n_units)`` matrix of resampling weights; ``draw``
    gives bootstrap counts and ``leave_one_out`` jackknife weights of its resampling units.
    """

    codes: np.ndarray

    @property
    def n_units(self) -> int:
        return len(self.codes)

    def draw(self, rng: np.random.Generator, B: int) -> np.ndarray:
        return bootstrap_counts(rng, B, self.codes)

    def leave_one_out(self, start: int, end: int) -> np.ndarray:
        K = np.ones((end - start, self.n_units))
        K[np.arange(end - start), np.arange(start, end)] = 0.0
        return K


def resample_scale(standardize: str | None, c: np.ndarray, d: np.ndarray, m: np.ndarray,
                   var: np.ndarray) -> np.ndarray:
    """Trait scale of resamples relative to the global standardisation ``(Z_raw - c) / d``.

    ``m`` and ``var`` are the resample means and ``n - 1`` variances of the globally standardised
    traits (``(B, p)``); the result multiplies slopes on the global scale to give slopes on the
    resample's own scale (SD, mean, or original units).
    """
    if standardize == "sd":
        return np.sqrt(np.maximum(var, 0))
    if standardize == "mean":
        return (c + d * m) / d
    return np.broadcast_to(1.0 / d, m.shape)


class MomentEngine(CaseResampling):
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
        diag = [k for k, (i, j) in enumerate(self.pairs) if i == j]
        var = (EZZ[:, diag] - m ** 2) * (N / (N - 1))[:, None]
        a = resample_scale(self.standardize, self.c, self.d, m, var)
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


def run_bootstrap(engine: CaseResampling, B: int, seed: int | None = None, chunk: int = 1000,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """``B`` bootstrap replicates of every estimate of ``engine`` (dict of stacked arrays)."""
    from tqdm.auto import tqdm

    from sciml._runtime import quiet_progress

    rng = np.random.default_rng(seed)
    outs: list[dict] = []
    bar = tqdm(total=B, desc="bootstrap", disable=(not progress) or quiet_progress() or B < 5 * chunk, leave=False)
    done = 0
    while done < B:
        b = min(chunk, B - done)
        outs.append(engine.estimate(engine.draw(rng, b)))
        done += b
        bar.update(b)
    bar.close()
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def run_jackknife(engine: CaseResampling, chunk: int = 1000) -> dict[str, np.ndarray]:
    """Leave-one-unit-out estimates (for the BCa acceleration)."""
    n = engine.n_units
    outs = []
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        outs.append(engine.estimate(engine.leave_one_out(s, e)))
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

