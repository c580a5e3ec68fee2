"""Bad inputs give clear errors naming the input, or an explicit reported policy."""
import warnings

import numpy as np
import pandas as pd
import pytest

from sciml.selection import SelectionWarning, SeparationWarning, lande_arnold

TR = ["z1", "z2", "z3"]


def test_missing_values_dropped_and_reported(pop):
    df = pop.copy()
    df.loc[[0, 1, 2], "z1"] = np.nan
    df.loc[[2, 5], "W"] = np.nan
    with pytest.warns(SelectionWarning, match="dropped 4 of 400 rows"):
        res = lande_arnold(df, "W", TR)
    assert res.n == 396
    assert res.dropped == {"W": 2, "z1": 3}
    assert any("dropped" in n for n in res.notes) and "dropped" in res.summary()
    with pytest.raises(ValueError, match="missing"):
        lande_arnold(df, "W", TR, missing="raise")


def test_constant_trait(pop):
    with pytest.raises(ValueError, match="trait 'c' is constant"):
        lande_arnold(pop.assign(c=3.0), "W", ["z1", "c"])


def test_perfectly_collinear_traits(pop):
    df = pop.assign(z4=2 * pop.z1 - pop.z2 + 1)
    with pytest.raises(ValueError, match="perfectly collinear.*z1.*z2.*z4"):
        lande_arnold(df, "W", ["z1", "z2", "z3", "z4"])


def test_more_parameters_than_individuals(pop):
    small = pop.iloc[:12]
    with pytest.raises(ValueError, match="quadratic model has 10 parameters but only 12|10 parameters"):
        lande_arnold(small.iloc[:9], "W", TR)
    # linear-only analysis is possible with few individuals
    res = lande_arnold(small, "W", TR, quadratic=False)
    assert res.gamma is None and len(res.beta) == 3


def test_binary_trait_quadratic_rank_deficient(pop):
    df = pop.assign(flag=(pop.z3 > 0).astype(float))
    with pytest.raises(ValueError, match="rank deficient.*flag"):
        lande_arnold(df, "W", ["z1", "flag"])


def test_fitness_checks(pop):
    with pytest.raises(ValueError, match="zero for every individual"):
        lande_arnold(pop.assign(W=0.0), "W", TR)
    neg = pop.copy()
    neg.loc[3, "W"] = -1
    with pytest.raises(ValueError, match="1 negative values"):
        lande_arnold(neg, "W", TR)
    with pytest.raises(ValueError, match="must be 0/1"):
        lande_arnold(pop, "count", TR, fitness_type="binary")
    with pytest.raises(ValueError, match="non-integer"):
        lande_arnold(pop, "W", TR, fitness_type="count")
    with pytest.raises(ValueError, match="fitness_type"):
        lande_arnold(pop, "W", TR, fitness_type="poisson")
    # yes/no strings are accepted for binary fitness
    s = pop.assign(s=np.where(pop.surv == 1, "yes", "no"))
    a = lande_arnold(s, "s", TR, fitness_type="binary")
    b = lande_arnold(pop, "surv", TR, fitness_type="binary")
    np.testing.assert_allclose(a.beta["estimate"], b.beta["estimate"])


def test_non_numeric_and_missing_columns(pop):
    with pytest.raises(TypeError, match="trait column 'g' is not numeric"):
        lande_arnold(pop, "W", ["z1", "g"])
    with pytest.raises(TypeError, match="fitness column 'g' is not numeric"):
        lande_arnold(pop, "g", ["z1"])
    with pytest.raises(ValueError, match="columns not found.*nope"):
        lande_arnold(pop, "W", ["z1", "nope"])
    with pytest.raises(TypeError, match="DataFrame"):
        lande_arnold(pop.to_numpy(), "W", TR)
    with pytest.raises(ValueError, match="mean 0|<= 0"):
        lande_arnold(pop, "W", TR, standardize="mean")


def test_too_small_group(pop):
    df = pop.copy()
    df.loc[:5, "g"] = "tiny"
    with pytest.raises(ValueError, match="group 'tiny' of 'g' \\(n = 6\\)"):
        lande_arnold(df, "W", TR, groups="g")
    zero = pop.copy()
    zero.loc[zero.g == "a", "W"] = 0.0
    with pytest.raises(ValueError, match="group 'a'.*zero fitness"):
        lande_arnold(zero, "W", TR, groups="g")


def test_vif_warning(pop):
    rng = np.random.default_rng(0)
    df = pop.assign(z4=pop.z1 + 0.05 * rng.normal(size=len(pop)))
    with pytest.warns(SelectionWarning, match="variance inflation"):
        res = lande_arnold(df, "W", ["z1", "z2", "z4"], quadratic=False)
    assert res.vif["z4"] > 10 and any("collinearity" in n for n in res.notes)


def test_separation_warning():
    rng = np.random.default_rng(0)
    z = rng.normal(size=60)
    df = pd.DataFrame({"z": z, "x": rng.normal(size=60), "s": (z > 0).astype(int)})
    with pytest.warns(SeparationWarning, match="separation"):
        lande_arnold(df, "s", ["z", "x"], fitness_type="binary", quadratic=False)


def test_bad_options(pop):
    with pytest.raises(ValueError, match="bootstrap"):
        lande_arnold(pop, "W", TR, bootstrap=-1)
    with pytest.raises(ValueError, match="ci_method"):
        lande_arnold(pop, "W", TR, ci_method="basic")
    with pytest.raises(ValueError, match="standardize"):
        lande_arnold(pop, "W", TR, standardize="z")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lande_arnold(pop, "W", TR)  # clean data: no warnings at all
