"""Result object of a Lande--Arnold analysis (statsmodels-style: ``summary()`` and tidy ``table()``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .canonical import CanonicalResult
from .diagnostics import Diagnostics, check
from .vocabulary import TidyResultVocabulary

TABLE_COLUMNS = ["term", "type", "estimate", "se", "ci_low", "ci_high", "p_value", "method"]
VECTOR_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "p_value"]


def _upper_terms(traits: list[str]) -> list[tuple[int, int, str]]:
    p = len(traits)
    return [(i, j, f"{traits[i]}^2" if i == j else f"{traits[i]}:{traits[j]}") for i in range(p) for j in range(i, p)]


@dataclass
class SelectionResult(TidyResultVocabulary):
    """Estimates of a Lande--Arnold selection analysis.

    Attributes
    ----------
    beta, differentials : DataFrames indexed by trait with columns
        ``estimate, se, ci_low, ci_high, p_value`` (linear gradients; differentials ``S``).
    gamma, gamma_se, gamma_p, gamma_ci_low, gamma_ci_high : trait x trait DataFrames
        (diagonal = doubled quadratic coefficients, Stinchcombe et al. 2008).
    C, C_se, C_p : nonlinear selection differentials ``cov(w, (z-zbar)(z-zbar)^T)``.
    average_gradients, average_gamma, average_gamma_se : GLM-based average gradients
        (Janzen & Stern 1998) for binary/count fitness, else None.
    canonical : :class:`CanonicalResult` of gamma (None with ``quadratic=False``).
    vif : Series of variance inflation factors.
    variance_components, random_effects_test, blups : with ``random_effects=``: variances and
        covariances of the random coefficients (and the residual), likelihood-ratio tests of each
        grouping and of random slopes, and per-level conditional modes with the level-specific
        coefficients (``estimate`` = mean gradient + BLUP) and their prediction-error SDs.
    beta_naive, repeatability : with ``measurement_error=`` or ``individual=``: the uncorrected
        OLS gradients (attenuated) and, per trait, the measurement-error variance, latent variance,
        repeatability (with interval) and the reliability of the recorded values.
    imputations, missing_information : with ``missing="impute"``: the number of imputations and,
        per estimate, the fraction of missing information and the Barnard--Rubin df.
    groups : dict group -> SelectionResult (separate analysis per group) when ``groups=`` given.
    group_test : DataFrame testing equality of gradients between groups (or None).
    bootstrap_samples : dict of bootstrap replicate arrays (``beta`` (B, p), ``gamma`` (B, p, p),
        ``S``, ``C``) or None.
    data : DataFrame with the standardised traits and relative fitness ``w`` actually analysed.
    notes : list of policies applied (dropped rows, degenerate bootstrap replicates, ...).
    """

    traits: list[str]
    fitness: str
    fitness_type: str
    standardize: str | None
    n: int
    beta: pd.DataFrame
    differentials: pd.DataFrame
    gamma: pd.DataFrame | None = None
    gamma_se: pd.DataFrame | None = None
    gamma_p: pd.DataFrame | None = None
    gamma_ci_low: pd.DataFrame | None = None
    gamma_ci_high: pd.DataFrame | None = None
    C: pd.DataFrame | None = None
    C_se: pd.DataFrame | None = None
    C_p: pd.DataFrame | None = None
    C_ci_low: pd.DataFrame | None = None
    C_ci_high: pd.DataFrame | None = None
    average_gradients: pd.DataFrame | None = None
    average_gamma: pd.DataFrame | None = None
    average_gamma_se: pd.DataFrame | None = None
    average_gamma_p: pd.DataFrame | None = None
    average_gamma_ci_low: pd.DataFrame | None = None
    average_gamma_ci_high: pd.DataFrame | None = None
    canonical: CanonicalResult | None = None
    vif: pd.Series | None = None
    groups: dict[Any, "SelectionResult"] = field(default_factory=dict)
    group_col: str | None = None
    group_test: pd.DataFrame | None = None
    bootstrap: int = 0
    permutations: int = 0
    ci_method: str = "t"
    level: float = 0.95
    methods: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bootstrap_samples: dict[str, np.ndarray] | None = None
    data: pd.DataFrame | None = None
    models: dict[str, Any] = field(default_factory=dict, repr=False)
    random_effects: list[str] | None = None
    random_slopes: dict[str, list[str]] = field(default_factory=dict)
    variance_components: pd.DataFrame | None = None
    random_effects_test: pd.DataFrame | None = None
    blups: pd.DataFrame | None = None
    individual: str | None = None
    beta_naive: pd.DataFrame | None = None
    repeatability: pd.DataFrame | None = None
    imputations: int = 0
    missing_information: pd.DataFrame | None = None

    # ------------------------------------------------------------------ tables
    def table(self, groups: bool = False) -> pd.DataFrame:
        """One tidy DataFrame: ``term, type, estimate, se, ci_low, ci_high, p_value, method``.

        ``type`` is ``S``, ``beta``, ``C``, ``gamma``, ``beta_avg``, ``gamma_avg``, ``lambda``
        (canonical eigenvalue) or ``theta`` (canonical linear gradient). With ``groups=True``
        the per-group analyses are appended with a ``group`` column (pooled rows: ``"pooled"``).
        """
        rows = []
        for typ, df in (("S", self.differentials), ("beta", self.beta)):
            for t in df.index:
                rows.append([t, typ, *df.loc[t, VECTOR_COLUMNS].tolist(), self.methods.get(typ, "")])
        mats = [("C", self.C, self.C_se, self.C_ci_low, self.C_ci_high, self.C_p),
                ("gamma", self.gamma, self.gamma_se, self.gamma_ci_low, self.gamma_ci_high, self.gamma_p)]
        for typ, est, se, lo, hi, pv in mats:
            if est is None:
                continue
            for i, j, name in _upper_terms(self.traits):
                e = est.iat[i, j]
                s = se.iat[i, j] if se is not None else np.nan
                rows.append([name, typ, e, s,
                             lo.iat[i, j] if lo is not None else np.nan,
                             hi.iat[i, j] if hi is not None else np.nan,
                             pv.iat[i, j] if pv is not None else np.nan, self.methods.get(typ, "")])
        if self.average_gradients is not None:
            for t in self.average_gradients.index:
                rows.append([t, "beta_avg", *self.average_gradients.loc[t, VECTOR_COLUMNS].tolist(),
                             self.methods.get("beta_avg", "")])
        if self.average_gamma is not None:
            from scipy import stats
            for i, j, name in _upper_terms(self.traits):
                e = self.average_gamma.iat[i, j]
                s = self.average_gamma_se.iat[i, j]
                z = stats.norm.ppf(0.975)
                lo = self.average_gamma_ci_low.iat[i, j] if self.average_gamma_ci_low is not None else e - z * s
                hi = self.average_gamma_ci_high.iat[i, j] if self.average_gamma_ci_high is not None else e + z * s
                pv = (self.average_gamma_p.iat[i, j] if self.average_gamma_p is not None
                      else (2 * stats.norm.sf(abs(e / s)) if s > 0 else np.nan))
                rows.append([name, "gamma_avg", e, s, lo, hi, pv,
                             self.methods.get("gamma_avg", "")])
        if self.variance_components is not None:
            for _, r in self.variance_components.iterrows():
                rows.append([f"{r['group']}:{r['term']}", "vc", r["estimate"], r.get("se", np.nan),
                             r.get("ci_low", np.nan), r.get("ci_high", np.nan), np.nan,
                             self.methods.get("vc", "REML")])
        out = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        if self.canonical is not None:
            out = pd.concat([out, self.canonical.table()], ignore_index=True)
        if groups and self.groups:
            parts = [out.assign(group="pooled")]
            for g, r in self.groups.items():
                parts.append(r.table().assign(group=g))
            out = pd.concat(parts, ignore_index=True)
        return out

    def to_dict(self) -> dict:
        """JSON-able dictionary (tables as records, matrices as nested lists)."""
        d: dict[str, Any] = {
            "fitness": self.fitness, "fitness_type": self.fitness_type, "traits": self.traits,
            "standardize": self.standardize, "n": self.n, "bootstrap": self.bootstrap,
            "permutations": self.permutations, "dropped": self.dropped, "notes": self.notes,
            "table": self.table().replace({np.nan: None}).to_dict(orient="records"),
        }
        if self.gamma is not None:
            d["gamma"] = self.gamma.to_numpy().tolist()
        if self.vif is not None:
            d["vif"] = self.vif.to_dict()
        if self.group_test is not None:
            d["group_test"] = self.group_test.replace({np.nan: None}).to_dict(orient="records")
        if self.groups:
            d["groups"] = {str(g): r.to_dict() for g, r in self.groups.items()}
        for key in ("variance_components", "random_effects_test", "blups"):
            df = getattr(self, key)
            if df is not None:
                d[key] = df.replace({np.nan: None}).to_dict(orient="records")
        if self.missing_information is not None:
            d["imputations"] = self.imputations
            d["missing_information"] = self.missing_information.replace({np.nan: None}).to_dict(orient="records")
        for key in ("beta_naive", "repeatability"):
            df = getattr(self, key)
            if df is not None:
                d[key] = df.reset_index(names="trait").replace({np.nan: None}).to_dict(orient="records")
        if self.random_effects:
            d["random_effects"], d["random_slopes"] = self.random_effects, self.random_slopes
        return d

    # ------------------------------------------------------------------ statsmodels vocabulary
    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Intervals ``[lower, upper]`` aligned with :attr:`params`, at the analysis' ``level``.

        ``alpha`` may be given for symmetry with statsmodels but must equal ``1 - level`` (the
        bootstrap intervals are computed at that level): re-run with ``level=`` for another.
        """
        if alpha is not None and not np.isclose(alpha, 1 - self.level):
            raise ValueError(f"this analysis has {self.level:.0%} intervals (alpha={1 - self.level:g}); "
                             f"re-run lande_arnold(..., level={1 - alpha:g}) for alpha={alpha:g}")
        return self._indexed()[["ci_low", "ci_high"]].set_axis(["lower", "upper"], axis=1)

    def response(self, G: np.ndarray | pd.DataFrame) -> pd.Series:
        """Predicted response to selection ``G @ beta`` (G on the same scale as the traits)."""
        from .response import predicted_response

        return predicted_response(G, self.beta["estimate"])

    def check(self, **thresholds) -> Diagnostics:
        """Diagnostics with a referee's advice: collinearity (VIF, condition number), leverage and
        influential individuals, skewed traits, separation and events per parameter (binary fitness),
        over-dispersion (counts). Keyword thresholds as :func:`sciml.selection.diagnostics.check`."""
        return check(self, **thresholds)

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """Readable multi-line summary (like statsmodels' ``summary()``)."""
        std = {"sd": "SD-standardised", "mean": "mean-standardised", None: "original units (centred)"}[self.standardize]
        lines = [
            "Lande-Arnold selection analysis",
            "=" * 72,
            f"fitness: {self.fitness} ({self.fitness_type}); traits {std}; n = {self.n}"
            + (f"; random effects: {', '.join(self.random_effects)}" if self.random_effects else ""),
            f"bootstrap replicates: {self.bootstrap}; permutations: {self.permutations}",
        ]
        lines += [f"note: {n}" for n in self.notes]
        fmt = lambda df: df[VECTOR_COLUMNS].to_string(float_format=lambda v: f"{v: .4f}")  # noqa: E731
        lines += ["", f"Selection differentials S  [{self.methods.get('S', '')}]", fmt(self.differentials)]
        lines += ["", f"Linear selection gradients beta  [{self.methods.get('beta', '')}]", fmt(self.beta)]
        if self.gamma is not None:
            lines += ["", f"Quadratic selection gradients gamma (diagonal doubled)  [{self.methods.get('gamma', '')}]",
                      self.gamma.to_string(float_format=lambda v: f"{v: .4f}"),
                      "standard errors", self.gamma_se.to_string(float_format=lambda v: f"{v: .4f}"),
                      "p-values", self.gamma_p.to_string(float_format=lambda v: f"{v: .4f}")]
        if self.average_gradients is not None:
            lines += ["", f"Average gradients from the GLM fitness function  [{self.methods.get('beta_avg', '')}]",
                      fmt(self.average_gradients)]
        if self.canonical is not None:
            lines += ["", "Canonical analysis of gamma",
                      self.canonical.eigenvalues[VECTOR_COLUMNS].to_string(float_format=lambda v: f"{v: .4f}"),
                      "eigenvectors M", self.canonical.M.to_string(float_format=lambda v: f"{v: .3f}")]
        if self.vif is not None:
            lines += ["", "Variance inflation factors", self.vif.to_string(float_format=lambda v: f"{v: .2f}")]
        if self.variance_components is not None:
            lines += ["", f"Variance components (relative fitness scale) [{self.methods.get('vc', 'REML')}]",
                      self.variance_components.drop(columns=[c for c in ("kind",) if c in self.variance_components])
                      .to_string(float_format=lambda v: f"{v: .4g}", index=False)]
        if self.random_effects_test is not None and len(self.random_effects_test):
            lines += ["", "Random-effect tests", self.random_effects_test[["group", "test", "statistic", "df", "p_value"]]
                      .to_string(float_format=lambda v: f"{v: .4g}", index=False)]
        if self.blups is not None and self.random_slopes:
            sl = self.blups[self.blups["coef"] != "intercept"]
            lines += ["", "Per-level gradients (mean gradient + BLUP; prediction-error SD)",
                      sl.pivot(index="level", columns="coef", values="estimate")
                      .to_string(float_format=lambda v: f"{v: .4f}")]
        if self.beta_naive is not None:
            lines += ["", f"Naive gradients ignoring measurement error (attenuated)  [{self.methods.get('beta_naive', '')}]",
                      fmt(self.beta_naive)]
        if self.repeatability is not None:
            lines += ["", "Measurement error and repeatability",
                      self.repeatability.to_string(float_format=lambda v: f"{v: .4g}")]
        if self.group_test is not None:
            lines += ["", f"Do gradients differ between groups of {self.group_col!r}?",
                      self.group_test.to_string(float_format=lambda v: f"{v: .4g}")]
        for g, r in self.groups.items():
            lines += ["", f"--- group {self.group_col} = {g} (n = {r.n}) ---", "beta", fmt(r.beta)]
            lines += [f"note: {n}" for n in r.notes]
            if r.gamma is not None:
                lines += ["gamma diagonal", r.gamma.to_numpy().diagonal().round(4).__repr__()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        b = ", ".join(f"{t}={v:.3g}" for t, v in self.beta["estimate"].items())
        return (f"<SelectionResult {self.fitness_type} fitness {self.fitness!r}, n={self.n}, "
                f"p={len(self.traits)} traits; beta: {b}>")

    def __str__(self) -> str:
        return self.summary()
