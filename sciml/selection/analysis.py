"""The Lande--Arnold analysis: :func:`lande_arnold`."""
from __future__ import annotations

import re
import warnings
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .gradients import SelectionWarning, prepare_data
from .group_test import group_test
from .imputation import complete_case_df, impute_traits, pool_results
from .least_squares import analyse
from .measurement_analysis import analyse_errors_in_variables
from .mixed_analysis import analyse_mixed
from .random_effects import parse_random_effects
from .options import AnalysisOptions
from .results import SelectionResult
from .._warnings import user_stacklevel


# Over 100 lines only because of its docstring (the public contract, options documented in one
# place); the body validates the options and dispatches to one route per kind of analysis.
# Over 100 lines only because of its docstring (the conventions a user cites); the code is ~20 lines.
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
    quadratic: bool | None = None,
    ci_method: str = "bca",
    level: float = 0.95,
    missing: str = "drop",
    count_model: str = "auto",
    vif_threshold: float = 10.0,
    compare_groups: bool = True,
    progress: bool = True,
    random_effects: str | Sequence[str] | None = None,
    random_slopes: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    measurement_error: Mapping[str, float] | None = None,
    individual: str | None = None,
    imputations: int = 20,
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

    * ``quadratic=None`` (default): gamma (with its SEs, intervals, p-values) and the canonical analysis are
      estimated when the quadratic model can be fitted; otherwise (too few individuals for its
      ``1 + p + p(p+1)/2`` parameters, or a rank-deficient design) beta and S are still reported
      with their inference, the gamma outputs are ``None``, and a :class:`SelectionWarning`
      gives the reason. ``quadratic=True`` turns that into an error; ``False`` skips gamma.

    * ``random_effects="year"`` (or nested ``["site", "brood"]``) and ``random_slopes=["mass"]``
      (or ``{"year": ["mass"]}``): REML linear mixed models of relative fitness for beta and gamma,
      GLMM p-values for binary/count fitness, variance components with likelihood-ratio tests,
      per-level gradients (BLUPs) with prediction-error SDs, cluster bootstrap over the outermost
      grouping (:mod:`~sciml.selection.mixed_analysis`). Not with ``groups`` or ``permutations``.
    * ``measurement_error={"mass": var}`` (variance of one measurement) or ``individual="id"``
      (long format, repeated measures): gradients corrected for measurement error by adjusted
      least squares, naive (attenuated) gradients and repeatabilities reported, bootstrap (or
      jackknife) over individuals (:mod:`~sciml.selection.measurement`).
    * ``missing="impute"``: ``imputations`` data sets by chained equations with posterior sampling
      (scikit-learn ``IterativeImputer``), pooled by Rubin's rules (:mod:`~sciml.selection.imputation`).
    * ``result.check()``: diagnostics with advice (:mod:`~sciml.selection.diagnostics`).

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
    opts = AnalysisOptions(bootstrap=bootstrap, permutations=permutations, seed=seed, quadratic=quadratic,
                           ci_method=ci_method, level=level, count_model=count_model,
                           vif_threshold=vif_threshold, progress=progress).check()
    if missing == "impute":
        return _imputed(data, fitness, traits, fitness_type, standardize, groups, opts, random_effects,
                        random_slopes, measurement_error, individual, imputations)
    if measurement_error is not None or individual is not None:
        return _errors_in_variables(data, fitness, traits, fitness_type, standardize, groups, missing, opts,
                                    random_effects, measurement_error, individual)
    if random_effects is not None:
        return _mixed(data, fitness, traits, fitness_type, standardize, groups, missing, opts,
                      random_effects, random_slopes)
    if random_slopes:
        raise ValueError("random_slopes needs random_effects (the grouping the slopes vary among)")
    prep = prepare_data(data, fitness, traits, fitness_type, standardize, groups, missing)
    result = analyse(prep, opts)
    if groups is None:
        return result

    _analyse_each_group(result, data.loc[prep.index], prep, fitness, fitness_type, standardize, groups, opts)
    if compare_groups and len(prep.group_names) > 1:
        result.group_test = group_test(prep, result.gamma is not None, opts.permutations, opts.seed)
    result.group_col = groups
    return result


def _analyse_each_group(result: SelectionResult, sub: pd.DataFrame, prep, fitness: str, fitness_type: str,
                        standardize: str | None, groups: str, opts: AnalysisOptions) -> None:
    """Separate analysis per group (traits standardised within the group) into ``result.groups``.

    Warnings raised inside a group are re-emitted with the group named; an error names the group.
    """
    gvals = sub[groups].astype(str).to_numpy() if sub[groups].dtype == object else sub[groups].to_numpy()
    for name in prep.group_names:
        part = sub[gvals == name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SelectionWarning)
                gprep = prepare_data(part, fitness, prep.traits, fitness_type, standardize, None, "raise")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SelectionWarning)
                result.groups[name] = analyse(gprep, opts)
        except ValueError as exc:
            raise ValueError(f"group {name!r} of {groups!r} (n = {len(part)}): {exc}") from exc
        for w in caught:                                   # re-emit, naming the group
            msg = f"group {name!r} of {groups!r}: {w.message}" if issubclass(w.category, SelectionWarning) else w.message
            warnings.warn(msg, w.category, stacklevel=user_stacklevel())


def _mixed(data, fitness, traits, fitness_type, standardize, groups, missing, opts, random_effects,
           random_slopes) -> SelectionResult:
    if groups is not None:
        raise ValueError("groups= and random_effects= cannot be combined: put the grouping into random_effects "
                         "(a random effect) or analyse each group separately")
    trait_list = [t.strip() for t in traits.split(",")] if isinstance(traits, str) else list(traits)
    groupings, slopes = parse_random_effects(random_effects, random_slopes, trait_list)
    prep = prepare_data(data, fitness, trait_list, fitness_type, standardize, None, missing, extra=groupings)
    return analyse_mixed(prep, opts, groupings, slopes)


def _errors_in_variables(data, fitness, traits, fitness_type, standardize, groups, missing, opts, random_effects,
                         measurement_error, individual) -> SelectionResult:
    if measurement_error is not None and individual is not None:
        raise ValueError("give either measurement_error= (known error variances) or individual= (repeated "
                         "measures to estimate them), not both")
    if groups is not None or random_effects is not None:
        raise ValueError("measurement-error correction cannot be combined with groups= or random_effects= yet; "
                         "analyse each group separately")
    if missing == "impute":
        raise ValueError("missing='impute' cannot be combined with measurement-error correction; use missing='drop'")
    if measurement_error is not None and not isinstance(measurement_error, Mapping):
        raise TypeError(f"measurement_error must be a dict {{trait: variance of one measurement}}, "
                        f"got {type(measurement_error).__name__}")
    prep = prepare_data(data, fitness, traits, fitness_type, standardize, None, missing,
                        extra=[individual] if individual is not None else [])
    return analyse_errors_in_variables(prep, opts, measurement_error, individual)


def _imputed(data, fitness, traits, fitness_type, standardize, groups, opts, random_effects, random_slopes,
             measurement_error, individual, imputations) -> SelectionResult:
    if isinstance(imputations, bool) or not isinstance(imputations, (int, np.integer)) or imputations < 2:
        raise ValueError(f"imputations must be an integer >= 2, got {imputations!r}")
    if groups is not None or measurement_error is not None or individual is not None:
        raise ValueError("missing='impute' cannot be combined with groups=, measurement_error= or individual= yet; "
                         "use missing='drop' for those analyses")
    if opts.permutations:
        raise ValueError("permutation p-values cannot be pooled over imputations; use bootstrap= or analytic "
                         "inference with missing='impute'")
    trait_list = [t.strip() for t in traits.split(",")] if isinstance(traits, str) else list(traits)
    groupings, slopes = parse_random_effects(random_effects, random_slopes, trait_list)
    prep = prepare_data(data, fitness, trait_list, fitness_type, standardize, None, "impute", extra=groupings)

    def run(p):
        return analyse_mixed(p, opts, groupings, slopes) if groupings else analyse(p, opts)

    if np.isfinite(prep.Z_raw).all():
        return run(prep)                                   # nothing to impute: the complete-case analysis
    completed = impute_traits(prep, int(imputations), opts.seed)
    results, seen = [], {}
    for Z in completed:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results.append(run(replace(prep, Z_raw=Z)))
        for w in caught:                                   # one message per kind (numbers differ between imputations)
            seen.setdefault(re.sub(r"[-+]?\d[\d.e+-]*", "#", str(w.message)), (str(w.message), w.category))
    for msg, cat in seen.values():                         # once each, not once per imputation
        warnings.warn(f"(in some imputed data sets) {msg}" if issubclass(cat, SelectionWarning) else msg, cat,
                      stacklevel=user_stacklevel())
    return pool_results(results, opts.level, complete_case_df(results[0]))
