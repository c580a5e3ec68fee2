"""Diagnostics of a selection analysis, each with the advice a referee would give.

:func:`check` (``result.check()``) looks at the analysed data (standardised traits, relative
fitness) and the fits:

* **collinearity** -- variance inflation factors and the condition number of the standardised
  design (Belsley et al. 1980: > 30 is serious);
* **leverage and influence** -- hat values above ``3 q / n``, Cook's distances above ``4 / n``
  and |DFBETAS| above ``2 / sqrt(n)`` for the gradients of the linear model (statsmodels
  ``OLSInfluence``), with the individuals concerned. Some individuals exceed these size-adjusted
  cut-offs in any sample, so a check is flagged only when an individual is extreme on an absolute
  scale (hat value > 0.5, Cook's distance > 1, |DFBETAS| > 1) or the share of individuals beyond
  the cut-off is unusual (> 2.5 % for leverage, > 10 % otherwise);
* **skewed traits** -- sample skewness and D'Agostino's test;
* **binary fitness** -- separation in the logistic fit and the number of events (the rarer
  outcome) per parameter of the linear and quadratic models;
* **count fitness** -- over-dispersion of the Poisson fit.

For mixed-model and measurement-error analyses the influence measures are those of the
ordinary least-squares fit of the same design (a screening device).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .gradients import design


@dataclass
class Diagnostics:
    """``table``: one row per check (``check, subject, value, threshold, flagged, advice``);
    ``influence``: per-individual leverage, Cook's distance and DFBETAS of the gradients."""

    table: pd.DataFrame
    influence: pd.DataFrame

    @property
    def flagged(self) -> pd.DataFrame:
        return self.table[self.table["flagged"]]

    def __str__(self) -> str:
        lines = ["Diagnostics of the selection analysis", "=" * 72]
        if not len(self.flagged):
            lines.append("no check flagged a problem")
        for _, r in self.table.iterrows():
            mark = "!!" if r["flagged"] else "ok"
            lines.append(f"[{mark}] {r['check']} ({r['subject']}): {r['value']:.4g} (threshold {r['threshold']:.4g})")
            if r["flagged"]:
                lines.append(f"     -> {r['advice']}")
        return "\n".join(lines)

    __repr__ = __str__


def check(result, vif_threshold: float = 10.0, condition_threshold: float = 30.0, skew_alpha: float = 0.01,
          events_per_parameter: float = 10.0) -> Diagnostics:
    """Run every diagnostic on a :class:`~sciml.selection.SelectionResult` (see the module docstring).

    Example
    -------
    >>> diag = lande_arnold(df, "W", ["a", "b"]).check()     # doctest: +SKIP
    >>> print(diag); diag.flagged; diag.influence.head()     # doctest: +SKIP
    """
    if result.data is None:
        raise ValueError("the result has no analysed data attached (result.data is None)")
    d = result.data
    U = d[result.traits].to_numpy(float)
    w = d["w"].to_numpy(float)
    rows = _collinearity(result, U, vif_threshold, condition_threshold)
    infl, irows = _influence(result, U, w)
    rows += irows + _skewness(result, U, skew_alpha)
    if result.fitness_type == "binary":
        rows += _binary(result, d["W"].to_numpy(float), events_per_parameter)
    if result.fitness_type == "count":
        rows += _overdispersion(result)
    table = pd.DataFrame(rows, columns=["check", "subject", "value", "threshold", "flagged", "advice"])
    return Diagnostics(table=table, influence=infl)


def _collinearity(result, U, vif_threshold, condition_threshold) -> list[list]:
    rows = []
    R = np.corrcoef(U, rowvar=False) if U.shape[1] > 1 else np.ones((1, 1))
    vif = np.diag(np.linalg.inv(R)) if U.shape[1] > 1 else np.ones(1)
    for t, v in zip(result.traits, vif):
        rows.append(["variance inflation factor", t, float(v), vif_threshold, bool(v > vif_threshold),
                     f"the sampling variance of the gradient of {t!r} is inflated {v:.1f}-fold by its correlation with "
                     f"other traits: report the trait correlations, interpret the gradients of correlated traits "
                     f"jointly, or replace them by a composite (e.g. principal component) or drop a redundant one"])
    for label, quad in (("linear", False), ("quadratic", True)):
        if quad and result.gamma is None:
            continue
        X = design(U, quadratic=quad)
        Xs = X / np.linalg.norm(X, axis=0)
        s = np.linalg.svd(Xs, compute_uv=False)
        kappa = float(s[0] / s[-1])
        rows.append(["condition number", f"{label} design", kappa, condition_threshold, kappa > condition_threshold,
                     f"the {label} design is ill-conditioned (Belsley's condition number {kappa:.0f}): small changes in "
                     f"the data move the estimates a lot; centre and standardise the traits (done here), drop or "
                     f"combine near-redundant traits" + (", or report beta only" if quad else "")])
    return rows


def _influence(result, U, w) -> tuple[pd.DataFrame, list[list]]:
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import OLSInfluence

    n = len(w)
    X = design(U)
    inf = OLSInfluence(sm.OLS(w, X).fit())
    q = X.shape[1]
    lev, cooks = inf.hat_matrix_diag, inf.cooks_distance[0]
    dfb = inf.dfbetas[:, 1:]
    idx = result.data.index
    table = pd.DataFrame({"leverage": lev, "cooks_distance": cooks}, index=idx)
    for j, t in enumerate(result.traits):
        table[f"dfbetas_{t}"] = dfb[:, j]
    table = table.sort_values("cooks_distance", ascending=False)
    rows = []
    hl = 3 * q / n
    high = table.index[table["leverage"] > hl]
    rows.append(["leverage", "individuals", float(table["leverage"].max()), hl,
                 bool(table["leverage"].max() > 0.5 or len(high) > 0.025 * n),
                 f"{len(high)} individuals have hat values above 3q/n = {hl:.3f} (e.g. {_few(high)}): extreme phenotypes "
                 f"carry the gradients; check them for recording errors and report the analysis with and without them"])
    cl = 4 / n
    top = table.index[table["cooks_distance"] > cl]
    serious = table.index[table["cooks_distance"] > 1]
    rows.append(["Cook's distance", "individuals", float(table["cooks_distance"].max()), cl, bool(len(serious))
                 or len(top) > 0.1 * n,
                 f"{len(top)} individuals exceed 4/n = {cl:.3g} (largest {table['cooks_distance'].max():.3g}: "
                 f"{_few(table.index[:3])}); refit without the most influential ones and report whether the "
                 f"conclusions change; consider bootstrap intervals"])
    bl = 2 / np.sqrt(n)
    for j, t in enumerate(result.traits):
        col = table[f"dfbetas_{t}"].abs()
        big = col.index[col > bl]
        rows.append(["DFBETAS", t, float(col.max()), bl, bool(col.max() > 1 or len(big) > 0.10 * n),
                     f"the gradient of {t!r} moves by more than 2/sqrt(n) standard errors when any of {len(big)} "
                     f"individuals is removed (largest |DFBETAS| {col.max():.2f} for {_few(col.sort_values().index[-1:])}): "
                     f"its estimate rests on few individuals"])
    return table, rows


def _few(labels) -> str:
    labels = list(labels)
    return ", ".join(repr(x) for x in labels[:5]) + (", ..." if len(labels) > 5 else "")


def _skewness(result, U, alpha) -> list[list]:
    rows = []
    for j, t in enumerate(result.traits):
        z = U[:, j]
        g1 = float(stats.skew(z, bias=False))
        p = float(stats.skewtest(z).pvalue) if len(z) >= 8 else np.nan
        rows.append(["skewness", t, g1, 1.0, bool(abs(g1) > 1 and p < alpha),
                     f"{t!r} is skewed (skewness {g1:.2f}, D'Agostino p = {p:.2g}): quadratic gradients are driven by "
                     f"the long tail and gradients are not comparable with those of symmetric traits; for a ratio-scale "
                     f"trait analyse its logarithm (or cube root of a mass), and check the fitness function visually"])
    return rows


def _binary(result, W, epp) -> list[list]:
    rows = []
    gl = result.models.get("glm_linear")
    sep = bool(gl is not None and gl.separation) or bool(getattr(result.models.get("glm_quadratic"), "separation", False))
    rows.append(["separation", "logistic fit", float(sep), 0.0, sep,
                 "survival is (quasi-)completely separated by the traits: logistic coefficients and their p-values are "
                 "unreliable; rely on the least-squares gradients with bootstrap or permutation inference, use "
                 "Firth's penalised logistic regression, or drop terms (often the quadratic ones)"])
    events = float(min(W.sum(), len(W) - W.sum()))
    p = len(result.traits)
    for label, k in (("linear", p), ("quadratic", p + p * (p + 1) // 2)):
        if label == "quadratic" and result.gamma is None:
            continue
        r = events / k
        rows.append(["events per parameter", f"{label} model", r, epp, r < epp,
                     f"only {events:.0f} individuals have the rarer outcome for {k} {label} terms ({r:.1f} per term): "
                     f"estimates are unstable and p-values optimistic; use fewer traits"
                     + (" or report beta only" if label == "quadratic" else "")])
    return rows


def _overdispersion(result) -> list[list]:
    gl = result.models.get("glm_linear")
    if gl is None:
        return []
    disp = gl.dispersion if gl.family == "poisson" else np.nan
    if gl.family == "negbin":
        return [["over-dispersion", "count fit", float(gl.dispersion), 0.0, False,
                 "counts are over-dispersed; the negative binomial fit (used here) accounts for it"]]
    return [["over-dispersion", "Poisson fit", float(disp), 1.5, bool(disp > 1.5),
             f"Pearson dispersion {disp:.2f}: Poisson p-values are too small; use count_model='negbin' or the bootstrap"]]
