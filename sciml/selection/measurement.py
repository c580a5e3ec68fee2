"""Selection gradients corrected for measurement error in the traits (errors in variables).

Each individual's recorded trait vector ``zbar_i`` (one measurement, or the mean of ``k_i``
repeated measurements) is its latent phenotype ``x_i`` plus an error ``e_i ~ N(0, S_i)``
independent of ``x`` and of fitness. ``S_i`` is either given (``measurement_error={trait: var}``:
the variance of one measurement, ``S_i`` diagonal) or estimated from repeated measures in long
format (``individual=`` column): the pooled within-individual covariance ``S_w`` (Lessells & Boag
1987's within-individual mean square, generalised to a matrix), with ``S_i = S_w / k_i``.

Estimator: adjusted least squares (Cheng & Schneeweiss 1998). The normal equations of the
Lande--Arnold regressions are sums of monomials of the traits up to degree 4 (``X'X``) and of
fitness times monomials up to degree 2 (``X'w``); each monomial of ``zbar`` is replaced by its
unbiased estimate of the same monomial of ``x``, the multivariate Hermite polynomial

    t(z_a z_b ...) = sum over partial pairings P of the indices (-1)^|P| prod_P S_jk prod_rest z_l

(``t(z_a z_b) = z_a z_b - S_ab``, ``t(z_a z_b z_c z_d) = zzzz - 6 terms zz S + 3 terms S S``).
The corrected linear gradients are ``beta = P_x^-1 S`` with ``P_x = cov(zbar) - mean_i S_i``;
traits are standardised by their latent SD ``sqrt(diag P_x)``. Differentials ``S`` are unaffected
by non-differential error; ``C`` uses the corrected squares. The naive OLS gradients are
attenuated: ``beta_naive = P_z^-1 P_x beta`` (raw units). Repeatability per trait (one-way ANOVA,
Lessells & Boag 1987) and reliability are reported.

Inference is by bootstrap over individuals (all of an individual's measurements travel
together), vectorised over replicates: every replicate re-estimates ``S_w``, the latent
standardisation and the corrected moments. Without ``bootstrap=``, leave-one-individual-out
jackknife standard errors are used (normal intervals).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np
import pandas as pd

from .bootstrap import CaseResampling
from .gradients import gamma_from_quadratic, quadratic_terms


@dataclass
class IndividualData:
    """One row per individual: fitness, mean traits, number of measurements, within SSCP."""

    W: np.ndarray                 # (n,)
    Z: np.ndarray                 # (n, p) individual means
    k: np.ndarray                 # (n,) measurements per individual
    sscp: np.ndarray              # (n, p, p) within-individual sums of squares and cross-products
    ids: list
    known_error: np.ndarray | None = None   # (p, p) per-measurement error covariance when given

    @property
    def n(self) -> int:
        return len(self.W)


def individuals_from_long(data: pd.DataFrame, individual: str, fitness: str, traits: list[str],
                          W: np.ndarray, Z: np.ndarray) -> IndividualData:
    """Collapse repeated measures (rows) to individuals; fitness must be constant within individual."""
    ids, inv = np.unique(data[individual].astype(str).to_numpy(), return_inverse=True)
    n, p = len(ids), Z.shape[1]
    k = np.bincount(inv, minlength=n).astype(float)
    Wmin = np.full(n, np.inf)
    Wmax = np.full(n, -np.inf)
    np.minimum.at(Wmin, inv, W)
    np.maximum.at(Wmax, inv, W)
    varying = np.flatnonzero(Wmax - Wmin > 1e-12 * np.maximum(1.0, np.abs(Wmax)))
    if len(varying):
        raise ValueError(f"fitness column {fitness!r} differs between rows of the same individual "
                         f"({individual!r} = {ids[varying[0]]!r}, ...): fitness must be one value per individual")
    means = np.zeros((n, p))
    np.add.at(means, inv, Z)
    means /= k[:, None]
    dev = Z - means[inv]
    sscp = np.zeros((n, p, p))
    np.add.at(sscp, inv, dev[:, :, None] * dev[:, None, :])
    if not (k > 1).any():
        raise ValueError(f"no individual of {individual!r} has repeated measurements: measurement error cannot "
                         f"be estimated; give measurement_error={{trait: variance}} instead")
    return IndividualData(W=Wmin, Z=means, k=k, sscp=sscp, ids=list(ids))


def individuals_with_known_error(W: np.ndarray, Z: np.ndarray, traits: list[str],
                                 measurement_error: Mapping[str, float]) -> IndividualData:
    """One measurement per individual with the given per-measurement error variances."""
    bad = [t for t in measurement_error if t not in traits]
    if bad:
        raise ValueError(f"measurement_error names {bad}, which are not traits of the analysis {traits}")
    var = np.zeros(len(traits))
    for j, t in enumerate(traits):
        v = measurement_error.get(t, 0.0)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"measurement-error variance of trait {t!r} must be a finite number >= 0, got {v!r}")
        var[j] = v
    n, p = Z.shape
    return IndividualData(W=W, Z=Z, k=np.ones(n), sscp=np.zeros((n, p, p)), ids=list(range(n)),
                          known_error=np.diag(var))


# --------------------------------------------------------------------------------------------
# Hermite corrections
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _pairings(idx: tuple[int, ...]) -> tuple[tuple[tuple[tuple[int, int], ...], tuple[int, ...]], ...]:
    """All partial pairings of the positions of ``idx``: (pairs of trait indices, unpaired indices)."""
    out = []
    pos = list(range(len(idx)))
    for r in range(len(idx) // 2 + 1):
        for chosen in itertools.combinations(pos, 2 * r):
            rest = tuple(idx[i] for i in pos if i not in chosen)
            for pairing in _perfect_matchings(chosen):
                out.append((tuple((idx[a], idx[b]) for a, b in pairing), rest))
    return tuple(out)


def _perfect_matchings(items):
    if not items:
        yield ()
        return
    a = items[0]
    for i in range(1, len(items)):
        b = items[i]
        rest = items[1:i] + items[i + 1:]
        for m in _perfect_matchings(rest):
            yield ((a, b),) + m


def hermite(idx: tuple[int, ...], u: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Unbiased estimate of ``prod_{a in idx} x_a`` from ``u = x + e``, ``e ~ N(0, S)``.

    ``u`` is ``(..., p)`` and ``S`` ``(..., p, p)``; returns ``(...)``.
    """
    out = np.zeros(u.shape[:-1])
    for pairs, rest in _pairings(tuple(idx)):
        term = (-1.0) ** len(pairs) * np.ones(u.shape[:-1])
        for a, b in pairs:
            term = term * S[..., a, b]
        for a in rest:
            term = term * u[..., a]
        out = out + term
    return out


# --------------------------------------------------------------------------------------------
# Corrected estimates for many individual weightings at once
# --------------------------------------------------------------------------------------------
class ErrorsInVariablesEngine(CaseResampling):
    """Corrected ``beta``, ``gamma``, ``S``, ``C``, naive ``beta``, and per-trait error variance,
    latent variance and repeatability, for a ``(B, n)`` matrix of individual weights.

    Replicates whose latent covariance is not positive definite are NaN.
    """

    def __init__(self, ind: IndividualData, standardize: str | None, quadratic: bool):
        self.ind, self.standardize, self.quadratic = ind, standardize, quadratic
        self.codes = np.zeros(ind.n, int)
        self.n, self.p = ind.Z.shape
        self.pairs = quadratic_terms(self.p)
        cols = [()] + [(a,) for a in range(self.p)]
        if quadratic:
            cols += [(i, j) for i, j in self.pairs]
        self.cols = cols

    def error_covariance(self, K: np.ndarray) -> np.ndarray:
        """``(B, p, p)`` per-measurement error covariance: given, or the pooled within-individual one."""
        if self.ind.known_error is not None:
            return np.broadcast_to(self.ind.known_error, (len(K), self.p, self.p)).copy()
        dfw = K @ (self.ind.k - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.einsum("bn,nij->bij", K, self.ind.sscp) / dfw[:, None, None]

    def estimate(self, K: np.ndarray) -> dict[str, np.ndarray]:
        K = np.asarray(K, float)
        B, p, ind = len(K), self.p, self.ind
        N = K.sum(1)
        Se = self.error_covariance(K)                                   # per measurement
        mW = K @ ind.W / N
        w = ind.W[None, :] / mW[:, None]                                # relative fitness per replicate
        m = K @ ind.Z / N[:, None]
        Zc = ind.Z[None] - m[:, None, :]
        Pz = np.einsum("bn,bni,bnj->bij", K, Zc, Zc) / (N - 1)[:, None, None]
        Si_mean = Se * (K @ (1.0 / ind.k) / N)[:, None, None]           # mean_i S_w / k_i
        Px = Pz - Si_mean
        latent_var = np.diagonal(Px, axis1=1, axis2=2).copy()
        valid = np.all(latent_var > 0, axis=1) & np.isfinite(Px).all(axis=(1, 2))
        sd = np.sqrt(np.where(latent_var > 0, latent_var, np.nan))
        a = {"sd": sd, "mean": m, None: np.ones((B, p))}[self.standardize]     # latent SD, mean, or 1
        U = Zc / a[:, None, :]
        Sstd = (Se / (a[:, :, None] * a[:, None, :]))[:, None] / ind.k[None, :, None, None]   # (B, n, p, p)
        out = {"S": np.einsum("bn,bn,bni->bi", K, w - 1.0, U) / (N - 1)[:, None]}
        XX, Xw = self._normal_equations(K, U, Sstd, w)
        ql = 1 + p
        out["beta"] = _solve(XX[:, :ql, :ql], Xw[:, :ql])[:, 1:]
        an = np.sqrt(np.diagonal(Pz, axis1=1, axis2=2)) if self.standardize == "sd" else a   # observed SD
        Sz = np.einsum("bn,bn,bni->bi", K, w - 1.0, Zc) / (N - 1)[:, None]
        out["beta_naive"] = _solve(Pz / (an[:, :, None] * an[:, None, :]), Sz / an)      # OLS on observed traits
        if self.quadratic:
            coef = _solve(XX, Xw)
            out["gamma"] = gamma_from_quadratic(coef[:, ql:], p)
        C = np.zeros((B, p, p))
        for i, j in self.pairs:
            t = hermite((i, j), U, Sstd)                               # (B, n)
            tb = np.einsum("bn,bn->b", K, t) / N
            C[:, i, j] = C[:, j, i] = np.einsum("bn,bn,bn->b", K, w - 1.0, t - tb[:, None]) / (N - 1)
        out["C"] = C
        out["error_variance"] = np.diagonal(Se, axis1=1, axis2=2).copy()
        out["latent_variance"] = latent_var
        out["repeatability"] = self._repeatability(K, Se, latent_var)
        for key in out:
            out[key][~valid] = np.nan
        return out

    def _normal_equations(self, K, U, Sstd, w):
        """Hermite-corrected ``X'X`` and ``X'w`` of the (linear or quadratic) design."""
        q = len(self.cols)
        XX = np.zeros((len(K), q, q))
        Xw = np.zeros((len(K), q))
        cache: dict[tuple, np.ndarray] = {}

        def t(idx):
            key = tuple(sorted(idx))
            if key not in cache:
                cache[key] = hermite(key, U, Sstd) if key else np.ones(U.shape[:2])
            return cache[key]

        for r, cr in enumerate(self.cols):
            Xw[:, r] = np.einsum("bn,bn,bn->b", K, w, t(cr))
            for s in range(r, q):
                XX[:, r, s] = XX[:, s, r] = np.einsum("bn,bn->b", K, t(cr + self.cols[s]))
        return XX, Xw

    def _repeatability(self, K, Se, latent_var) -> np.ndarray:
        """Single-measurement repeatability ``R = V_among / (V_among + V_within)`` per trait.

        Repeated measures: one-way ANOVA of the individuals' measurements (Lessells & Boag 1987,
        ``n0`` for unequal numbers); known error: ``1 - var_e / (latent + var_e)``.
        """
        ve = np.diagonal(Se, axis1=1, axis2=2)
        if self.ind.known_error is not None:
            return latent_var / (latent_var + ve)
        k = self.ind.k
        Nobs = K @ k
        Nind = K.sum(1)
        grand = (K @ (self.ind.Z * k[:, None])) / Nobs[:, None]
        ms_among = np.einsum("bn,n,bnp->bp", K, k, (self.ind.Z[None] - grand[:, None]) ** 2) / (Nind - 1)[:, None]
        n0 = (Nobs - (K @ k ** 2) / Nobs) / (Nind - 1)
        va = (ms_among - ve) / n0[:, None]
        return va / (va + ve)


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(b.shape, np.nan)
    ok = np.isfinite(A).all(axis=(1, 2)) & np.isfinite(b).all(axis=1)
    if ok.any():
        try:
            out[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
        except np.linalg.LinAlgError:
            for r in np.flatnonzero(ok):
                try:
                    out[r] = np.linalg.solve(A[r], b[r])
                except np.linalg.LinAlgError:
                    pass
    return out
