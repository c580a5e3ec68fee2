"""Lande--Arnold analysis with random effects (years, sites, broods; fluctuating selection).

Model: relative fitness ``w = W / mean(W)`` (over all individuals; differences in mean fitness
between years or sites are taken up by the random intercepts) is the response of linear mixed
models fitted by REML (:mod:`~sciml.selection.reml`):

* ``beta``: ``w ~ z + (1 + slopes | g1) + (1 | g1:g2) + ...`` -- with random slopes the fixed
  slopes are the mean gradients over levels, and the per-level gradients (BLUPs, ``blups``) show
  how selection fluctuates;
* ``gamma``: the same with all quadratic terms ``z_i z_j`` fixed (diagonal doubled, with its SE);
* binary/count fitness: the gradients stay on relative fitness (Lande & Arnold's scale), their
  p-values come from the logistic/Poisson GLMM with the same random effects
  (:mod:`~sciml.selection.glmm`), as the GLM p-values do in a cross-sectional analysis;
* variance components with a likelihood-ratio test per grouping (REML; null distribution the
  50:50 mixture of chi-square(k - 1) and chi-square(k) for k covariance parameters, exact for a
  single variance, Stram & Lee 1994), and a test of the random slopes ("does selection
  fluctuate?") the same way;
* ``bootstrap=B``: cluster bootstrap over levels of the outermost grouping
  (:mod:`~sciml.selection.mixed_bootstrap`), BCa with the leave-one-level-out jackknife.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .bootstrap import run_bootstrap, run_jackknife
from .canonical import canonical_analysis
from .glmm import fit_glmm
from .gradients import PreparedData, SelectionWarning, gamma_from_quadratic, term_names, vif
from .least_squares import (Designs, _collinearity_note, _interval, build_designs, differentials_with_se)
from .mixed_bootstrap import MixedEngine
from .options import AnalysisOptions
from .random_effects import RandomEffects, build_random_effects, check_groupings
from .fits import ols
from .reml import cluster_moments, fit_reml, mixed_fit
from .results import SelectionResult
from .._warnings import user_stacklevel


def analyse_mixed(prep: PreparedData, opts: AnalysisOptions, groupings: Sequence[str],
                  slopes: Mapping[str, Sequence[str]]) -> SelectionResult:
    """Mixed-model selection analysis of validated data (``prep.extra`` holds the grouping columns)."""
    if opts.permutations:
        raise ValueError("permutations are not available with random_effects (residuals are not exchangeable "
                         "across levels); use bootstrap= for cluster-bootstrap intervals")
    notes = list(prep.notes)
    check_groupings(prep.extra, groupings)
    d = build_designs(prep, opts.quadratic, notes)
    v = vif(d.U, d.traits)
    _collinearity_note(v, opts.vif_threshold, notes)
    re = build_random_effects(prep.extra, groupings, slopes, d.U, d.traits)
    res = SelectionResult(traits=d.traits, fitness=prep.fitness, fitness_type=prep.fitness_type,
                          standardize=prep.standardize, n=prep.n, beta=None, differentials=None, vif=v,
                          bootstrap=opts.bootstrap, permutations=0, dropped=prep.dropped, notes=notes,
                          level=opts.level, random_effects=list(groupings),
                          random_slopes={g: list(t) for g, t in slopes.items()})
    lin, quad = mixed_gradients(res, d, re, opts)
    differentials_with_se(res, d, opts)
    res.variance_components = lin.variance_components()
    res.methods["vc"] = "REML (linear model)" + ("" if opts.bootstrap else "; no SE without bootstrap= (see random_effects_test)")
    res.random_effects_test = random_effects_tests(lin, d, prep.extra, groupings, slopes)
    res.blups = lin.blups()
    if prep.fitness_type in ("binary", "count"):
        glmm_pvalues(res, prep, d, re)
    gamma_boot = mixed_bootstrap(res, prep, d, re, lin, quad, opts) if opts.bootstrap else None
    if d.Xq is not None:
        res.canonical = canonical_analysis(res.gamma.to_numpy(), d.traits, gamma_boot=gamma_boot, level=opts.level)
    res.ci_method = opts.ci_method if opts.bootstrap else "normal"
    res.data = pd.DataFrame(d.U, columns=d.traits, index=prep.index).assign(w=d.w, W=prep.W)
    for g in groupings:
        res.data[g] = prep.extra[g].to_numpy()
    return res


def mixed_gradients(res: SelectionResult, d: Designs, re: RandomEffects, opts: AnalysisOptions):
    """beta and gamma from REML fits of the linear and quadratic mixed models."""
    lin_names, quad_names = term_names(d.traits)
    p, z = d.p, opts.z_quantile()
    lin = mixed_fit(d.Xl, d.w, re, ["intercept"] + lin_names)
    res.models["lmm_linear"] = lin
    b, se = lin.params[1:], lin.bse[1:]
    res.beta = pd.DataFrame({"estimate": b, "se": se, "ci_low": b - z * se, "ci_high": b + z * se,
                             "p_value": lin.pvalues[1:]}, index=d.traits)
    label = _model_label(re)
    res.methods["beta"] = f"REML linear mixed model of relative fitness {label}; CI normal; p Wald z"
    quad = None
    if d.Xq is not None:
        quad = mixed_fit(d.Xq, d.w, re, ["intercept"] + lin_names + quad_names, theta0=lin.theta)
        res.models["lmm_quadratic"] = quad
        g = gamma_from_quadratic(quad.params[1 + p:], p)
        g_se = gamma_from_quadratic(quad.bse[1 + p:], p)
        g_p = gamma_from_quadratic(quad.pvalues[1 + p:], p)
        g_p[np.diag_indices(p)] /= 2.0
        res.gamma, res.gamma_se, res.gamma_p = d.mat(g), d.mat(g_se), d.mat(g_p)
        res.gamma_ci_low, res.gamma_ci_high = d.mat(g - z * g_se), d.mat(g + z * g_se)
        res.methods["gamma"] = f"REML quadratic mixed model {label}, diagonal doubled; CI normal; p Wald z"
    return lin, quad


def _model_label(re: RandomEffects) -> str:
    parts = []
    for k, t in enumerate(re.terms):
        name = ":".join(tt.grouping for tt in re.terms[:k + 1])
        parts.append(f"(1 + {' + '.join(t.coefs[1:])} | {name})" if t.d > 1 else f"(1 | {name})")
    return " + ".join(parts)


def random_effects_tests(lin, d: Designs, frame: pd.DataFrame, groupings: Sequence[str],
                         slopes: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """REML likelihood-ratio tests: each grouping dropped, and its random slopes dropped (intercept kept)."""
    rows = []
    for k, g in enumerate(groupings):
        rest = [h for h in groupings if h != g]
        reduced = build_random_effects(frame, rest, {h: t for h, t in slopes.items() if h != g}, d.U, d.traits) \
            if rest else None
        n_theta = lin.re.terms[k].n_theta
        rows.append(_lrt(lin, d.Xl, d.w, reduced, g, "variance among levels", n_theta))
        if slopes.get(g):
            reduced = build_random_effects(frame, groupings, {h: t for h, t in slopes.items() if h != g}, d.U, d.traits)
            rows.append(_lrt(lin, d.Xl, d.w, reduced, g, f"random slopes of {', '.join(slopes[g])} "
                                                         f"(does selection fluctuate?)", n_theta - 1))
    return pd.DataFrame(rows)


def _lrt(full, X, y, reduced: RandomEffects | None, group: str, what: str, k: int) -> dict:
    if reduced is None:
        n, p = X.shape
        f0 = ols(X, y)
        dev0 = (2 * np.log(np.abs(np.diag(np.linalg.qr(X)[1]))).sum()
                + (n - p) * (1 + np.log(2 * np.pi * f0.ssr / (n - p))))
    else:
        dev0 = fit_reml(cluster_moments(X, y, reduced), reduced).deviance
    stat = max(dev0 + 2 * full.llf, 0.0)
    p = 0.5 * stats.chi2.sf(stat, k) + (0.5 * stats.chi2.sf(stat, k - 1) if k > 1 else (0.5 if stat == 0 else 0.0))
    return {"group": group, "test": what, "statistic": stat, "df": k, "p_value": min(p, 1.0),
            "method": f"REML likelihood ratio; 50:50 mixture of chi2({k - 1}) and chi2({k})"}


def glmm_pvalues(res: SelectionResult, prep: PreparedData, d: Designs, re: RandomEffects) -> None:
    """p-values of beta (and gamma) from the logistic / Poisson GLMM with the same random effects."""
    family = "binomial" if prep.fitness_type == "binary" else "poisson"
    scalar = len(re.terms) == 1 and re.terms[0].d == 1
    nagq = 10 if scalar else 1
    how = f"adaptive Gauss-Hermite quadrature ({nagq} nodes)" if nagq > 1 else "Laplace approximation"
    label = {"binomial": "logistic", "poisson": "Poisson"}[family]
    lin_names, quad_names = term_names(d.traits)
    p = d.p
    gl = fit_glmm(d.Xl, prep.W, re, family, ["intercept"] + lin_names, nAGQ=nagq)
    res.models["glmm_linear"] = gl
    res.beta["p_value"] = gl.pvalues[1:]
    res.methods["beta"] = res.methods["beta"].split("; p ")[0] + f"; p Wald z of the {label} GLMM ({how})"
    if family == "poisson":
        _overdispersion_note(res, gl, d.Xl, prep.W)
    if not gl.converged:
        _warn(res, f"the {label} GLMM for the p-values of beta did not converge; treat them with caution")
    if d.Xq is None:
        return
    gq = fit_glmm(d.Xq, prep.W, re, family, ["intercept"] + lin_names + quad_names, nAGQ=nagq,
                  start=np.concatenate([gl.params, np.zeros(d.Xq.shape[1] - d.Xl.shape[1]), gl.theta]))
    res.models["glmm_quadratic"] = gq
    gp = gamma_from_quadratic(gq.pvalues[1 + p:], p)
    gp[np.diag_indices(p)] /= 2.0
    res.gamma_p = d.mat(gp)
    res.methods["gamma"] = res.methods["gamma"].split("; p ")[0] + f"; p Wald z of the {label} GLMM ({how})"


def _overdispersion_note(res: SelectionResult, gl, X, y) -> None:
    """Pearson dispersion of the Poisson GLMM at the conditional modes: > 1.5 means its p-values are too small."""
    from .glmm import GLMMProblem

    prob = GLMMProblem(X, y, gl.re, "poisson")
    u, H, obj, eta, v, ZL = prob.modes(np.concatenate([gl.params, gl.theta])[None])
    mu = np.exp(eta[0])
    disp = float(np.sum((y - mu) ** 2 / mu) / max(len(y) - len(gl.params) - len(gl.theta), 1))
    gl.dispersion = disp
    if disp > 1.5:
        _warn(res, f"the counts are over-dispersed relative to the Poisson GLMM (Pearson dispersion {disp:.2f}): "
                   f"its p-values are too small; use bootstrap= (cluster bootstrap) for inference")


def _warn(res: SelectionResult, msg: str) -> None:
    res.notes.append(msg)
    warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())


def mixed_bootstrap(res: SelectionResult, prep: PreparedData, d: Designs, re: RandomEffects, lin, quad,
                    opts: AnalysisOptions):
    """Cluster bootstrap of beta, gamma, S, C and the variance components; returns gamma replicates."""
    B = opts.bootstrap
    engine = MixedEngine(prep.W, prep.Z_raw, prep.standardize, re, d.Xq is not None, lin.theta,
                         None if quad is None else quad.theta)
    boot = run_bootstrap(engine, B, seed=opts.seed, progress=opts.progress)
    jack = run_jackknife(engine) if opts.ci_method == "bca" else None
    res.bootstrap_samples = boot
    bad = int(np.sum(~np.isfinite(boot["beta"]).all(axis=1)))
    if bad:
        res.notes.append(f"{bad} of {B} cluster-bootstrap replicates failed (singular fit) and were left out")
    top = re.terms[0].grouping
    label = f"SE and CI cluster {opts.ci_label} over levels of {top!r} (B={B})"
    for key, point in (("beta", res.beta["estimate"].to_numpy()), ("S", res.differentials["estimate"].to_numpy()),
                       ("gamma", None if res.gamma is None else res.gamma.to_numpy()),
                       ("C", res.C.to_numpy()), ("vc", res.variance_components["estimate"].to_numpy())):
        if point is None or key not in boot:
            continue
        se = np.nanstd(boot[key], axis=0, ddof=1)
        lo, hi = _interval(point, boot[key], None if jack is None else jack[key], opts)
        if key == "vc":
            vc = res.variance_components
            vc["se"], vc["ci_low"], vc["ci_high"] = se, lo, hi
            res.methods["vc"] = f"REML (linear model); {label}"
            continue
        if key in ("beta", "S"):
            df = res.beta if key == "beta" else res.differentials
            df["se"], df["ci_low"], df["ci_high"] = se, lo, hi
        elif key == "gamma":
            res.gamma_se, res.gamma_ci_low, res.gamma_ci_high = d.mat(se), d.mat(lo), d.mat(hi)
        else:
            res.C_se, res.C_ci_low, res.C_ci_high = d.mat(se), d.mat(lo), d.mat(hi)
        res.methods[key] = res.methods[key].replace("CI normal", label).replace("CI t", label)
    return boot["gamma"] if quad is not None else None

