"""Relative fitness, trait standardisation, designs and Lande--Arnold point estimates.

Conventions (Lande & Arnold 1983; Stinchcombe et al. 2008):

* relative fitness ``w = W / mean(W)``; with groups, the mean is taken within each group;
* traits are always centred; ``standardize="sd"`` divides by the sample standard deviation
  (``ddof=1``, as R's ``scale()``), ``"mean"`` divides by the trait mean (mean-standardised
  gradients, Hereford et al. 2004), ``None`` leaves the original units;
* ``beta`` comes from the linear regression ``w ~ z``; ``gamma`` from the full quadratic
  regression ``w ~ z + z_i z_j (i <= j)``; the coefficients of ``z_i^2`` are doubled (and so are
  their standard errors) to give ``gamma_ii``; cross products give ``gamma_ij`` undoubled;
* the selection differential ``S = cov(w, z)`` and the nonlinear differential
  ``C = cov(w, (z - zbar)(z - zbar)^T)`` use ``ddof=1``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from .._warnings import user_stacklevel

FITNESS_TYPES = ("continuous", "binary", "count")
STANDARDIZE = ("sd", "mean", None)
MISSING = ("drop", "raise", "impute")


class SelectionWarning(UserWarning):
    """Warnings about data or fits in a selection analysis (collinearity, dropped rows, ...)."""


class SeparationWarning(SelectionWarning):
    """Complete or quasi-complete separation in a logistic fit."""


@dataclass
class PreparedData:
    """Validated inputs of a selection analysis (output of :func:`prepare_data`)."""

    W: np.ndarray                    # absolute fitness (n,)
    Z_raw: np.ndarray                # traits in original units (n, p)
    traits: list[str]
    fitness: str
    fitness_type: str
    standardize: str | None
    group_codes: np.ndarray          # (n,) int codes 0..G-1
    group_names: list
    group_col: str | None
    index: pd.Index                  # rows of the input that were kept
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: pd.DataFrame | None = None  # kept rows of the ``extra`` columns (random effects, individual id)

    @property
    def n(self) -> int:
        return len(self.W)

    @property
    def p(self) -> int:
        return self.Z_raw.shape[1]


def _as_numeric(series: pd.Series, name: str, role: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float).to_numpy()
    if not pd.api.types.is_numeric_dtype(series):
        raise TypeError(
            f"{role} column {name!r} is not numeric (dtype {series.dtype}); "
            f"convert it first, e.g. df[{name!r}] = pd.to_numeric(df[{name!r}])"
        )
    return series.astype(float).to_numpy()


_BINARY_WORDS = {"yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0, "y": 1.0, "n": 0.0,
                 "1": 1.0, "0": 0.0, "survived": 1.0, "died": 0.0, "alive": 1.0, "dead": 0.0}


def _binary_from_strings(series: pd.Series, name: str) -> np.ndarray:
    out = np.full(len(series), np.nan)
    for i, v in enumerate(series.to_numpy()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        key = str(v).strip().lower()
        if key not in _BINARY_WORDS:
            raise ValueError(
                f"binary fitness column {name!r} has the value {v!r}; expected 0/1, booleans "
                f"or yes/no, true/false, survived/died"
            )
        out[i] = _BINARY_WORDS[key]
    return out


def prepare_data(
    data: pd.DataFrame,
    fitness: str,
    traits: Sequence[str],
    fitness_type: str = "continuous",
    standardize: str | None = "sd",
    groups: str | None = None,
    missing: str = "drop",
    extra: Sequence[str] = (),
) -> PreparedData:
    """Validate a DataFrame for a selection analysis; drop (and report) incomplete rows.

    ``extra`` columns (random-effect groupings, an individual identifier) must exist; rows where
    they are missing are dropped like incomplete rows, and their kept values are returned in
    ``PreparedData.extra``.

    Raises ``TypeError``/``ValueError`` naming the offending column or value for: a missing
    column, non-numeric traits, a column with no value at all, missing values with
    ``missing="raise"``, a constant trait, perfectly collinear traits, negative or all-zero
    fitness, non-0/1 binary fitness, non-integer counts, and a non-positive trait mean with
    ``standardize="mean"``. With ``missing="impute"`` rows missing fitness or group are dropped
    (and reported) but missing trait values are kept as NaN for multiple imputation.

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"W": [1, 2, 0, 3], "x": [0.1, 0.5, -0.3, 0.9]})
    >>> prepare_data(df, "W", ["x"]).n
    4
    """
    extra = list(extra)
    traits = _check_arguments(data, fitness, traits, fitness_type, standardize, groups, missing, extra)
    W, Z, gmiss = _read_columns(data, fitness, traits, fitness_type, [groups] * (groups is not None) + extra)
    keep, dropped, notes = _missing_rows(W, Z, gmiss, fitness, traits, [groups] * (groups is not None) + extra,
                                         missing)
    W, Z = W[keep], Z[keep]
    index = data.index[keep]
    _check_fitness(W, fitness, fitness_type)
    codes, group_names = _encode_groups(data[groups].to_numpy()[keep] if groups is not None else None, W, groups)
    _check_traits(Z, traits, standardize)
    return PreparedData(W=W, Z_raw=Z, traits=traits, fitness=fitness, fitness_type=fitness_type,
                        standardize=standardize, group_codes=codes.astype(int), group_names=group_names,
                        group_col=groups, index=index, dropped=dropped, notes=notes,
                        extra=data[extra][keep] if extra else None)


def _check_arguments(data, fitness, traits, fitness_type, standardize, groups, missing, extra=()) -> list[str]:
    """Option values, the trait list (a comma-separated string is accepted) and column presence."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if fitness_type not in FITNESS_TYPES:
        raise ValueError(f"fitness_type must be one of {FITNESS_TYPES}, got {fitness_type!r}")
    if standardize not in STANDARDIZE:
        raise ValueError(f"standardize must be 'sd', 'mean' or None, got {standardize!r}")
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, got {missing!r}")
    if isinstance(traits, str):
        traits = [t.strip() for t in traits.split(",") if t.strip()]
    traits = list(traits)
    if not traits:
        raise ValueError("traits is empty: give at least one trait column")
    if len(set(traits)) != len(traits):
        dup = sorted({t for t in traits if traits.count(t) > 1})
        raise ValueError(f"traits lists the same column twice: {dup}")
    if fitness in traits:
        raise ValueError(f"fitness column {fitness!r} is also listed as a trait")
    cols = [fitness, *traits] + ([groups] if groups is not None else []) + list(extra)
    clash = [c for c in extra if c in (fitness, *traits)]
    if clash:
        raise ValueError(f"column(s) {clash} cannot be both a grouping/identifier and the fitness or a trait")
    missing_cols = [c for c in cols if c not in data.columns]
    if missing_cols:
        raise ValueError(f"columns not found in data: {missing_cols}; available: {list(data.columns)}")
    return traits


def _read_columns(data, fitness, traits, fitness_type, label_cols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fitness ``W`` (n,), traits ``Z`` (n, p) as floats (NaN where missing), and ``(n, k)`` missing
    masks of the label columns (groups, random effects, individual)."""
    fcol = data[fitness]
    if fitness_type == "binary" and not (pd.api.types.is_numeric_dtype(fcol) or pd.api.types.is_bool_dtype(fcol)):
        W = _binary_from_strings(fcol, fitness)
    else:
        W = _as_numeric(fcol, fitness, "fitness")
    Z = np.column_stack([_as_numeric(data[t], t, "trait") for t in traits])
    gmiss = np.column_stack([data[c].isna().to_numpy() for c in label_cols]) if label_cols else \
        np.zeros((len(data), 0), bool)
    empty = [c for c, v in [(fitness, W), *zip(traits, Z.T)] if len(v) and not np.isfinite(v).any()]
    empty += [c for c, m in zip(label_cols, gmiss.T) if len(m) and m.all()]
    if empty:
        raise ValueError(f"column(s) {empty} have no value in any row (all missing); drop them from the analysis")
    return W, Z, gmiss


def _missing_rows(W, Z, gmiss, fitness, traits, label_cols, missing) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """Rows to keep, the count of missing values per column and the note/warning that reports them.

    With ``missing="impute"`` only rows missing fitness or a label column are dropped.
    """
    trait_bad = ~np.isfinite(Z).all(axis=1)
    bad = ~np.isfinite(W) | gmiss.any(axis=1) | (trait_bad if missing != "impute" else False)
    counts = {fitness: int((~np.isfinite(W)).sum())}
    counts.update({t: int((~np.isfinite(Z[:, j])).sum()) for j, t in enumerate(traits)})
    counts.update({c: int(m.sum()) for c, m in zip(label_cols, gmiss.T)})
    counts = {k: v for k, v in counts.items() if v}
    notes: list[str] = []
    if not counts:
        return ~bad, {}, notes
    if missing == "raise":
        raise ValueError(f"missing or non-finite values (count per column): {counts}; "
                         f"use missing='drop' to drop incomplete rows or missing='impute' to impute traits")
    if bad.any():
        msg = (f"dropped {int(bad.sum())} of {len(W)} rows with missing values "
               f"(missing per column: {counts})")
        if missing == "impute":
            msg += "; missing trait values are imputed"
        notes.append(msg)
        warnings.warn(msg, SelectionWarning, stacklevel=user_stacklevel())
    if int((~bad).sum()) == 0:
        raise ValueError(f"no complete rows left after dropping missing values (missing per column: {counts})")
    return ~bad, counts, notes


def _check_fitness(W: np.ndarray, fitness: str, fitness_type: str) -> None:
    """0/1 for binary, integers for counts, never negative, not all zero."""
    if fitness_type == "binary":
        vals = set(np.unique(W).tolist())
        if not vals <= {0.0, 1.0}:
            raise ValueError(f"binary fitness column {fitness!r} must be 0/1; found values {sorted(vals)[:10]}")
    if (W < 0).any():
        raise ValueError(f"fitness column {fitness!r} has {int((W < 0).sum())} negative values; "
                         f"absolute fitness must be >= 0")
    if fitness_type == "count" and not np.all(W == np.round(W)):
        raise ValueError(f"count fitness column {fitness!r} has non-integer values")
    if W.sum() == 0:
        raise ValueError(f"fitness column {fitness!r} is zero for every individual: relative fitness "
                         f"W / mean(W) is undefined")


def _encode_groups(gvals: np.ndarray | None, W: np.ndarray, groups: str | None) -> tuple[np.ndarray, list]:
    """Integer codes ``0..G-1`` and sorted group names; every group needs non-zero fitness."""
    if gvals is None:
        return np.zeros(len(W), int), ["all"]
    names, codes = np.unique(gvals.astype(str) if gvals.dtype == object else gvals, return_inverse=True)
    group_names = names.tolist()
    for g, name in enumerate(group_names):
        if W[codes == g].sum() == 0:
            raise ValueError(f"group {name!r} of {groups!r} has zero fitness for every individual: "
                             f"relative fitness within the group is undefined")
    return codes, group_names


def _check_traits(Z: np.ndarray, traits: list[str], standardize: str | None) -> None:
    """No constant trait, a positive mean for mean standardisation, no perfect collinearity
    (judged on the rows where every trait is observed)."""
    sd = np.array([np.nanstd(z, ddof=1) if np.isfinite(z).sum() > 1 else 0.0 for z in Z.T])
    for j, t in enumerate(traits):
        if not sd[j] > 0:
            raise ValueError(f"trait {t!r} is constant (standard deviation 0) in the analysed rows")
    if standardize == "mean":
        mu = np.nanmean(Z, axis=0)
        for j, t in enumerate(traits):
            if not mu[j] > 0:
                raise ValueError(f"trait {t!r} has mean {mu[j]:.4g} <= 0: mean standardisation needs "
                                 f"a positive ratio-scale trait")
    check_collinearity(Z[np.isfinite(Z).all(axis=1)], traits)


def check_collinearity(Z: np.ndarray, traits: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the traits involved when traits are perfectly collinear."""
    if Z.shape[0] < 2:
        return
    Zc = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    _, s, vt = np.linalg.svd(Zc, full_matrices=False)
    tol = max(Zc.shape) * np.finfo(float).eps * 1e3 * s[0]
    if Zc.shape[0] - 1 < Zc.shape[1] or s[-1] <= tol:
        if Zc.shape[0] - 1 < Zc.shape[1]:
            raise ValueError(f"{Zc.shape[0]} individuals cannot identify {Zc.shape[1]} trait gradients "
                             f"(need more individuals than traits + 1)")
        v = vt[-1]
        involved = [traits[j] for j in np.flatnonzero(np.abs(v) > 1e-6 * np.abs(v).max())]
        raise ValueError(f"traits are perfectly collinear (a linear combination is constant): {involved}; "
                         f"drop one of them")


def relative_fitness(W: np.ndarray, group_codes: np.ndarray | None = None) -> np.ndarray:
    """``w = W / mean(W)``, the mean taken within each group when ``group_codes`` is given.

    Example
    -------
    >>> relative_fitness(np.array([1.0, 3.0]))
    array([0.5, 1.5])
    """
    W = np.asarray(W, float)
    if group_codes is None:
        m = W.mean()
        if m == 0:
            raise ValueError("mean fitness is zero: relative fitness is undefined")
        return W / m
    w = np.empty_like(W)
    for g in np.unique(group_codes):
        sel = group_codes == g
        m = W[sel].mean()
        if m == 0:
            raise ValueError(f"mean fitness is zero in group {g}: relative fitness is undefined")
        w[sel] = W[sel] / m
    return w


def trait_scale(Z_raw: np.ndarray, standardize: str | None, weights: np.ndarray | None = None) -> np.ndarray:
    """The divisor used for each trait: sample SD (``ddof=1``), trait mean, or 1."""
    if standardize is None:
        return np.ones(Z_raw.shape[1])
    if weights is None:
        weights = np.ones(Z_raw.shape[0])
    N = weights.sum()
    m = weights @ Z_raw / N
    if standardize == "mean":
        return m
    var = (weights @ (Z_raw - m) ** 2) / (N - 1)
    return np.sqrt(var)


def standardize_traits(Z_raw: np.ndarray, standardize: str | None) -> np.ndarray:
    """Centre the traits and divide by :func:`trait_scale`.

    Example
    -------
    >>> standardize_traits(np.array([[1.0], [3.0]]), "sd").ravel()
    array([-0.70710678,  0.70710678])
    """
    Z_raw = np.asarray(Z_raw, float)
    return (Z_raw - Z_raw.mean(0)) / trait_scale(Z_raw, standardize)


def quadratic_terms(p: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j), i <= j`` of the quadratic terms, in design-column order."""
    return [(i, j) for i in range(p) for j in range(i, p)]


def term_names(traits: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names of linear and quadratic terms: ``'x'`` and ``'x^2'`` / ``'x:y'``."""
    lin = list(traits)
    quad = [f"{traits[i]}^2" if i == j else f"{traits[i]}:{traits[j]}" for i, j in quadratic_terms(len(traits))]
    return lin, quad


def design(U: np.ndarray, group_codes: np.ndarray | None = None, quadratic: bool = False,
           n_groups: int | None = None) -> np.ndarray:
    """Design matrix ``[group intercepts | U | (U_i U_j, i <= j)]``.

    With a single group the first column is the intercept. Group intercepts keep the gradients
    within-group when relative fitness is computed within groups.
    """
    n, p = U.shape
    if group_codes is None:
        group_codes = np.zeros(n, int)
    G = int(group_codes.max()) + 1 if n_groups is None else n_groups
    D = np.zeros((n, G))
    D[np.arange(n), group_codes] = 1.0
    cols = [D, U]
    if quadratic:
        cols.append(np.column_stack([U[:, i] * U[:, j] for i, j in quadratic_terms(p)]))
    return np.hstack(cols)


def check_design_rank(X: np.ndarray, names: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` if ``X`` has more columns than rows or is rank deficient."""
    n, q = X.shape
    if n <= q:
        raise ValueError(
            f"the {what} model has {q} parameters but only {n} individuals (need more individuals "
            f"than parameters); use fewer traits" + (" or quadratic=False" if "quadratic" in what else "")
        )
    Xs = X / np.maximum(np.linalg.norm(X, axis=0), 1e-300)
    _, s, vt = np.linalg.svd(Xs, full_matrices=False)
    if s[-1] < 1e-10 * s[0]:
        v = vt[-1]
        involved = [names[j] for j in np.flatnonzero(np.abs(v) > 1e-6 * np.abs(v).max())]
        raise ValueError(f"the {what} design is rank deficient; collinear terms: {involved} "
                         f"(e.g. a trait with only two distinct values has a quadratic term equal "
                         f"to a linear one)")


def vif(U: np.ndarray, traits: Sequence[str]) -> pd.Series:
    """Variance inflation factors of the traits (diagonal of the inverse correlation matrix)."""
    if U.shape[1] == 1:
        return pd.Series([1.0], index=list(traits), name="vif")
    R = np.corrcoef(U, rowvar=False)
    return pd.Series(np.diag(np.linalg.inv(R)), index=list(traits), name="vif")


def differentials(w: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Selection differentials ``S = cov(w, z)`` and ``C = cov(w, (z-zbar)(z-zbar)^T)`` (ddof=1)."""
    n = len(w)
    Uc = U - U.mean(0)
    wc = w - w.mean()
    S = Uc.T @ wc / (n - 1)
    C = np.einsum("n,ni,nj->ij", wc, Uc, Uc) / (n - 1)
    return S, C


def gamma_from_quadratic(coef_quad: np.ndarray, p: int) -> np.ndarray:
    """Symmetric gamma from quadratic-regression coefficients; diagonal doubled (Stinchcombe 2008).

    Example
    -------
    >>> gamma_from_quadratic(np.array([0.1, 0.05, -0.2]), 2)
    array([[ 0.2 ,  0.05],
           [ 0.05, -0.4 ]])
    """
    coef_quad = np.asarray(coef_quad, float)
    out = np.zeros(coef_quad.shape[:-1] + (p, p))
    for k, (i, j) in enumerate(quadratic_terms(p)):
        if i == j:
            out[..., i, i] = 2.0 * coef_quad[..., k]
        else:
            out[..., i, j] = coef_quad[..., k]
            out[..., j, i] = coef_quad[..., k]
    return out
