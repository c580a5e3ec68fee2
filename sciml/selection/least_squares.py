"""The classical Lande--Arnold analysis of one cross-section, step by step.

:func:`analyse` runs, in order: the designs (and whether gamma can be estimated), least-squares
gradients, differentials, GLM p-values and average gradients (binary/count fitness), bootstrap
intervals, permutation p-values, and the canonical analysis of gamma. Each step is a function
below that fills its part of the :class:`~sciml.selection.SelectionResult`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .average import GLMAverageEngine, average_gradients, delta_method_se
from .bootstrap import MomentEngine, bca_interval, percentile_interval, run_bootstrap, run_jackknife
from .canonical import canonical_analysis
from .fits import glm, ols
from .gradients import (PreparedData, SelectionWarning, check_design_rank, design, differentials,
                        gamma_from_quadratic, quadratic_terms, relative_fitness, standardize_traits, term_names,
                        vif)
from .options import AnalysisOptions
from .permutation import freedman_lane_pvalues, permutation_null, permutation_pvalue
from .results import SelectionResult
from .._warnings import user_stacklevel

GLM_LABEL = {"binomial": "logistic", "poisson": "Poisson", "negbin": "negative binomial"}


@dataclass
class Designs:
    """Standardised traits ``U``, relative fitness ``w`` and the linear/quadratic designs."""

    U: np.ndarray
    w: np.ndarray
    Xl: np.ndarray
    Xq: np.ndarray | None          # None when gamma is not estimated
    G: int
    codes: np.ndarray
    traits: list[str]

    @property
    def p(self) -> int:
        return self.U.shape[1]

    @property
    def Uc(self) -> np.ndarray:
        return self.U - self.U.mean(0)

    def mat(self, a: np.ndarray) -> pd.DataFrame:
        """A trait x trait DataFrame."""
        return pd.DataFrame(a, index=self.traits, columns=self.traits)


def analyse(prep: PreparedData, opts: AnalysisOptions) -> SelectionResult:
    """Lande--Arnold analysis of validated data (see :func:`~sciml.selection.lande_arnold`)."""
    notes = list(prep.notes)
    d = build_designs(prep, opts.quadratic, notes)
    v = vif(d.U, d.traits)
    _collinearity_note(v, opts.vif_threshold, notes)
    res = SelectionResult(traits=d.traits, fitness=prep.fitness, fitness_type=prep.fitness_type,
                          standardize=prep.standardize, n=prep.n, beta=None, differentials=None, vif=v,
                          bootstrap=opts.bootstrap, permutations=opts.permutations, dropped=prep.dropped,
                          notes=notes, level=opts.level)
    least_squares_gradients(res, d, opts)
    differentials_with_se(res, d, opts)
    if prep.fitness_type in ("binary", "count"):
        glm_inference(res, prep, d, opts)
    gamma_boot = bootstrap_inference(res, prep, d, opts) if opts.bootstrap else None
    gamma_null = permutation_inference(res, d, opts) if opts.permutations else None
    if d.Xq is not None:
        res.canonical = canonical_analysis(res.gamma.to_numpy(), d.traits, w=d.w, U=d.U, intercepts=d.Xl[:, :d.G],
                                           gamma_boot=gamma_boot, gamma_null=gamma_null, level=opts.level)
    res.ci_method = opts.ci_method if opts.bootstrap else "t"
    res.data = pd.DataFrame(d.U, columns=d.traits, index=prep.index).assign(w=d.w, W=prep.W)
    if d.G > 1:
        res.data[prep.group_col] = [prep.group_names[c] for c in d.codes]
    return res


def build_designs(prep: PreparedData, quadratic: bool | None, notes: list[str]) -> Designs:
    """Designs of the linear and quadratic models; decides whether gamma can be estimated.

    ``quadratic=None``: when the quadratic model has too many parameters or is rank deficient,
    warn (:class:`SelectionWarning`), record the reason in ``notes`` and go on with beta only.
    ``quadratic=True`` raises instead.
    """
    codes, G, traits = prep.group_codes, len(prep.group_names), prep.traits
    U = standardize_traits(prep.Z_raw, prep.standardize)
    w = relative_fitness(prep.W, codes)
    lin_names, quad_names = term_names(traits)
    gnames = [f"intercept[{g}]" for g in prep.group_names] if G > 1 else ["intercept"]
    Xl = design(U, codes, False, G)
    check_design_rank(Xl, gnames + lin_names, "linear")
    Xq = None
    if quadratic is not False:
        Xq = design(U, codes, True, G)
        try:
            check_design_rank(Xq, gnames + lin_names + quad_names, "quadratic")
        except ValueError as exc:
            if quadratic:
                raise
            reason = str(exc).split("; use fewer traits")[0]
            msg = (f"quadratic gradients (gamma) not estimated: {reason}; linear gradients (beta) are reported "
                   f"(pass quadratic=False to skip gamma silently)")
            notes.append(msg)
            warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())
            Xq = None
    return Designs(U=U, w=w, Xl=Xl, Xq=Xq, G=G, codes=codes, traits=traits)


def _collinearity_note(v: pd.Series, threshold: float, notes: list[str]) -> None:
    high = v[v > threshold]
    if len(high):
        msg = (f"strong collinearity among traits: variance inflation factors {high.round(1).to_dict()} "
               f"exceed {threshold}; gradients are imprecise")
        notes.append(msg)
        warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())


def least_squares_gradients(res: SelectionResult, d: Designs, opts: AnalysisOptions) -> None:
    """beta (linear OLS on relative fitness) and gamma (quadratic OLS, diagonal doubled)."""
    G, p = d.G, d.p
    fl = ols(d.Xl, d.w)
    res.models["linear"] = fl
    b, se = fl.params[G:G + p], fl.bse[G:G + p]
    tq = opts.t_quantile(fl.df_resid)
    res.beta = pd.DataFrame({"estimate": b, "se": se, "ci_low": b - tq * se, "ci_high": b + tq * se,
                             "p_value": fl.pvalues[G:G + p]}, index=d.traits)
    res.methods["beta"] = "OLS on relative fitness; CI t; p t-test"
    if d.Xq is None:
        return
    fq = ols(d.Xq, d.w)
    res.models["quadratic"] = fq
    g = gamma_from_quadratic(fq.params[G + p:], p)
    g_se = gamma_from_quadratic(fq.bse[G + p:], p)         # SEs doubled on the diagonal too
    g_p = gamma_from_quadratic(fq.pvalues[G + p:], p)
    g_p[np.diag_indices(p)] /= 2.0                          # p-values are not doubled
    tq = opts.t_quantile(fq.df_resid)
    res.gamma, res.gamma_se, res.gamma_p = d.mat(g), d.mat(g_se), d.mat(g_p)
    res.gamma_ci_low, res.gamma_ci_high = d.mat(g - tq * g_se), d.mat(g + tq * g_se)
    res.methods["gamma"] = "OLS quadratic, diagonal doubled; CI t; p t-test"


def differentials_with_se(res: SelectionResult, d: Designs, opts: AnalysisOptions) -> None:
    """S and C with the standard errors of the univariate regressions ``w ~ z_j`` (and ``w ~ z_i z_j``)."""
    w, Uc, p = d.w, d.Uc, d.p
    n = len(w)
    S, C = differentials(w, d.U)
    S_se, S_p = np.zeros(p), np.zeros(p)
    for j in range(p):
        f = ols(np.column_stack([np.ones(n), Uc[:, j]]), w)
        var = Uc[:, j] @ Uc[:, j] / (n - 1)
        S_se[j], S_p[j] = f.bse[1] * var, f.pvalues[1]
    tq = opts.t_quantile(n - 2)
    res.differentials = pd.DataFrame({"estimate": S, "se": S_se, "ci_low": S - tq * S_se, "ci_high": S + tq * S_se,
                                      "p_value": S_p}, index=d.traits)
    C_se, C_p = np.zeros((p, p)), np.zeros((p, p))
    for i, j in quadratic_terms(p):
        bc = Uc[:, i] * Uc[:, j]
        bc = bc - bc.mean()
        f = ols(np.column_stack([np.ones(n), bc]), w)
        C_se[i, j] = C_se[j, i] = f.bse[1] * (bc @ bc / (n - 1))
        C_p[i, j] = C_p[j, i] = f.pvalues[1]
    res.C, res.C_se, res.C_p = d.mat(C), d.mat(C_se), d.mat(C_p)
    res.C_ci_low, res.C_ci_high = d.mat(C - tq * C_se), d.mat(C + tq * C_se)
    res.methods["S"] = "cov(w, z); CI t; p t-test"
    res.methods["C"] = "cov(w, (z-zbar)^2); CI t; p t-test"


def glm_inference(res: SelectionResult, prep: PreparedData, d: Designs, opts: AnalysisOptions) -> None:
    """Binary/count fitness: p-values of beta, S and gamma from the GLM on the same design, and
    Janzen--Stern average gradients (delta-method SEs)."""
    G, p = d.G, d.p
    fam = "binomial" if prep.fitness_type == "binary" else "count"
    link = "logit" if fam == "binomial" else "log"
    gl = glm(d.Xl, prep.W, fam, what="linear model", count_model=opts.count_model)
    res.models["glm_linear"] = gl
    label = GLM_LABEL[gl.family]
    res.beta["p_value"] = gl.pvalues[G:G + p]
    res.methods["beta"] = f"OLS on relative fitness; CI t; p {label} Wald"
    intercepts = np.ones((prep.n, 1)) if G == 1 else d.Xl[:, :G]
    for j in range(p):
        gj = glm(np.column_stack([intercepts, d.Uc[:, j]]), prep.W, gl.family, what=f"univariate model of {d.traits[j]!r}")
        res.differentials.iat[j, res.differentials.columns.get_loc("p_value")] = gj.pvalues[-1]
    res.methods["S"] = f"cov(w, z); CI t; p univariate {label} Wald"

    def avg_b(th):
        return average_gradients(th, d.Xl, d.U, link, G, d.codes, False)[0]

    ab = avg_b(gl.params)
    ab_se = delta_method_se(avg_b, gl.params, gl.cov_params())
    z = opts.z_quantile()
    res.average_gradients = pd.DataFrame(
        {"estimate": ab, "se": ab_se, "ci_low": ab - z * ab_se, "ci_high": ab + z * ab_se,
         "p_value": 2 * stats.norm.sf(np.abs(ab / ab_se))}, index=d.traits)
    res.methods["beta_avg"] = f"Janzen-Stern average gradient of the {label} fit E[dW/dz]/E[W]; delta-method SE"
    if d.Xq is None:
        return
    gq = glm(d.Xq, prep.W, gl.family, what="quadratic model", count_model=opts.count_model)
    res.models["glm_quadratic"] = gq
    qp = gamma_from_quadratic(gq.pvalues[G + p:], p)
    qp[np.diag_indices(p)] /= 2.0
    res.gamma_p = d.mat(qp)
    res.methods["gamma"] = f"OLS quadratic, diagonal doubled; CI t; p {label} Wald"

    def avg_g(th):
        return average_gradients(th, d.Xq, d.U, link, G, d.codes, True)[1]

    res.average_gamma = d.mat(avg_g(gq.params))
    res.average_gamma_se = d.mat(delta_method_se(avg_g, gq.params, gq.cov_params()))
    with np.errstate(divide="ignore", invalid="ignore"):
        res.average_gamma_p = d.mat(2 * stats.norm.sf(np.abs(res.average_gamma.to_numpy()
                                                           / res.average_gamma_se.to_numpy())))
    res.methods["gamma_avg"] = f"average curvature of the {label} fit E[d2W/dzdz']/E[W]; delta-method SE"


def bootstrap_inference(res: SelectionResult, prep: PreparedData, d: Designs, opts: AnalysisOptions):
    """Stratified case bootstrap: SEs and BCa/percentile intervals of beta, S, gamma and C (and of the
    GLM average gradients); returns the gamma replicates (for the canonical analysis) or None."""
    B = opts.bootstrap
    quadratic = d.Xq is not None
    engine = MomentEngine(prep.W, prep.Z_raw, d.codes, prep.standardize, quadratic)
    boot = run_bootstrap(engine, B, seed=opts.seed, progress=opts.progress)
    bad = int(np.sum(~np.isfinite(boot["beta"]).all(axis=1)))
    if bad:
        res.notes.append(f"{bad} of {B} bootstrap replicates were degenerate (singular design or zero "
                         f"mean fitness in a group) and were left out of the intervals")
    jack = run_jackknife(engine) if opts.ci_method == "bca" else None
    res.bootstrap_samples = boot
    targets = {"beta": (res.beta, None), "S": (res.differentials, None)}
    if quadratic:
        targets.update(gamma=(None, "gamma"), C=(None, "C"))
    for key in targets:
        point = _point(res, key)
        se = np.nanstd(boot[key], axis=0, ddof=1)
        lo, hi = _interval(point, boot[key], None if jack is None else jack[key], opts)
        _set_uncertainty(res, d, key, se, lo, hi)
        res.methods[key] = res.methods[key].replace("CI t", f"SE and CI {opts.ci_label} (B={B})")
    gl = res.models.get("glm_linear")
    if gl is not None and gl.family in ("binomial", "poisson"):
        _bootstrap_average_gradients(res, prep, d, gl, opts)
    elif gl is not None:
        res.notes.append("average gradients of the negative binomial fit keep delta-method SEs "
                         "(the bootstrap covers logistic and Poisson fits)")
    return boot["gamma"] if quadratic else None


def _point(res: SelectionResult, key: str) -> np.ndarray:
    return {"beta": lambda: res.beta["estimate"].to_numpy(), "S": lambda: res.differentials["estimate"].to_numpy(),
            "gamma": lambda: res.gamma.to_numpy(), "C": lambda: res.C.to_numpy(),
            "beta_avg": lambda: res.average_gradients["estimate"].to_numpy(),
            "gamma_avg": lambda: res.average_gamma.to_numpy()}[key]()


def _interval(point, boot, jack, opts: AnalysisOptions):
    if opts.ci_method == "bca":
        return bca_interval(point, boot, jack, opts.level)
    return percentile_interval(boot, opts.level)


def _set_uncertainty(res: SelectionResult, d: Designs, key: str, se, lo, hi) -> None:
    if key in ("beta", "S", "beta_avg"):
        df = {"beta": res.beta, "S": res.differentials, "beta_avg": res.average_gradients}[key]
        df["se"], df["ci_low"], df["ci_high"] = se, lo, hi
    elif key == "gamma":
        res.gamma_se, res.gamma_ci_low, res.gamma_ci_high = d.mat(se), d.mat(lo), d.mat(hi)
    elif key == "C":
        res.C_se, res.C_ci_low, res.C_ci_high = d.mat(se), d.mat(lo), d.mat(hi)
    else:
        res.average_gamma_se, res.average_gamma_ci_low, res.average_gamma_ci_high = d.mat(se), d.mat(lo), d.mat(hi)


def _bootstrap_average_gradients(res: SelectionResult, prep: PreparedData, d: Designs, gl, opts: AnalysisOptions) -> None:
    """Bootstrap SEs/intervals of the GLM average gradients (same resamples as the OLS bootstrap)."""
    B = opts.bootstrap
    link = "logit" if gl.family == "binomial" else "log"
    jobs = [("beta_avg", GLMAverageEngine(prep.W, prep.Z_raw, d.codes, prep.standardize, link, False,
                                          start=gl.params))]
    if "glm_quadratic" in res.models:
        jobs.append(("gamma_avg", GLMAverageEngine(prep.W, prep.Z_raw, d.codes, prep.standardize, link,
                                                   True, start=res.models["glm_quadratic"].params)))
    for key, eng in jobs:
        boot = run_bootstrap(eng, B, seed=opts.seed, progress=opts.progress)[key]
        bad = int(np.sum(~np.isfinite(boot.reshape(B, -1)).all(axis=1)))
        if bad > 0.2 * B:
            res.notes.append(f"{key}: {bad} of {B} bootstrap GLM fits separated or did not converge; its bootstrap "
                             f"was abandoned and delta-method SEs kept (the GLM is too rich for these data)")
            continue
        se = np.nanstd(boot, axis=0, ddof=1)
        jack = run_jackknife(eng)[key] if opts.ci_method == "bca" else None
        lo, hi = _interval(_point(res, key), boot, jack, opts)
        _set_uncertainty(res, d, key, se, lo, hi)
        res.methods[key] = res.methods[key].replace(
            "delta-method SE", f"SE and CI {opts.ci_label} (B={B - bad}); p Wald (delta method)")
        if bad:
            res.notes.append(f"{key}: {bad} of {B} bootstrap GLM fits separated or did not converge and were "
                             f"left out of its intervals")


def permutation_inference(res: SelectionResult, d: Designs, opts: AnalysisOptions):
    """Freedman--Lane p-values of beta and gamma, permutation p-values of S and C; returns gamma under
    permuted fitness (global null, for the canonical eigenvalues) or None."""
    B, G, p, w, Uc = opts.permutations, d.G, d.p, d.w, d.Uc
    s = None if opts.seed is None else opts.seed + 1
    label = f"; p Freedman-Lane permutation (B={B})"
    res.beta["p_value"] = freedman_lane_pvalues(w, d.Xl, list(range(G, G + p)), B, d.codes, seed=s)
    res.methods["beta"] = res.methods["beta"].split("; p ")[0] + label
    Sn = permutation_null(w, lambda Y: Y @ Uc / (len(w) - 1), B, d.codes, seed=s)
    res.differentials["p_value"] = permutation_pvalue(res.differentials["estimate"].to_numpy(), Sn)
    res.methods["S"] = res.methods["S"].split("; p ")[0] + f"; p permutation (B={B})"
    if d.Xq is None:
        return None
    pq = freedman_lane_pvalues(w, d.Xq, list(range(G + p, d.Xq.shape[1])), B, d.codes, seed=s)
    gp = gamma_from_quadratic(pq, p)
    gp[np.diag_indices(p)] /= 2.0
    res.gamma_p = d.mat(gp)
    res.methods["gamma"] = res.methods["gamma"].split("; p ")[0] + label
    pairs = quadratic_terms(p)
    Bq = np.column_stack([Uc[:, i] * Uc[:, j] for i, j in pairs])
    Cn = permutation_null(w, lambda Y: (Y - Y.mean(1, keepdims=True)) @ Bq / (len(w) - 1), B, d.codes, seed=s)
    C = res.C.to_numpy()
    cp = gamma_from_quadratic(permutation_pvalue(np.array([C[i, j] for i, j in pairs]), Cn), p)
    res.C_p = d.mat(cp - np.diag(np.diag(cp)) / 2)
    res.methods["C"] = res.methods["C"].split("; p ")[0] + f"; p permutation (B={B})"
    XtXi_Xt = np.linalg.solve(d.Xq.T @ d.Xq, d.Xq.T)
    return permutation_null(w, lambda Y: gamma_from_quadratic((Y @ XtXi_Xt.T)[:, G + p:], p), B, d.codes, seed=s)
