"""The ``lande_arnold`` route for traits measured with error (``measurement_error=`` or ``individual=``).

See :mod:`~sciml.selection.measurement` for the model and the estimator. This module validates the
inputs, runs the point estimates, the bootstrap (or jackknife) over individuals, and fills a
:class:`~sciml.selection.SelectionResult` with corrected gradients, the naive ones for comparison,
and the repeatability of every trait.
"""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .bootstrap import run_bootstrap, run_jackknife
from .canonical import canonical_analysis
from .gradients import PreparedData, SelectionWarning, check_design_rank, design, term_names, vif
from .least_squares import _collinearity_note, _interval
from .measurement import ErrorsInVariablesEngine, IndividualData, individuals_from_long, individuals_with_known_error
from .options import AnalysisOptions
from .results import SelectionResult
from .._warnings import user_stacklevel


def analyse_errors_in_variables(prep: PreparedData, opts: AnalysisOptions,
                                measurement_error: Mapping[str, float] | None,
                                individual: str | None) -> SelectionResult:
    """Corrected Lande--Arnold analysis (``prep.extra`` holds the individual column when given)."""
    if opts.permutations:
        raise ValueError("permutations are not available with measurement-error correction; "
                         "use bootstrap= (over individuals)")
    if individual is not None:
        ind = individuals_from_long(prep.extra, individual, prep.fitness, prep.traits, prep.W, prep.Z_raw)
    else:
        ind = individuals_with_known_error(prep.W, prep.Z_raw, prep.traits, measurement_error)
    notes = list(prep.notes)
    quadratic = _gamma_estimable(ind, prep.traits, opts.quadratic, notes)
    engine = ErrorsInVariablesEngine(ind, prep.standardize, quadratic)
    point = {k: v[0] for k, v in engine.estimate(np.ones((1, ind.n))).items()}
    _check_latent(point, np.diag(engine.error_covariance(np.ones((1, ind.n)))[0]), ind, prep.traits)
    v = vif(ind.Z, prep.traits)
    _collinearity_note(v, opts.vif_threshold, notes)
    res = SelectionResult(traits=prep.traits, fitness=prep.fitness, fitness_type=prep.fitness_type,
                          standardize=prep.standardize, n=ind.n, beta=None, differentials=None, vif=v,
                          bootstrap=opts.bootstrap, permutations=0, dropped=prep.dropped, notes=notes,
                          level=opts.level, individual=individual)
    if opts.bootstrap:
        reps = run_bootstrap(engine, opts.bootstrap, seed=opts.seed, progress=opts.progress)
        jack = run_jackknife(engine) if opts.ci_method == "bca" else None
        how = f"{opts.ci_label} over individuals (B={opts.bootstrap})"
        res.bootstrap_samples = reps
    else:
        reps, jack = None, run_jackknife(engine)
        how = "jackknife over individuals; CI normal"
    _fill(res, point, reps, jack, opts, quadratic, ind.k)
    source = (f"repeated measures within {individual!r} (pooled within-individual covariance / k)"
              if individual is not None else "given per-measurement variances")
    label = f"adjusted least squares for measurement error ({source}); SE and CI {how}; p Wald z"
    for key, what in (("beta", "corrected OLS on relative fitness"), ("S", "cov(w, z), latent standardisation"),
                      ("gamma", "corrected quadratic OLS, diagonal doubled"), ("C", "cov(w, corrected (z-zbar)^2)")):
        res.methods[key] = f"{what}; {label}"
    res.methods["beta_naive"] = "OLS on the recorded traits, ignoring measurement error (attenuated)"
    if prep.fitness_type != "continuous":
        res.notes.append("binary/count fitness: the corrected gradients are least squares on relative fitness; "
                         "their p-values come from the resampling SEs (no GLM correction)")
    U = (ind.Z - ind.Z.mean(0)) / _latent_scale(point, ind, prep.standardize)
    res.data = pd.DataFrame(U, columns=prep.traits).assign(w=ind.W / ind.W.mean(), W=ind.W, n_measurements=ind.k)
    if individual is not None:
        res.data.index = pd.Index(ind.ids, name=individual)
    return res


def _gamma_estimable(ind: IndividualData, traits: list[str], quadratic: bool | None, notes: list[str]) -> bool:
    """Same rule as the least-squares route: gamma when the quadratic design of the individuals allows it."""
    if quadratic is False:
        return False
    U = (ind.Z - ind.Z.mean(0)) / ind.Z.std(0, ddof=1)
    lin, quad = term_names(traits)
    try:
        check_design_rank(design(U, quadratic=True), ["intercept"] + lin + quad, "quadratic")
    except ValueError as exc:
        if quadratic:
            raise
        msg = (f"quadratic gradients (gamma) not estimated: {str(exc).split('; use fewer traits')[0]}; "
               f"linear gradients (beta) are reported")
        notes.append(msg)
        warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())
        return False
    return True


def _check_latent(point: dict, ve: np.ndarray, ind: IndividualData, traits: list[str]) -> None:
    """The error variance ``ve`` (of one measurement) must leave a positive latent variance for every trait."""
    Zc = ind.Z - ind.Z.mean(0)
    obs = np.einsum("ni,ni->i", Zc, Zc) / (ind.n - 1)
    err = ve * np.mean(1.0 / ind.k)
    bad = [j for j in range(len(traits)) if not obs[j] - err[j] > 0]
    if bad:
        j = bad[0]
        raise ValueError(f"measurement error of trait {traits[j]!r} (variance {err[j]:.4g} of the recorded values) is "
                         f"not smaller than their observed variance ({obs[j]:.4g}): no latent variance is left to "
                         f"estimate its gradient")
    if not np.isfinite(point["beta"]).all():
        raise ValueError("the latent trait covariance (observed minus measurement-error covariance) is not positive "
                         "definite: the measurement error is too large for these traits")


def _latent_scale(point: dict, ind: IndividualData, standardize: str | None) -> np.ndarray:
    if standardize == "sd":
        return np.sqrt(point["latent_variance"])
    if standardize == "mean":
        return ind.Z.mean(0)
    return np.ones(ind.Z.shape[1])


def _fill(res: SelectionResult, point: dict, reps, jack, opts: AnalysisOptions, quadratic: bool,
          k: np.ndarray) -> None:
    """Estimates with resampling SEs, intervals and Wald p-values; naive beta; repeatability."""
    traits = res.traits
    mat = lambda a: pd.DataFrame(a, index=traits, columns=traits)  # noqa: E731
    z = opts.z_quantile()

    def summary(key):
        est = point[key]
        if reps is not None:
            se = np.nanstd(reps[key], axis=0, ddof=1)
            lo, hi = _interval(est, reps[key], None if jack is None else jack[key], opts)
        else:
            nj = np.isfinite(jack[key].reshape(len(jack[key]), -1)).all(1).sum()
            se = np.sqrt((nj - 1) / nj * np.nansum((jack[key] - np.nanmean(jack[key], 0)) ** 2, axis=0))
            lo, hi = est - z * se, est + z * se
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * stats.norm.sf(np.abs(est / se))
        return est, se, lo, hi, p

    for key, attr in (("beta", "beta"), ("S", "differentials")):
        est, se, lo, hi, p = summary(key)
        setattr(res, attr, pd.DataFrame({"estimate": est, "se": se, "ci_low": lo, "ci_high": hi, "p_value": p},
                                        index=traits))
    est, se, lo, hi, p = summary("beta_naive")
    res.beta_naive = pd.DataFrame({"estimate": est, "se": se, "ci_low": lo, "ci_high": hi, "p_value": p}, index=traits)
    est, se, lo, hi, p = summary("C")
    res.C, res.C_se, res.C_ci_low, res.C_ci_high, res.C_p = mat(est), mat(se), mat(lo), mat(hi), mat(p)
    if quadratic:
        est, se, lo, hi, p = summary("gamma")
        res.gamma, res.gamma_se, res.gamma_ci_low, res.gamma_ci_high, res.gamma_p = \
            mat(est), mat(se), mat(lo), mat(hi), mat(p)
        res.canonical = canonical_analysis(est, traits, gamma_boot=None if reps is None else reps["gamma"],
                                           level=opts.level)
    rows = {}
    for key in ("error_variance", "latent_variance", "repeatability"):
        e, s_, lo, hi, _ = summary(key)
        rows[key], rows[f"{key}_se"] = e, s_
        if key == "repeatability":
            rows["repeatability_ci_low"], rows["repeatability_ci_high"] = lo, hi
    rep = pd.DataFrame(rows, index=traits)
    rep["mean_measurements"] = float(np.mean(k))
    # share of the variance of the recorded (averaged) values that is latent phenotype
    rep["reliability_of_recorded"] = rep["latent_variance"] / (rep["latent_variance"]
                                                               + rep["error_variance"] * np.mean(1.0 / k))
    res.repeatability = rep
