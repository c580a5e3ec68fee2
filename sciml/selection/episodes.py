"""Episodes of selection: Arnold & Wade (1984) partition of selection over fitness components.

Total fitness is the product of components met in sequence (``W = survived x mated x eggs``, with
later components 0 or missing for individuals that did not reach them; the user chooses the
components so that their product is total fitness, e.g. eggs per mate when mates are counted).
With ``A_k = W_1 ... W_k`` (fitness accumulated up to episode ``k``), its relative version
``R_k = A_k / mean(A_k)`` (``R_0 = 1``) and ``w_k = W_k / E[R_{k-1} W_k]`` (relative fitness of
episode ``k`` among the individuals that reached it, weighted by the fitness they brought), so that
``R_k = R_{k-1} w_k``:

* **differentials** ``S_k = cov(R_k, z) - cov(R_{k-1}, z)``: the shift in the (relative-fitness
  weighted) mean phenotype during episode ``k`` -- the covariance of ``w_k`` and ``z`` among the
  individuals that reached the episode, weighted by ``R_{k-1}`` (``n - 1`` denominators, as
  :func:`~sciml.selection.lande_arnold`). They add up to ``S = cov(w, z)`` of total fitness.
* **gradients** ``beta_k = P^-1 S_k`` with ``P`` the phenotypic covariance of the cohort before
  selection (Arnold & Wade 1984a) -- equivalently the change in the Lande--Arnold gradient as
  fitness accumulates, ``beta(R_k) - beta(R_{k-1})``; they add up to the total ``beta``.
  ``gradients_within`` gives, for comparison, each episode's own least-squares gradient among
  the individuals that reached it (weights ``R_{k-1}``, their covariance ``P_{k-1}``), which does
  not add up.
* **opportunity for selection** ``I_k = var_{k-1}(w_k)`` (variance of episode relative fitness
  among those that reached it, weighted by ``R_{k-1}``). With ``T_k = E[R_k^2] = 1 + I_{<=k}``,
  ``T_k = T_{k-1} (1 + I_k) + c_k`` where ``c_k = cov_{k-1}(R_{k-1}, w_k^2)``, so
  ``I = sum_k (T_{k-1} I_k + c_k)``: each episode contributes its own opportunity scaled by what
  was already there, plus a covariance term (zero after an all-or-none episode such as
  survival, where ``I = I_1 + I_2 / P(survival)``).

Bootstrap: individuals are resampled and every quantity recomputed (means, relative fitness,
standardisation), vectorised over replicates.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .bootstrap import CaseResampling, MomentEngine, bca_interval, percentile_interval, run_bootstrap, run_jackknife
from .gradients import (STANDARDIZE, SelectionWarning, _as_numeric, _binary_from_strings, _check_traits,
                        standardize_traits)
from .options import AnalysisOptions
from .._warnings import user_stacklevel

_SE_COLS = ["estimate", "se", "ci_low", "ci_high"]


@dataclass
class EpisodeResult:
    """Selection differentials, gradients and opportunity for selection per episode.

    ``differentials`` and ``gradients``: DataFrames indexed by trait with one column per episode
    (named as the components) and ``total``; ``*_se``, ``*_ci_low``, ``*_ci_high`` alike (NaN
    without bootstrap). ``opportunity``: indexed by episode and ``total`` with ``I`` (within-episode
    opportunity), ``weight`` (``T_{k-1}``), ``contribution`` (``T_{k-1} I_k``), ``covariance``
    (``c_k``) and ``share`` of the total; ``opportunity_se/ci_low/ci_high`` for ``I``.
    ``gradients_within``: each episode's own gradient among the individuals that reached it.
    ``reached``: individuals entering each episode.
    """

    components: list[str]
    traits: list[str]
    n: int
    standardize: str | None
    differentials: pd.DataFrame
    gradients: pd.DataFrame
    opportunity: pd.DataFrame
    gradients_within: pd.DataFrame
    reached: pd.Series
    bootstrap: int = 0
    level: float = 0.95
    differentials_se: pd.DataFrame | None = None
    differentials_ci_low: pd.DataFrame | None = None
    differentials_ci_high: pd.DataFrame | None = None
    gradients_se: pd.DataFrame | None = None
    gradients_ci_low: pd.DataFrame | None = None
    gradients_ci_high: pd.DataFrame | None = None
    opportunity_se: pd.Series | None = None
    opportunity_ci_low: pd.Series | None = None
    opportunity_ci_high: pd.Series | None = None
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    bootstrap_samples: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def table(self) -> pd.DataFrame:
        """Tidy: ``episode, type (S | beta | I), term, estimate, se, ci_low, ci_high``."""
        rows = []
        for typ, est, se, lo, hi in (("S", self.differentials, self.differentials_se, self.differentials_ci_low,
                                      self.differentials_ci_high),
                                     ("beta", self.gradients, self.gradients_se, self.gradients_ci_low,
                                      self.gradients_ci_high)):
            for ep in est.columns:
                for t in est.index:
                    rows.append([ep, typ, t, est.at[t, ep], *(np.nan if x is None else x.at[t, ep] for x in (se, lo, hi))])
        for ep in self.opportunity.index:
            rows.append([ep, "I", "opportunity", self.opportunity.at[ep, "I"],
                         *(np.nan if x is None else x[ep] for x in (self.opportunity_se, self.opportunity_ci_low,
                                                                    self.opportunity_ci_high))])
        return pd.DataFrame(rows, columns=["episode", "type", "term"] + _SE_COLS)

    @property
    def params(self) -> pd.Series:
        return self.table().set_index(["episode", "type", "term"])["estimate"].rename("params")

    @property
    def bse(self) -> pd.Series:
        return self.table().set_index(["episode", "type", "term"])["se"].rename("bse")

    def conf_int(self) -> pd.DataFrame:
        """Intervals at the analysis' ``level``, aligned with :attr:`params`."""
        t = self.table().set_index(["episode", "type", "term"])
        return t[["ci_low", "ci_high"]].set_axis(["lower", "upper"], axis=1)

    def to_dict(self) -> dict:
        return {"components": self.components, "traits": self.traits, "n": self.n, "bootstrap": self.bootstrap,
                "reached": self.reached.to_dict(), "notes": self.notes, "dropped": self.dropped,
                "opportunity": self.opportunity.reset_index(names="episode").replace({np.nan: None})
                .to_dict(orient="records"),
                "table": self.table().replace({np.nan: None}).to_dict(orient="records")}

    def summary(self) -> str:
        f = lambda df: df.to_string(float_format=lambda v: f"{v: .4f}")  # noqa: E731
        lines = ["Episodes of selection (Arnold & Wade 1984)", "=" * 72,
                 f"components: {' x '.join(self.components)}; n = {self.n}; bootstrap replicates: {self.bootstrap}",
                 "individuals entering each episode: " + ", ".join(f"{k} {v}" for k, v in self.reached.items())]
        lines += [f"note: {n}" for n in self.notes]
        lines += ["", "Selection differentials S (columns add up to total)", f(self.differentials),
                  "", "Selection gradients beta = P^-1 S (columns add up to total)", f(self.gradients)]
        if self.gradients_se is not None:
            lines += ["", "bootstrap SE of the gradients", f(self.gradients_se)]
        lines += ["", "Opportunity for selection", f(self.opportunity),
                  "", "Gradients within each episode (among those that reached it; do not add up)",
                  f(self.gradients_within)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def selection_episodes(
    data: pd.DataFrame,
    components: Sequence[str],
    traits: Sequence[str],
    standardize: str | None = "sd",
    bootstrap: int = 0,
    seed: int | None = None,
    *,
    ci_method: str = "bca",
    level: float = 0.95,
    missing: str = "drop",
    progress: bool = True,
) -> EpisodeResult:
    """Arnold--Wade partition of selection over sequential fitness components.

    ``components`` are columns whose product is total fitness, in the order they act (e.g.
    ``["survived", "mated", "eggs"]``); a later component may be 0 or missing for individuals
    that did not reach it, but must not be positive for them (an error names the column).
    See the module docstring for the definitions.

    Example
    -------
    >>> res = selection_episodes(df, ["survived", "mated", "eggs"], ["mass", "wing"], bootstrap=1000)  # doctest: +SKIP
    >>> res.gradients            # trait x (survived, mated, eggs, total); columns add up  # doctest: +SKIP
    >>> res.opportunity          # I per episode, contributions, covariance terms         # doctest: +SKIP
    """
    opts = AnalysisOptions(bootstrap=bootstrap, seed=seed, ci_method=ci_method, level=level, progress=progress).check()
    comps, traits, Wk, Z, index, dropped, notes = _prepare(data, components, traits, standardize, missing)
    A = np.cumprod(Wk, axis=1)                                         # (n, K) accumulated absolute fitness
    for k, c in enumerate(comps):
        if A[:, k].sum() == 0:
            raise ValueError(f"no individual has positive accumulated fitness after episode {c!r}: "
                             f"relative fitness is undefined")
    U = standardize_traits(Z, standardize)
    point = _episode_estimates(A, Wk, U)
    res = _result(point, comps, traits, len(A), standardize, opts, A, notes, dropped)
    if opts.bootstrap:
        _bootstrap(res, A, Wk, Z, standardize, opts)
    return res


def _prepare(data, components, traits, standardize, missing):
    """Validate columns; zero later components of individuals that did not reach them; check nesting."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    comps = [c.strip() for c in components.split(",")] if isinstance(components, str) else list(components)
    traits = [t.strip() for t in traits.split(",")] if isinstance(traits, str) else list(traits)
    if not comps:
        raise ValueError("components is empty: give the fitness-component columns in the order they act")
    if not traits:
        raise ValueError("traits is empty: give at least one trait column")
    if standardize not in STANDARDIZE:
        raise ValueError(f"standardize must be 'sd', 'mean' or None, got {standardize!r}")
    if missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise' for selection_episodes, got {missing!r}")
    dup = sorted({c for c in comps + traits if (comps + traits).count(c) > 1})
    if dup:
        raise ValueError(f"columns listed twice among components and traits: {dup}")
    absent = [c for c in comps + traits if c not in data.columns]
    if absent:
        raise ValueError(f"columns not found in data: {absent}; available: {list(data.columns)}")
    Wk = np.column_stack([_component(data[c], c) for c in comps])
    Z = np.column_stack([_as_numeric(data[t], t, "trait") for t in traits])
    reached = np.ones(len(data), bool)
    for k, c in enumerate(comps):
        col = Wk[:, k]
        if k:
            col[~reached & np.isnan(col)] = 0.0                        # not reached: 0, not missing
            out = ~reached & (col > 0)
            if out.any():
                prev = comps[k - 1]
                raise ValueError(f"episode column {c!r} is not nested in the previous ones: {int(out.sum())} "
                                 f"individuals have {c} > 0 although an earlier component ({', '.join(comps[:k])}) "
                                 f"is 0 (e.g. row {data.index[np.flatnonzero(out)[0]]!r}: {c} without {prev})")
        neg = np.isfinite(col) & (col < 0)
        if neg.any():
            raise ValueError(f"fitness component {c!r} has {int(neg.sum())} negative values; components must be >= 0")
        reached &= ~(np.isfinite(col) & (col == 0))
    bad = ~np.isfinite(Wk).all(1) | ~np.isfinite(Z).all(1)
    counts = {c: int((~np.isfinite(v)).sum()) for c, v in [*zip(comps, Wk.T), *zip(traits, Z.T)]}
    counts = {k: v for k, v in counts.items() if v}
    empty = [c for c, v in [*zip(comps, Wk.T), *zip(traits, Z.T)] if not np.isfinite(v).any()]
    if empty:
        raise ValueError(f"column(s) {empty} have no value in any row (all missing)")
    notes: list[str] = []
    if bad.any():
        if missing == "raise":
            raise ValueError(f"missing values (count per column, after zeroing unreached episodes): {counts}")
        msg = f"dropped {int(bad.sum())} of {len(bad)} rows with missing values (missing per column: {counts})"
        notes.append(msg)
        warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())
    Wk, Z = Wk[~bad], Z[~bad]
    _check_traits(Z, traits, standardize)
    return comps, traits, Wk, Z, data.index[~bad], counts if bad.any() else {}, notes


def _component(series: pd.Series, name: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        return _binary_from_strings(series, name)
    return _as_numeric(series, name, "fitness component").copy()


def _episode_estimates(A: np.ndarray, Wk: np.ndarray, U: np.ndarray) -> dict[str, np.ndarray]:
    """Point estimates (one row of weights): cumulative S and beta, opportunity terms, within gradients."""
    n, K = A.shape
    R = np.column_stack([np.ones(n), A / A.mean(0)])                  # R_0..R_K
    Uc = U - U.mean(0)
    cumS = (R - 1.0).T @ Uc / (n - 1)                                  # (K+1, p)
    P = Uc.T @ Uc / (n - 1)
    cumB = np.linalg.solve(P, cumS.T).T
    T = (R ** 2).mean(0)                                               # T_0 = 1, ..., T_K
    m = A.mean(0)
    mprev = np.r_[1.0, m[:-1]]
    I_k = mprev * (A * Wk).mean(0) / m ** 2 - 1.0
    within = []
    for k in range(K):
        wt = R[:, k]
        w_k = np.where(wt > 0, Wk[:, k] * mprev[k] / m[k], 0.0)
        mu = wt @ U / wt.sum()
        Dc = U - mu
        Pk = (Dc * wt[:, None]).T @ Dc / wt.sum()
        Sk = (wt * (w_k - 1.0)) @ Dc / wt.sum()
        within.append(np.linalg.lstsq(Pk, Sk, rcond=None)[0] if np.linalg.matrix_rank(Pk) == Pk.shape[0]
                      else np.full(U.shape[1], np.nan))
    return {"S": np.diff(cumS, axis=0), "beta": np.diff(cumB, axis=0), "S_total": cumS[-1], "beta_total": cumB[-1],
            "I": I_k, "T": T, "within": np.array(within)}


def _result(point, comps, traits, n, standardize, opts, A, notes, dropped) -> EpisodeResult:
    cols = comps + ["total"]
    S = pd.DataFrame(np.column_stack([point["S"].T, point["S_total"]]), index=traits, columns=cols)
    B = pd.DataFrame(np.column_stack([point["beta"].T, point["beta_total"]]), index=traits, columns=cols)
    T, I_k = point["T"], point["I"]
    contrib = T[:-1] * I_k
    cov = np.diff(T) - contrib
    total = T[-1] - 1.0
    opp = pd.DataFrame({"I": np.r_[I_k, total], "weight": np.r_[T[:-1], np.nan],
                        "contribution": np.r_[contrib, contrib.sum()], "covariance": np.r_[cov, cov.sum()]},
                       index=cols)
    opp["share"] = (opp["contribution"] + opp["covariance"]) / total
    reached = pd.Series(np.r_[n, (A[:, :-1] > 0).sum(0)], index=comps, name="reached")
    within = pd.DataFrame(point["within"].T, index=traits, columns=comps)
    return EpisodeResult(components=comps, traits=traits, n=n, standardize=standardize, differentials=S,
                         gradients=B, opportunity=opp, gradients_within=within, reached=reached,
                         bootstrap=opts.bootstrap, level=opts.level, notes=notes, dropped=dropped)


class _EpisodeEngine(CaseResampling):
    """Bootstrap engine: cumulative gradients/differentials by :class:`MomentEngine` per ``A_k`` and
    the opportunity terms from weighted moments of ``A_k`` and ``A_k W_k``."""

    def __init__(self, A, Wk, Z, standardize):
        self.A, self.Wk = A, Wk
        self.engines = [MomentEngine(A[:, k], Z, np.zeros(len(A), int), standardize, quadratic=False)
                        for k in range(A.shape[1])]
        self.codes = np.zeros(len(A), int)

    def estimate(self, K):
        N = K.sum(1)
        outs = [e.estimate(K) for e in self.engines]
        p = outs[0]["beta"].shape[1]
        cumB = np.stack([np.zeros((len(K), p))] + [o["beta"] for o in outs], axis=1)
        cumS = np.stack([np.zeros((len(K), p))] + [o["S"] for o in outs], axis=1)
        m = (K @ self.A) / N[:, None]
        mprev = np.column_stack([np.ones(len(K)), m[:, :-1]])
        I_k = mprev * (K @ (self.A * self.Wk)) / N[:, None] / m ** 2 - 1.0
        T_K = (K @ self.A[:, -1] ** 2) / N / m[:, -1] ** 2
        return {"S": np.concatenate([np.diff(cumS, axis=1), cumS[:, -1:]], axis=1),
                "beta": np.concatenate([np.diff(cumB, axis=1), cumB[:, -1:]], axis=1),
                "I": np.column_stack([I_k, T_K - 1.0])}


def _bootstrap(res: EpisodeResult, A, Wk, Z, standardize, opts: AnalysisOptions) -> None:
    eng = _EpisodeEngine(A, Wk, Z, standardize)
    boot = run_bootstrap(eng, opts.bootstrap, seed=opts.seed, progress=opts.progress)
    jack = run_jackknife(eng) if opts.ci_method == "bca" else None
    res.bootstrap_samples = boot
    cols = res.components + ["total"]
    point = {"S": res.differentials.to_numpy().T, "beta": res.gradients.to_numpy().T,
             "I": res.opportunity["I"].to_numpy()}
    for key in ("S", "beta", "I"):
        se = np.nanstd(boot[key], axis=0, ddof=1)
        if opts.ci_method == "bca":
            lo, hi = bca_interval(point[key], boot[key], jack[key], opts.level)
        else:
            lo, hi = percentile_interval(boot[key], opts.level)
        if key == "I":
            res.opportunity_se, res.opportunity_ci_low, res.opportunity_ci_high = (
                pd.Series(x, index=cols) for x in (se, lo, hi))
            continue
        frames = [pd.DataFrame(x.T, index=res.traits, columns=cols) for x in (se, lo, hi)]
        if key == "S":
            res.differentials_se, res.differentials_ci_low, res.differentials_ci_high = frames
        else:
            res.gradients_se, res.gradients_ci_low, res.gradients_ci_high = frames
    bad = int(np.sum(~np.isfinite(boot["beta"]).all(axis=(1, 2))))
    if bad:
        res.notes.append(f"{bad} of {opts.bootstrap} bootstrap replicates had no individual completing an episode "
                         f"and were left out")
