"""Missing trait values by multiple imputation (chained equations) and Rubin's rules.

``m`` completed data sets are drawn with scikit-learn's ``IterativeImputer`` with posterior
sampling (``sample_posterior=True``: each missing value is a draw from the Bayesian-ridge
predictive distribution given the other traits *and fitness*, so that the imputations carry the
trait--fitness association; van Buuren 2018), a different random state per imputation. Each
completed data set is analysed as usual and every estimate is pooled by Rubin's rules: the mean
``Qbar`` of the ``m`` estimates, total variance ``T = Ubar + (1 + 1/m) B`` (within- and
between-imputation variance), intervals and p-values from a t distribution with the
Barnard & Rubin (1999) degrees of freedom (complete-data df ``n - q`` for t-based estimates,
infinite for z-based ones), and the fraction of missing information per estimate.

Rows with missing fitness (or grouping) are not imputed but dropped and reported. The
imputation model is linear in the traits and fitness: quadratic gradients (gamma) from imputed
data lean towards zero when the missing values depend on curvature the model does not carry.
With no missing trait value the complete-case analysis is returned unchanged.
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .canonical import canonical_analysis
from .gradients import PreparedData
from .results import SelectionResult

VECTOR_ATTRS = ("beta", "differentials", "average_gradients")
MATRIX_ATTRS = (("gamma", "gamma_se", "gamma_ci_low", "gamma_ci_high", "gamma_p"),
                ("C", "C_se", "C_ci_low", "C_ci_high", "C_p"),
                ("average_gamma", "average_gamma_se", "average_gamma_ci_low", "average_gamma_ci_high",
                 "average_gamma_p"))


def impute_traits(prep: PreparedData, m: int, seed: int | None, max_iter: int = 10) -> list[np.ndarray]:
    """``m`` completed trait matrices (raw units) by chained equations with posterior sampling.

    With a single incomplete trait one round is exact (its model is fitted on the complete
    predictors of the rows where it is observed), otherwise ``max_iter`` rounds.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    G = len(prep.group_names)
    D = np.eye(G)[prep.group_codes][:, 1:] if G > 1 else np.zeros((prep.n, 0))
    M = np.column_stack([prep.Z_raw, prep.W, D])
    base = 0 if seed is None else int(seed)
    rounds = max_iter if int((~np.isfinite(prep.Z_raw)).any(axis=0).sum()) > 1 else 1
    out = []
    for i in range(m):
        imp = IterativeImputer(sample_posterior=True, max_iter=rounds, skip_complete=True,
                               random_state=base + 7919 * i)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)    # sampling chains do not reach a fixed point
            out.append(imp.fit_transform(M)[:, :prep.p])
    return out


def rubin(est: np.ndarray, se: np.ndarray, df_complete: float = np.inf) -> dict[str, np.ndarray]:
    """Rubin's rules over axis 0 (``m`` imputations): pooled estimate, SE, df (Barnard--Rubin),
    fraction of missing information.

    Example
    -------
    >>> r = rubin(np.array([[1.0], [1.2], [0.9]]), np.array([[0.1], [0.1], [0.1]]))
    >>> round(float(r["estimate"][0]), 3)
    1.033
    """
    est, se = np.asarray(est, float), np.asarray(se, float)
    m = est.shape[0]
    qbar = est.mean(0)
    ubar = (se ** 2).mean(0)
    b = est.var(0, ddof=1)
    t = ubar + (1 + 1 / m) * b
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (1 + 1 / m) * b / ubar
        lam = (1 + 1 / m) * b / t
        nu_old = np.where(b > 0, (m - 1) / lam ** 2, np.inf)
        if np.isfinite(df_complete):
            nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
            nu = 1.0 / (1.0 / nu_old + 1.0 / nu_obs)
        else:
            nu = nu_old
        fmi = (r + 2 / (nu + 3)) / (r + 1)
    return {"estimate": qbar, "se": np.sqrt(t), "df": nu, "fmi": np.where(b > 0, fmi, 0.0), "between": b,
            "within": ubar}


def _pooled_columns(pool: dict, level: float) -> dict[str, np.ndarray]:
    q = np.where(np.isfinite(pool["df"]), stats.t.ppf(0.5 + level / 2, np.where(np.isfinite(pool["df"]), pool["df"], 1)),
                 stats.norm.ppf(0.5 + level / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = pool["estimate"] / pool["se"]
    p = np.where(np.isfinite(pool["df"]), 2 * stats.t.sf(np.abs(tstat), np.where(np.isfinite(pool["df"]), pool["df"], 1)),
                 2 * stats.norm.sf(np.abs(tstat)))
    return {"estimate": pool["estimate"], "se": pool["se"], "ci_low": pool["estimate"] - q * pool["se"],
            "ci_high": pool["estimate"] + q * pool["se"], "p_value": p}


def pool_results(results: list[SelectionResult], level: float, df_complete: dict[str, float]) -> SelectionResult:
    """Combine analyses of ``m`` completed data sets by Rubin's rules (see the module docstring)."""
    res = copy.copy(results[0])
    res.methods = dict(results[0].methods)
    res.notes = list(results[0].notes)
    fmi_rows = []
    for attr in VECTOR_ATTRS:
        frames = [getattr(r, attr) for r in results]
        if frames[0] is None:
            continue
        pool = rubin(np.stack([f["estimate"].to_numpy() for f in frames]), np.stack([f["se"].to_numpy() for f in frames]),
                     df_complete.get(attr, np.inf))
        setattr(res, attr, pd.DataFrame(_pooled_columns(pool, level), index=frames[0].index))
        fmi_rows += [{"type": attr, "term": t, "fmi": f, "df": d} for t, f, d in zip(frames[0].index, pool["fmi"], pool["df"])]
    for est, se, lo, hi, pv in MATRIX_ATTRS:
        mats = [getattr(r, est) for r in results]
        if mats[0] is None:
            continue
        pool = rubin(np.stack([x.to_numpy() for x in mats]), np.stack([getattr(r, se).to_numpy() for r in results]),
                     df_complete.get(est, np.inf))
        cols = _pooled_columns(pool, level)
        mk = lambda a: pd.DataFrame(a, index=mats[0].index, columns=mats[0].columns)  # noqa: E731
        for name, key in ((est, "estimate"), (se, "se"), (lo, "ci_low"), (hi, "ci_high"), (pv, "p_value")):
            setattr(res, name, mk(cols[key]))
        iu = np.triu_indices(len(mats[0]))
        fmi_rows += [{"type": est, "term": f"{mats[0].index[i]}:{mats[0].columns[j]}", "fmi": pool["fmi"][i, j],
                      "df": pool["df"][i, j]} for i, j in zip(*iu)]
    _pool_glm_pvalues(res, results, level)
    if results[0].variance_components is not None:
        vcs = [r.variance_components for r in results]
        vc = vcs[0].copy()
        vc["estimate"] = np.mean([v["estimate"].to_numpy() for v in vcs], axis=0)
        if vc["se"].notna().all():
            pool = rubin(np.stack([v["estimate"].to_numpy() for v in vcs]), np.stack([v["se"].to_numpy() for v in vcs]))
            cols = _pooled_columns(pool, level)
            vc["se"], vc["ci_low"], vc["ci_high"] = cols["se"], cols["ci_low"], cols["ci_high"]
        res.variance_components = vc
    if res.gamma is not None:
        res.canonical = canonical_analysis(res.gamma.to_numpy(), res.traits, level=level)
    m = len(results)
    for key in list(res.methods):
        res.methods[key] += f"; pooled over {m} imputations (Rubin's rules, Barnard-Rubin df)"
    res.missing_information = pd.DataFrame(fmi_rows)
    res.imputations = m
    res.models = {"imputation_1": results[0].models}
    res.bootstrap_samples = None
    res.notes.append(f"missing trait values multiply imputed (m = {m}, chained equations with posterior sampling, "
                     f"fitness in the imputation model); plots and fitness surfaces use the first imputed data set; "
                     f"canonical analysis of the pooled gamma without intervals")
    return res


def _pool_glm_pvalues(res: SelectionResult, results: list[SelectionResult], level: float) -> None:
    """Binary/count fitness: the p-values of beta and gamma pool the GLM(M) Wald tests, as in one analysis."""
    from .gradients import gamma_from_quadratic

    p = len(res.traits)
    for model, attr in (("glm_linear", "beta"), ("glmm_linear", "beta"), ("glm_quadratic", "gamma"),
                        ("glmm_quadratic", "gamma")):
        fits = [r.models.get(model) for r in results]
        if fits[0] is None:
            continue
        G = len(fits[0].params) - (p if attr == "beta" else p + p * (p + 1) // 2)
        sl = slice(G, G + p) if attr == "beta" else slice(G + p, None)
        pool = rubin(np.stack([f.params[sl] for f in fits]), np.stack([f.bse[sl] for f in fits]))
        pv = _pooled_columns(pool, level)["p_value"]
        if attr == "beta":
            res.beta["p_value"] = pv
        else:
            gp = gamma_from_quadratic(pv, p)
            gp[np.diag_indices(p)] /= 2.0
            res.gamma_p = pd.DataFrame(gp, index=res.traits, columns=res.traits)
        res.methods[attr] = res.methods[attr].split("; p ")[0] + f"; p pooled Wald of the {model.split('_')[0].upper()}"
    for key in ("S", "C"):
        if key in res.methods and "; p " in res.methods[key]:
            res.methods[key] = res.methods[key].split("; p ")[0] + "; p pooled t"


def complete_case_df(results: SelectionResult) -> dict[str, float]:
    """Complete-data degrees of freedom of the t-based estimates (OLS ``n - q``)."""
    out = {}
    lin, quad = results.models.get("linear"), results.models.get("quadratic")
    if lin is not None and results.fitness_type == "continuous":
        out["beta"] = lin.df_resid
    if quad is not None and results.fitness_type == "continuous":
        out["gamma"] = quad.df_resid
    out["differentials"] = results.n - 2
    out["C"] = results.n - 2
    return out
