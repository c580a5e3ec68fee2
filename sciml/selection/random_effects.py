"""Random-effects structure of a mixed selection model: nested groupings and random slopes.

``random_effects=["site", "brood"]`` means random intercepts for sites and for broods *within*
sites (a brood is identified by its site and its own label); ``random_slopes={"year": ["beak"]}``
adds random slopes of the (standardised) trait ``beak`` among years, with an unstructured
covariance between the intercept and the slopes of a grouping (lme4's ``(1 + beak | year)``).

The design is stored cluster by cluster: a *cluster* is a level of the outermost grouping, and
all random effects of its inner levels live inside it, so the random-effects covariance is block
diagonal by cluster. Each cluster's block is padded to ``q_max`` columns; ``Zloc[i]`` is row
``i``'s random-effects design in its cluster's local coordinates. ``lambda_of(theta)`` builds the
relative covariance factors ``Lambda_c`` (``Psi = Lambda Lambda' = cov(b) / sigma^2``) from the
lower-triangular factors ``T_t`` of every grouping ``t`` (lme4's parameterisation, Bates et al. 2015).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .gradients import SelectionWarning
from .._warnings import user_stacklevel


@dataclass
class Term:
    """One grouping: its column, the names of its random coefficients and its levels."""

    grouping: str
    coefs: list[str]                  # "intercept" then the traits with random slopes
    level_names: list[str]
    level_cluster: np.ndarray         # cluster of each level
    level_start: np.ndarray           # first local column of each level's block in its cluster

    @property
    def d(self) -> int:
        return len(self.coefs)

    @property
    def n_theta(self) -> int:
        return self.d * (self.d + 1) // 2


@dataclass
class RandomEffects:
    """Per-cluster random-effects design of nested groupings (see the module docstring)."""

    terms: list[Term]
    cluster: np.ndarray               # (n,) cluster code of each row
    cluster_names: list[str]
    Zloc: np.ndarray                  # (n, q_max)
    q: np.ndarray                     # (J,) columns used by each cluster
    traits: list[str] = field(default_factory=list)   # traits of the analysis (slope names refer to them)
    lam_index: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] = field(repr=False, default=None)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_names)

    @property
    def q_max(self) -> int:
        return self.Zloc.shape[1]

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    def theta_slices(self) -> list[slice]:
        out, k = [], 0
        for t in self.terms:
            out.append(slice(k, k + t.n_theta))
            k += t.n_theta
        return out

    def theta_lower_bounds(self) -> np.ndarray:
        """0 for the diagonal of every ``T_t`` (standard deviations), ``-inf`` for the rest."""
        lb = []
        for t in self.terms:
            lb += [0.0 if i == j else -np.inf for i, j in zip(*np.tril_indices(t.d))]
        return np.array(lb)

    def theta_start(self) -> np.ndarray:
        """Identity ``T_t`` (lme4's start: random-effect SD equal to the residual SD)."""
        return np.concatenate([np.eye(t.d)[np.tril_indices(t.d)] for t in self.terms])

    def T_of(self, theta: np.ndarray) -> list[np.ndarray]:
        """Lower-triangular factors ``T_t`` (``cov(b_t) = sigma^2 T_t T_t'``)."""
        out = []
        for t, sl in zip(self.terms, self.theta_slices()):
            T = np.zeros((t.d, t.d))
            T[np.tril_indices(t.d)] = theta[sl]
            out.append(T)
        return out

    def lambda_of(self, theta: np.ndarray, batch: int | None = None) -> np.ndarray:
        """``(J, q_max, q_max)`` relative covariance factors (``(B, J, q_max, q_max)`` for a
        ``(B, n_theta)`` batch of ``theta``)."""
        c, r, k, src = self.lam_index
        theta = np.asarray(theta, float)
        if theta.ndim == 1:
            L = np.zeros((self.n_clusters, self.q_max, self.q_max))
            L[c, r, k] = theta[src]
            return L
        L = np.zeros((theta.shape[0], self.n_clusters, self.q_max, self.q_max))
        L[:, c, r, k] = theta[:, src]
        return L

    def blocks(self, term_index: int) -> tuple[np.ndarray, np.ndarray]:
        """Cluster and first local column of every level of a term (for gathering its blocks)."""
        t = self.terms[term_index]
        return t.level_cluster, t.level_start


def parse_random_effects(random_effects: str | Sequence[str] | None,
                         random_slopes: Mapping[str, Sequence[str]] | Sequence[str] | None,
                         traits: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Normalise the ``random_effects`` / ``random_slopes`` arguments (errors name the bad entry).

    ``random_slopes`` may be a list of traits (slopes among levels of the outermost grouping)
    or a dict ``{grouping: [traits]}``.
    """
    if random_effects is None:
        if random_slopes:
            raise ValueError("random_slopes needs random_effects (the grouping the slopes vary among)")
        return [], {}
    groupings = [random_effects] if isinstance(random_effects, str) else list(random_effects)
    groupings = [g.strip() for g in groupings]
    if not groupings or any(not isinstance(g, str) or not g for g in groupings):
        raise ValueError(f"random_effects must be a column name or a list of column names, got {random_effects!r}")
    if len(set(groupings)) != len(groupings):
        raise ValueError(f"random_effects lists a column twice: {groupings}")
    clash = [g for g in groupings if g in traits]
    if clash:
        raise ValueError(f"random-effect column(s) {clash} are also traits")
    if random_slopes is None:
        slopes: dict[str, list[str]] = {}
    elif isinstance(random_slopes, Mapping):
        slopes = {g: [random_slopes[g]] if isinstance(random_slopes[g], str) else list(random_slopes[g])
                  for g in random_slopes}
    else:
        rs = [random_slopes] if isinstance(random_slopes, str) else list(random_slopes)
        slopes = {groupings[0]: rs} if rs else {}
    for g, ts in slopes.items():
        if g not in groupings:
            raise ValueError(f"random_slopes names the grouping {g!r}, which is not in random_effects {groupings}")
        bad = [t for t in ts if t not in traits]
        if bad:
            raise ValueError(f"random slopes among {g!r} for {bad}: not traits of the analysis {list(traits)}")
        if len(set(ts)) != len(ts):
            raise ValueError(f"random_slopes for {g!r} lists a trait twice: {ts}")
    return groupings, {g: list(ts) for g, ts in slopes.items() if ts}


def check_groupings(data: pd.DataFrame, groupings: Sequence[str]) -> None:
    """Errors for a random-effect column with one level or only singleton levels; a warning for few levels."""
    keys = None
    for g in groupings:
        labels = data[g].astype(str)
        keys = labels if keys is None else keys + "\x1f" + labels
        counts = keys.value_counts()
        if len(counts) < 2:
            raise ValueError(f"random-effect column {g!r} has a single level ({data[g].iloc[0]!r}): a variance "
                             f"among levels cannot be estimated; drop it from random_effects")
        if counts.max() < 2:
            raise ValueError(f"every level of the random-effect column {g!r} holds a single individual: its variance "
                             f"cannot be told apart from the residual variance; drop it from random_effects")
        if len(counts) < 5 and g == groupings[0]:
            warnings.warn(f"random-effect column {g!r} has only {len(counts)} levels: its variance (and the "
                          f"fixed-effect SEs that depend on it) are poorly estimated", SelectionWarning, stacklevel=user_stacklevel())


def build_random_effects(data: pd.DataFrame, groupings: Sequence[str], slopes: Mapping[str, Sequence[str]],
                         U: np.ndarray, traits: Sequence[str]) -> RandomEffects:
    """Per-cluster design of the nested groupings of ``data`` (rows aligned with ``U``)."""
    n = len(data)
    codes = [pd.factorize(data[g], sort=True) for g in groupings]       # natural order (numbers as numbers)
    cluster, cluster_names = codes[0][0], [str(v) for v in codes[0][1]]
    J = len(cluster_names)
    cols = {g: [1.0] + [U[:, list(traits).index(t)] for t in slopes.get(g, [])] for g in groupings}
    q = np.zeros(J, int)
    terms, placements = [], []
    for k, g in enumerate(groupings):
        key = np.column_stack([c for c, _ in codes[:k + 1]])
        uniq, lev = np.unique(key, axis=0, return_inverse=True)      # levels nested in the outer ones
        lev = lev.ravel()
        names = ["/".join(str(codes[i][1][u[i]]) for i in range(k + 1)) for u in uniq]
        d = 1 + len(slopes.get(g, []))
        lev_cluster = np.zeros(len(names), int)
        lev_cluster[lev] = cluster
        start = np.zeros(len(names), int)
        for c in range(J):                               # consecutive blocks of this term in each cluster
            mine = np.flatnonzero(lev_cluster == c)
            start[mine] = q[c] + d * np.arange(len(mine))
            q[c] += d * len(mine)
        terms.append(Term(grouping=g, coefs=["intercept"] + list(slopes.get(g, [])), level_names=list(names),
                          level_cluster=lev_cluster, level_start=start))
        placements.append(lev)
    Zloc = np.zeros((n, int(q.max())))
    for t, lev in zip(terms, placements):
        for j, v in enumerate(cols[t.grouping]):
            Zloc[np.arange(n), t.level_start[lev] + j] = v
    re = RandomEffects(terms=terms, cluster=cluster, cluster_names=list(cluster_names), Zloc=Zloc, q=q,
                       traits=list(traits))
    re.lam_index = _lambda_index(re)
    return re


def _lambda_index(re: RandomEffects):
    """Where each entry of each ``T_t`` goes in the padded ``Lambda_c``: (cluster, row, col, theta index)."""
    cs, rs, ks, src = [], [], [], []
    offset = 0
    for t in re.terms:
        ii, jj = np.tril_indices(t.d)
        for e, (i, j) in enumerate(zip(ii, jj)):
            cs.append(t.level_cluster)
            rs.append(t.level_start + i)
            ks.append(t.level_start + j)
            src.append(np.full(len(t.level_start), offset + e))
        offset += t.n_theta
    return tuple(np.concatenate(a).astype(int) for a in (cs, rs, ks, src))
