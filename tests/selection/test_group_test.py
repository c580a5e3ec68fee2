"""The test of equal gradients between groups: statsmodels agreement, size under H0, power."""
import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from sciml.selection import lande_arnold
from sciml.selection.gradients import prepare_data
from sciml.selection.group_test import group_test

TR = ["z1", "z2", "z3"]


def _population(rng, n_per_group, beta_b=(0.3, -0.2, 0.0)):
    """Two groups; linear fitness with additive normal noise; group b's gradients are ``beta_b``."""
    Z = rng.normal(size=(2 * n_per_group, 3))
    g = np.repeat(["a", "b"], n_per_group)
    B = np.where((g == "a")[:, None], [0.3, -0.2, 0.0], beta_b)
    W = 2.0 + np.sum(B * Z, axis=1) + 0.5 * rng.normal(size=len(g))
    return pd.DataFrame(Z, columns=TR).assign(W=np.maximum(W, 0.0), g=g)


def test_f_and_lr_tests_equal_statsmodels(pop):
    res = lande_arnold(pop, "W", TR, groups="g")
    gt = res.group_test.set_index("gradients")
    d = res.data.assign(g=res.data["g"].astype(str))
    # beta: F-test of group x trait interactions (within-group relative fitness, group intercepts)
    full = smf.ols("w ~ 0 + C(g) + C(g):(z1 + z2 + z3)", d).fit()
    restr = smf.ols("w ~ 0 + C(g) + z1 + z2 + z3", d).fit()
    F, p, df1 = full.compare_f_test(restr)
    assert gt.loc["beta", "df"] == df1 == 3 and gt.loc["beta", "df_resid"] == full.df_resid
    np.testing.assert_allclose([gt.loc["beta", "statistic"], gt.loc["beta", "p_value"]], [F, p], rtol=1e-9)
    # gamma: the same with all quadratic terms by group (linear terms by group in both models)
    q = " + ".join(f"I({a}*{b})" for i, a in enumerate(TR) for b in TR[i:])
    full = smf.ols(f"w ~ 0 + C(g) + C(g):(z1 + z2 + z3) + C(g):({q})", d).fit()
    restr = smf.ols(f"w ~ 0 + C(g) + C(g):(z1 + z2 + z3) + {q}", d).fit()
    F, p, df1 = full.compare_f_test(restr)
    assert gt.loc["gamma", "df"] == df1 == 6
    np.testing.assert_allclose([gt.loc["gamma", "statistic"], gt.loc["gamma", "p_value"]], [F, p], rtol=1e-9)
    # binary fitness: likelihood-ratio test of the logistic models
    rb = lande_arnold(pop, "surv", TR, fitness_type="binary", groups="g", quadratic=False)
    lr_row = rb.group_test.set_index("gradients").loc["beta"]
    d = rb.data.assign(g=rb.data["g"].astype(str), surv=pop.loc[rb.data.index, "surv"])
    lf = smf.glm("surv ~ 0 + C(g) + C(g):(z1 + z2 + z3)", d, family=sm.families.Binomial()).fit()
    lr = smf.glm("surv ~ 0 + C(g) + z1 + z2 + z3", d, family=sm.families.Binomial()).fit()
    stat = 2 * (lf.llf - lr.llf)
    np.testing.assert_allclose([lr_row["statistic"], lr_row["p_value"]], [stat, stats.chi2.sf(stat, 3)], rtol=1e-6)


def test_size_under_h0_and_power_against_a_planted_difference():
    rng = np.random.default_rng(11)
    n_sim = 400
    p_null = []
    for _ in range(n_sim):
        prep = prepare_data(_population(rng, 60), "W", TR, groups="g")
        p_null.append(group_test(prep, quadratic=False, permutations=0, seed=None)["p_value"].iloc[0])
    p_null = np.array(p_null)
    # rejection rate at 5 %: binomial(400, 0.05) has SD 0.011; allow 3 SD either side
    rate = np.mean(p_null < 0.05)
    assert 0.017 <= rate <= 0.083, rate
    assert stats.kstest(p_null, "uniform").pvalue > 0.01
    # planted difference: beta_z1 0.3 -> 0.7 in group b
    hits = []
    for _ in range(100):
        prep = prepare_data(_population(rng, 60, beta_b=(0.7, -0.2, 0.0)), "W", TR, groups="g")
        hits.append(group_test(prep, quadratic=False, permutations=0, seed=None)["p_value"].iloc[0] < 0.05)
    assert np.mean(hits) > 0.9, np.mean(hits)


def test_permutation_test_of_group_labels_agrees_with_f_test():
    rng = np.random.default_rng(5)
    df = _population(rng, 80, beta_b=(0.55, -0.2, 0.0))
    res = lande_arnold(df, "W", TR, groups="g", quadratic=False, permutations=999, seed=0, progress=False)
    row = res.group_test.iloc[0]
    # with normal errors the permutation p-value estimates the F-test p-value (MC SD ~ sqrt(p(1-p)/999))
    se = np.sqrt(row["p_value"] * (1 - row["p_value"]) / 999) + 1e-3
    assert abs(row["p_permutation"] - row["p_value"]) < 4 * se + 0.01, (row["p_permutation"], row["p_value"])
