"""result.check(): each diagnostic against an independent computation, and the advice it gives."""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.outliers_influence import variance_inflation_factor

from sciml.selection import lande_arnold


def test_clean_data_raise_no_flag(pop):
    diag = lande_arnold(pop, "W", ["z1", "z2", "z3"]).check()
    assert not diag.table.query("check in ['variance inflation factor', 'condition number', 'skewness']")["flagged"].any()
    assert "no check flagged" in str(diag) or "[ok]" in str(diag)


def test_collinearity_and_skew_flags_with_advice(pop):
    rng = np.random.default_rng(0)
    df = pop.assign(z4=pop.z1 + 0.02 * rng.normal(size=len(pop)), z5=np.exp(1.2 * rng.normal(size=len(pop))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lande_arnold(df, "W", ["z1", "z2", "z4", "z5"], quadratic=False)
    diag = res.check()
    t = diag.table.set_index(["check", "subject"])
    U = res.data[res.traits].to_numpy()
    X = sm.add_constant(U)
    for j, tr in enumerate(res.traits):                       # statsmodels' VIF on the same design
        assert t.loc[("variance inflation factor", tr), "value"] == pytest.approx(variance_inflation_factor(X, j + 1), rel=1e-8)
    assert t.loc[("variance inflation factor", "z4"), "flagged"] and "composite" in t.loc[("variance inflation factor", "z4"), "advice"]
    assert t.loc[("condition number", "linear design"), "flagged"]
    assert t.loc[("skewness", "z5"), "flagged"] and "logarithm" in t.loc[("skewness", "z5"), "advice"]
    assert t.loc[("skewness", "z5"), "value"] == pytest.approx(stats.skew(df["z5"], bias=False), rel=1e-8)
    assert not t.loc[("skewness", "z2"), "flagged"]
    assert "!!" in str(diag)


def test_influence_measures_equal_statsmodels_and_find_a_planted_outlier(pop):
    df = pop.copy()
    df.loc[7, ["z1", "W"]] = [6.0, 12.0]                     # an extreme, very fit individual
    res = lande_arnold(df, "W", ["z1", "z2", "z3"], quadratic=False)
    diag = res.check()
    inf = diag.influence
    U = res.data[res.traits].to_numpy()
    ref = sm.OLS(res.data["w"].to_numpy(), sm.add_constant(U)).fit().get_influence()
    np.testing.assert_allclose(inf.loc[res.data.index, "cooks_distance"], ref.cooks_distance[0], rtol=1e-10)
    np.testing.assert_allclose(inf.loc[res.data.index, "leverage"], ref.hat_matrix_diag, rtol=1e-10)
    np.testing.assert_allclose(inf.loc[res.data.index, "dfbetas_z1"], ref.dfbetas[:, 1], rtol=1e-10)
    assert inf.index[0] == 7                                  # most influential first
    t = diag.table.set_index(["check", "subject"])
    assert t.loc[("Cook's distance", "individuals"), "flagged"] and "7" in t.loc[("Cook's distance", "individuals"), "advice"]


def test_binary_separation_and_events_per_parameter():
    rng = np.random.default_rng(0)
    z = rng.normal(size=60)
    df = pd.DataFrame({"z": z, "x": rng.normal(size=60), "s": (z > 0).astype(int)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lande_arnold(df, "s", ["z", "x"], fitness_type="binary")
    t = res.check().table.set_index(["check", "subject"])
    assert t.loc[("separation", "logistic fit"), "flagged"] and "Firth" in t.loc[("separation", "logistic fit"), "advice"]
    n1 = min(df.s.sum(), 60 - df.s.sum())
    assert t.loc[("events per parameter", "quadratic model"), "value"] == pytest.approx(n1 / 5)


def test_overdispersed_counts_are_flagged_when_poisson_is_forced(pop):
    rng = np.random.default_rng(3)
    df = pop.assign(nb=rng.negative_binomial(1, 1 / (1 + 3 * pop["W"].to_numpy())))
    res = lande_arnold(df, "nb", ["z1", "z2", "z3"], fitness_type="count", count_model="poisson", quadratic=False)
    t = res.check().table.set_index(["check", "subject"])
    assert t.loc[("over-dispersion", "Poisson fit"), "flagged"]
    assert t.loc[("over-dispersion", "Poisson fit"), "value"] == pytest.approx(res.models["glm_linear"].dispersion)
