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


def test_all_missing_trait_is_named(pop):
    with pytest.raises(ValueError, match="column\\(s\\) \\['z2'\\] have no value in any row"):
        lande_arnold(pop.assign(z2=np.nan), "W", TR)


def test_constant_trait(pop):
    with pytest.raises(ValueError, match="trait 'c' is constant"):
        lande_arnold(pop.assign(c=3.0), "W", ["z1", "c"])


def test_perfectly_collinear_traits(pop):
    df = pop.assign(z4=2 * pop.z1 - pop.z2 + 1)
    with pytest.raises(ValueError, match="perfectly collinear.*z1.*z2.*z4"):
        lande_arnold(df, "W", ["z1", "z2", "z3", "z4"])


def test_more_parameters_than_individuals(pop):
    small = pop.iloc[:9]
    # quadratic=True demands gamma: an error naming the parameter count
    with pytest.raises(ValueError, match="quadratic model has 10 parameters but only 9 individuals"):
        lande_arnold(small, "W", TR, quadratic=True)
    # default: estimate what the data allow -- beta with its inference, gamma None, a warning with the reason
    with pytest.warns(SelectionWarning, match="gamma\\) not estimated: the quadratic model has 10 parameters"):
        res = lande_arnold(small, "W", TR, bootstrap=200, permutations=99, seed=0)
    assert res.gamma is None and res.gamma_se is None and res.canonical is None and res.average_gamma is None
    assert any("not estimated" in n for n in res.notes)
    import statsmodels.api as sm
    Z = small[TR].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    ref = sm.OLS(small["W"].to_numpy() / small["W"].mean(), sm.add_constant(U)).fit()
    np.testing.assert_allclose(res.beta["estimate"], ref.params[1:], rtol=1e-10)
    assert res.beta[["se", "ci_low", "ci_high", "p_value"]].notna().all().all()
    assert res.bootstrap_samples is not None and "gamma" not in res.bootstrap_samples
    tab = res.table()
    assert set(tab["type"]) == {"S", "beta", "C"}
    # quadratic=False: the same beta, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lin = lande_arnold(small, "W", TR, quadratic=False)
    np.testing.assert_allclose(lin.beta["estimate"], res.beta["estimate"])


def test_binary_trait_quadratic_rank_deficient(pop):
    df = pop.assign(flag=(pop.z3 > 0).astype(float))
    with pytest.raises(ValueError, match="rank deficient.*flag"):
        lande_arnold(df, "W", ["z1", "flag"], quadratic=True)
    with pytest.warns(SelectionWarning, match="not estimated: the quadratic design is rank deficient.*flag"):
        res = lande_arnold(df, "W", ["z1", "flag"])
    assert res.gamma is None and res.beta.loc["flag", "estimate"] == pytest.approx(
        lande_arnold(df, "W", ["z1", "flag"], quadratic=False).beta.loc["flag", "estimate"])


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
    df.loc[:3, "g"] = "tiny"
    with pytest.raises(ValueError, match="group 'tiny' of 'g' \\(n = 4\\)"):
        lande_arnold(df, "W", TR, groups="g")
    # 6 birds: beta is estimable in the group, gamma is not -- said for that group only
    df.loc[:5, "g"] = "tiny"
    with pytest.warns(SelectionWarning, match="group 'tiny' of 'g': quadratic gradients \\(gamma\\) not estimated"):
        res = lande_arnold(df, "W", TR, groups="g")
    assert res.groups["tiny"].gamma is None and res.groups["a"].gamma is not None and res.gamma is not None
    with pytest.raises(ValueError, match="group 'tiny' of 'g' \\(n = 6\\).*quadratic model has 10 parameters"):
        lande_arnold(df, "W", TR, groups="g", quadratic=True)
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
