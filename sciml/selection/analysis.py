"""The Lande--Arnold analysis: :func:`lande_arnold`."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .canonical import canonical_analysis
from .gradients import (PreparedData, SelectionWarning, check_design_rank, design, differentials,
                        gamma_from_quadratic, prepare_data, quadratic_terms, relative_fitness,
                        standardize_traits, term_names, vif)
from .average import GLMAverageEngine, average_gradients, delta_method_se
from .bootstrap import MomentEngine, bca_interval, percentile_interval, run_bootstrap, run_jackknife
from .fits import glm, ols
from .group_test import group_test
from .permutation import freedman_lane_pvalues, permutation_null, permutation_pvalue
from .results import SelectionResult


def lande_arnold(
    data: pd.DataFrame,
    fitness: str,
    traits: Sequence[str],
    fitness_type: str = "continuous",
    standardize: str | None = "sd",
    bootstrap: int = 0,
    permutations: int = 0,
    groups: str | None = None,
    seed: int | None = None,
    *,
    quadratic: bool = True,
    ci_method: str = "bca",
    level: float = 0.95,
    missing: str = "drop",
    count_model: str = "auto",
    vif_threshold: float = 10.0,
    compare_groups: bool = True,
    progress: bool = True,
) -> SelectionResult:
    """Lande & Arnold (1983) selection analysis of a pandas DataFrame.

    Conventions
    -----------
    * Relative fitness ``w = W / mean(W)``, computed within each group when ``groups`` is given.
    * Traits are centred; ``standardize="sd"`` divides by the sample SD (``n - 1``, as R's
      ``scale()``), ``"mean"`` by the trait mean (mean-standardised gradients, Hereford et al.
      2004), ``None`` keeps the original units.
    * ``differentials``: ``S = cov(w, z)``; ``C = cov(w, (z - zbar)(z - zbar)^T)`` (``ddof=1``).
    * ``beta``: coefficients of ``w ~ z`` (OLS). ``gamma``: quadratic model
      ``w ~ z + z_i z_j (i <= j)``; diagonal coefficients *and their SEs* are doubled
      (Stinchcombe et al. 2008), cross-product coefficients are not.
    * ``fitness_type="binary"`` (0/1; booleans and yes/no strings accepted): gradients by OLS on
      relative fitness, p-values from the logistic regression on the same design, and
      Janzen & Stern (1998) average gradients from the logistic fit (delta-method SEs).
      ``"count"`` (non-negative integers): p-values from a Poisson GLM, or a negative binomial
      when over-dispersed (``count_model="auto"``).
    * ``bootstrap=B``: stratified (within-group) case bootstrap; SEs are bootstrap SDs and
      intervals BCa (``ci_method="bca"``) or percentile. Without it: t-based intervals.
    * ``permutations=B``: p-values of beta and gamma by Freedman--Lane residual permutation,
      of S and C by permuting fitness (within groups); canonical eigenvalues by permutation.
    * ``groups="col"``: pooled analysis with group intercepts, one separate analysis per group
      (``result.groups``; traits standardised within the group) and a test of equal gradients
      (``result.group_test``: F-test, or likelihood ratio for binary/count fitness, plus a
      permutation test of group labels when ``permutations > 0``).

    Policies: rows with missing values are dropped and counted (``missing="raise"`` to refuse);
    constant or perfectly collinear traits, too many parameters for the sample size, negative or
    all-zero fitness, non-numeric columns and groups too small for the model raise ``ValueError``
    or ``TypeError`` naming the input; VIFs above ``vif_threshold`` and logistic separation warn.

    Example
    -------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    >>> df["W"] = np.exp(0.3 * df.a - 0.2 * df.b ** 2) * rng.gamma(5, 0.2, 200)
    >>> res = lande_arnold(df, "W", ["a", "b"])
    >>> list(res.beta.columns)
    ['estimate', 'se', 'ci_low', 'ci_high', 'p_value']
    """
    if ci_method not in ("bca", "percentile"):
        raise ValueError(f"ci_method must be 'bca' or 'percentile', got {ci_method!r}")
    for name, val in (("bootstrap", bootstrap), ("permutations", permutations)):
        if not isinstance(val, (int, np.integer)) or val < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {val!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    prep = prepare_data(data, fitness, traits, fitness_type, standardize, groups, missing)
    kw = dict(bootstrap=int(bootstrap), permutations=int(permutations), seed=seed, quadratic=quadratic,
              ci_method=ci_method, level=level, count_model=count_model, vif_threshold=vif_threshold,
              progress=progress)
    result = _analyse(prep, **kw)
    if groups is None:
        return result

    # separate analysis per group (standardised within the group)
    sub = data.loc[prep.index]
    gvals = sub[groups].astype(str).to_numpy() if sub[groups].dtype == object else sub[groups].to_numpy()
    for g, name in enumerate(prep.group_names):
        part = sub[gvals == name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SelectionWarning)
                gprep = prepare_data(part, fitness, prep.traits, fitness_type, standardize, None, "raise")
            result.groups[name] = _analyse(gprep, **kw)
        except ValueError as exc:
            raise ValueError(f"group {name!r} of {groups!r} (n = {len(part)}): {exc}") from exc
    if compare_groups and len(prep.group_names) > 1:
        result.group_test = group_test(prep, quadratic, permutations, seed)
    result.group_col = groups
    return result


def _analyse(prep: PreparedData, *, bootstrap: int, permutations: int, seed: int | None, quadratic: bool,
             ci_method: str, level: float, count_model: str, vif_threshold: float,
             progress: bool) -> SelectionResult:
    traits, p = prep.traits, prep.p
    codes = prep.group_codes
    G = len(prep.group_names)
    U = standardize_traits(prep.Z_raw, prep.standardize)
    w = relative_fitness(prep.W, codes)
    lin_names, quad_names = term_names(traits)
    gnames = [f"intercept[{g}]" for g in prep.group_names] if G > 1 else ["intercept"]
    Xl = design(U, codes, False, G)
    check_design_rank(Xl, gnames + lin_names, "linear")
    Xq = None
    if quadratic:
        Xq = design(U, codes, True, G)
        check_design_rank(Xq, gnames + lin_names + quad_names, "quadratic")
    notes = list(prep.notes)

    v = vif(U, traits)
    high = v[v > vif_threshold]
    if len(high):
        msg = (f"strong collinearity among traits: variance inflation factors {high.round(1).to_dict()} "
               f"exceed {vif_threshold}; gradients are imprecise")
        notes.append(msg)
        warnings.warn(msg, SelectionWarning, stacklevel=3)

    tq = lambda df: stats.t.ppf(0.5 + level / 2, df)  # noqa: E731
    fl = ols(Xl, w)
    b_est, b_se = fl.params[G:G + p], fl.bse[G:G + p]
    beta = pd.DataFrame({"estimate": b_est, "se": b_se, "ci_low": b_est - tq(fl.df_resid) * b_se,
                         "ci_high": b_est + tq(fl.df_resid) * b_se, "p_value": fl.pvalues[G:G + p]}, index=traits)
    methods = {"beta": "OLS on relative fitness; CI t; p t-test", "S": "cov(w, z); CI t; p t-test",
               "gamma": "OLS quadratic, diagonal doubled; CI t; p t-test", "C": "cov(w, (z-zbar)^2); CI t; p t-test"}

    # differentials with univariate-regression SEs
    S, C = differentials(w, U)
    Uc = U - U.mean(0)
    S_se, S_p, S_df = np.zeros(p), np.zeros(p), len(w) - 2
    for j in range(p):
        f = ols(np.column_stack([np.ones(len(w)), Uc[:, j]]), w)
        var = Uc[:, j] @ Uc[:, j] / (len(w) - 1)
        S_se[j], S_p[j] = f.bse[1] * var, f.pvalues[1]
    diffs = pd.DataFrame({"estimate": S, "se": S_se, "ci_low": S - tq(S_df) * S_se, "ci_high": S + tq(S_df) * S_se,
                          "p_value": S_p}, index=traits)
    C_se = np.zeros((p, p))
    C_p = np.zeros((p, p))
    for i, j in quadratic_terms(p):
        b = Uc[:, i] * Uc[:, j]
        bc = b - b.mean()
        f = ols(np.column_stack([np.ones(len(w)), bc]), w)
        var = bc @ bc / (len(w) - 1)
        C_se[i, j] = C_se[j, i] = f.bse[1] * var
        C_p[i, j] = C_p[j, i] = f.pvalues[1]

    res = SelectionResult(traits=traits, fitness=prep.fitness, fitness_type=prep.fitness_type,
                          standardize=prep.standardize, n=prep.n, beta=beta, differentials=diffs,
                          vif=v, bootstrap=bootstrap, permutations=permutations, dropped=prep.dropped,
                          notes=notes, methods=methods)
    res.models["linear"] = fl
    mat = lambda a: pd.DataFrame(a, index=traits, columns=traits)  # noqa: E731
    res.C, res.C_se, res.C_p = mat(C), mat(C_se), mat(C_p)
    res.C_ci_low, res.C_ci_high = mat(C - tq(S_df) * C_se), mat(C + tq(S_df) * C_se)
    if quadratic:
        fq = ols(Xq, w)
        res.models["quadratic"] = fq
        g_est = gamma_from_quadratic(fq.params[G + p:], p)
        g_se = gamma_from_quadratic(fq.bse[G + p:], p)         # SEs doubled on the diagonal too
        g_p = gamma_from_quadratic(fq.pvalues[G + p:], p)
        g_p[np.diag_indices(p)] /= 2.0                         # p-values are not doubled
        res.gamma, res.gamma_se, res.gamma_p = mat(g_est), mat(g_se), mat(g_p)
        res.gamma_ci_low, res.gamma_ci_high = mat(g_est - tq(fq.df_resid) * g_se), mat(g_est + tq(fq.df_resid) * g_se)

    # GLM-based p-values and average gradients
    if prep.fitness_type in ("binary", "count"):
        fam = "binomial" if prep.fitness_type == "binary" else "count"
        link = "logit" if fam == "binomial" else "log"
        gl = glm(Xl, prep.W, fam, what="linear model", count_model=count_model)
        res.models["glm_linear"] = gl
        label = {"binomial": "logistic", "poisson": "Poisson", "negbin": "negative binomial"}[gl.family]
        beta["p_value"] = gl.pvalues[G:G + p]
        methods["beta"] = f"OLS on relative fitness; CI t; p {label} Wald"
        for j in range(p):
            gj = glm(np.column_stack([np.ones(prep.n) if G == 1 else Xl[:, :G], Uc[:, j]]), prep.W,
                     gl.family if gl.family != "poisson" else "poisson", what=f"univariate model of {traits[j]!r}")
            diffs.iat[j, diffs.columns.get_loc("p_value")] = gj.pvalues[-1]
        methods["S"] = f"cov(w, z); CI t; p univariate {label} Wald"

        def avg_b(th):
            return average_gradients(th, Xl, U, link, G, codes, False)[0]

        ab = avg_b(gl.params)
        ab_se = delta_method_se(avg_b, gl.params, gl.cov_params())
        z = stats.norm.ppf(0.5 + level / 2)
        res.average_gradients = pd.DataFrame(
            {"estimate": ab, "se": ab_se, "ci_low": ab - z * ab_se, "ci_high": ab + z * ab_se,
             "p_value": 2 * stats.norm.sf(np.abs(ab / ab_se))}, index=traits)
        methods["beta_avg"] = (f"Janzen-Stern average gradient of the {label} fit "
                               f"E[dW/dz]/E[W]; delta-method SE")
        if quadratic:
            gq = glm(Xq, prep.W, gl.family if gl.family != "poisson" else "poisson", what="quadratic model",
                     count_model=count_model)
            res.models["glm_quadratic"] = gq
            qp = gamma_from_quadratic(gq.pvalues[G + p:], p)
            qp[np.diag_indices(p)] /= 2.0
            res.gamma_p = mat(qp)
            methods["gamma"] = f"OLS quadratic, diagonal doubled; CI t; p {label} Wald"

            def avg_g(th):
                return average_gradients(th, Xq, U, link, G, codes, True)[1]

            res.average_gamma = mat(avg_g(gq.params))
            res.average_gamma_se = mat(delta_method_se(avg_g, gq.params, gq.cov_params()))
            with np.errstate(divide="ignore", invalid="ignore"):
                res.average_gamma_p = mat(2 * stats.norm.sf(np.abs(res.average_gamma.to_numpy()
                                                                   / res.average_gamma_se.to_numpy())))
            methods["gamma_avg"] = f"average curvature of the {label} fit E[d2W/dzdz']/E[W]; delta-method SE"

    # bootstrap
    gamma_boot = None
    if bootstrap:
        engine = MomentEngine(prep.W, prep.Z_raw, codes, prep.standardize, quadratic)
        boot = run_bootstrap(engine, bootstrap, seed=seed, progress=progress)
        bad = int(np.sum(~np.isfinite(boot["beta"]).all(axis=1)))
        if bad:
            notes.append(f"{bad} of {bootstrap} bootstrap replicates were degenerate (singular design or zero "
                         f"mean fitness in a group) and were left out of the intervals")
        jack = run_jackknife(engine) if ci_method == "bca" else None
        res.bootstrap_samples = boot
        point = {"beta": b_est, "S": S}
        if quadratic:
            point.update(gamma=res.gamma.to_numpy(), C=C)
        ci_label = f"bootstrap {'BCa' if ci_method == 'bca' else 'percentile'} (B={bootstrap})"
        for key in point:
            bs = boot[key]
            se = np.nanstd(bs, axis=0, ddof=1)
            if ci_method == "bca":
                lo, hi = bca_interval(point[key], bs, jack[key], level)
            else:
                lo, hi = percentile_interval(bs, level)
            if key == "beta":
                beta["se"], beta["ci_low"], beta["ci_high"] = se, lo, hi
            elif key == "S":
                diffs["se"], diffs["ci_low"], diffs["ci_high"] = se, lo, hi
            elif key == "gamma":
                res.gamma_se, res.gamma_ci_low, res.gamma_ci_high = mat(se), mat(lo), mat(hi)
            else:
                res.C_se, res.C_ci_low, res.C_ci_high = mat(se), mat(lo), mat(hi)
            methods[key] = methods[key].replace("CI t", f"SE and CI {ci_label}")
        if quadratic:
            gamma_boot = boot["gamma"]
        glm_fit = res.models.get("glm_linear")
        if glm_fit is not None and glm_fit.family in ("binomial", "poisson"):
            _bootstrap_average_gradients(res, prep, glm_fit, bootstrap, seed, ci_method, level, progress, quadratic)
        elif glm_fit is not None:
            notes.append("average gradients of the negative binomial fit keep delta-method SEs "
                         "(the bootstrap covers logistic and Poisson fits)")

    # permutation p-values
    gamma_null = None
    if permutations:
        s = None if seed is None else seed + 1
        beta["p_value"] = freedman_lane_pvalues(w, Xl, list(range(G, G + p)), permutations, codes, seed=s)
        methods["beta"] = methods["beta"].split("; p ")[0] + f"; p Freedman-Lane permutation (B={permutations})"
        Sn = permutation_null(w, lambda Y: Y @ Uc / (len(w) - 1), permutations, codes, seed=s)
        diffs["p_value"] = permutation_pvalue(S, Sn)
        methods["S"] = methods["S"].split("; p ")[0] + f"; p permutation (B={permutations})"
        if quadratic:
            qcols = list(range(G + p, Xq.shape[1]))
            pq = freedman_lane_pvalues(w, Xq, qcols, permutations, codes, seed=s)
            gp = gamma_from_quadratic(pq, p)
            gp[np.diag_indices(p)] /= 2.0
            res.gamma_p = mat(gp)
            methods["gamma"] = methods["gamma"].split("; p ")[0] + f"; p Freedman-Lane permutation (B={permutations})"
            pairs = quadratic_terms(p)
            Bq = np.column_stack([Uc[:, i] * Uc[:, j] for i, j in pairs])
            Cn = permutation_null(w, lambda Y: (Y - Y.mean(1, keepdims=True)) @ Bq / (len(w) - 1),
                                  permutations, codes, seed=s)
            cp = permutation_pvalue(np.array([C[i, j] for i, j in pairs]), Cn)
            res.C_p = mat(gamma_from_quadratic(cp, p) - np.diag(np.diag(gamma_from_quadratic(cp, p))) / 2)
            methods["C"] = methods["C"].split("; p ")[0] + f"; p permutation (B={permutations})"
            XtXi_Xt = np.linalg.solve(Xq.T @ Xq, Xq.T)          # gamma under permuted fitness (global null)
            gamma_null = permutation_null(
                w, lambda Y: gamma_from_quadratic((Y @ XtXi_Xt.T)[:, G + p:], p), permutations, codes, seed=s)

    if quadratic:
        res.canonical = canonical_analysis(res.gamma.to_numpy(), traits, w=w, U=U, intercepts=Xl[:, :G],
                                           gamma_boot=gamma_boot, gamma_null=gamma_null, level=level)
    res.ci_method = ci_method if bootstrap else "t"
    res.data = pd.DataFrame(U, columns=traits, index=prep.index).assign(w=w, W=prep.W)
    if G > 1:
        res.data[prep.group_col] = [prep.group_names[c] for c in codes]
    return res


def _bootstrap_average_gradients(res: SelectionResult, prep: PreparedData, gl, B: int, seed, ci_method: str,
                                 level: float, progress: bool, quadratic: bool) -> None:
    """Bootstrap SEs/intervals of the GLM average gradients (same resamples as the OLS bootstrap)."""
    link = "logit" if gl.family == "binomial" else "log"
    traits = prep.traits
    label = f"bootstrap {'BCa' if ci_method == 'bca' else 'percentile'}"
    jobs = [("beta_avg", GLMAverageEngine(prep.W, prep.Z_raw, prep.group_codes, prep.standardize, link, False,
                                          start=gl.params))]
    if quadratic and "glm_quadratic" in res.models:
        jobs.append(("gamma_avg", GLMAverageEngine(prep.W, prep.Z_raw, prep.group_codes, prep.standardize, link,
                                                   True, start=res.models["glm_quadratic"].params)))
    for key, eng in jobs:
        boot = run_bootstrap(eng, B, seed=seed, progress=progress)[key]
        bad = int(np.sum(~np.isfinite(boot.reshape(B, -1)).all(axis=1)))
        if bad > 0.2 * B:
            res.notes.append(f"{key}: {bad} of {B} bootstrap GLM fits separated or did not converge; its bootstrap "
                             f"was abandoned and delta-method SEs kept (the GLM is too rich for these data)")
            continue
        point = (res.average_gradients["estimate"].to_numpy() if key == "beta_avg" else res.average_gamma.to_numpy())
        se = np.nanstd(boot, axis=0, ddof=1)
        if ci_method == "bca":
            lo, hi = bca_interval(point, boot, run_jackknife(eng)[key], level)
        else:
            lo, hi = percentile_interval(boot, level)
        if key == "beta_avg":
            ag = res.average_gradients
            ag["se"], ag["ci_low"], ag["ci_high"] = se, lo, hi
        else:
            res.average_gamma_se = pd.DataFrame(se, index=traits, columns=traits)
            res.average_gamma_ci_low = pd.DataFrame(lo, index=traits, columns=traits)
            res.average_gamma_ci_high = pd.DataFrame(hi, index=traits, columns=traits)
        res.methods[key] = res.methods[key].replace("delta-method SE", f"SE and CI {label} (B={B - bad}); p Wald (delta method)")
        if bad:
            res.notes.append(f"{key}: {bad} of {B} bootstrap GLM fits separated or did not converge and were "
                             f"left out of its intervals")
