"""Multiple imputation: Rubin's rules, the complete-case identity, MCAR coverage, errors."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sciml.selection import lande_arnold
from sciml.selection.imputation import rubin

TRUE_BETA = np.array([0.3, -0.2]) / 3.0      # raw-unit gradients of relative fitness (mean fitness 3)


def population(rng, n):
    X = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], n)
    W = 3.0 + 0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.5 * rng.normal(size=n)
    return pd.DataFrame(X, columns=["a", "b"]).assign(W=W)


def test_rubins_rules_by_hand():
    est = np.array([[1.0, 2.0], [1.2, 2.1], [0.9, 1.8], [1.1, 2.0]])
    se = np.array([[0.10, 0.2], [0.12, 0.2], [0.11, 0.25], [0.10, 0.2]])
    r = rubin(est, se, df_complete=50)
    m = 4
    for j in range(2):
        qbar, ubar, b = est[:, j].mean(), (se[:, j] ** 2).mean(), est[:, j].var(ddof=1)
        t = ubar + (1 + 1 / m) * b
        lam = (1 + 1 / m) * b / t
        nu_old = (m - 1) / lam ** 2
        nu_obs = (50 + 1) / (50 + 3) * 50 * (1 - lam)
        assert r["estimate"][j] == pytest.approx(qbar) and r["se"][j] == pytest.approx(np.sqrt(t))
        assert r["df"][j] == pytest.approx(1 / (1 / nu_old + 1 / nu_obs))


def test_no_missing_values_returns_the_complete_case_result_exactly():
    df = population(np.random.default_rng(0), 200)
    a = lande_arnold(df, "W", ["a", "b"], bootstrap=200, seed=3, progress=False)
    b = lande_arnold(df, "W", ["a", "b"], bootstrap=200, seed=3, progress=False, missing="impute")
    for attr in ("beta", "differentials", "gamma", "gamma_se", "C"):
        pd.testing.assert_frame_equal(getattr(a, attr), getattr(b, attr))
    assert b.imputations == 0 and b.missing_information is None


def test_imputed_analysis_pools_and_reports_missing_information():
    rng = np.random.default_rng(1)
    df = population(rng, 300)
    df.loc[rng.random(300) < 0.3, "a"] = np.nan
    df.loc[rng.random(300) < 0.1, "b"] = np.nan                   # two incomplete traits: chained equations
    res = lande_arnold(df, "W", ["a", "b"], standardize=None, missing="impute", imputations=10, seed=2)
    assert res.imputations == 10 and res.n == 300                 # no row lost
    mi = res.missing_information.set_index(["type", "term"])
    assert 0.05 < mi.loc[("beta", "a"), "fmi"] < 0.8 and mi.loc[("beta", "a"), "df"] < 297
    assert "pooled over 10 imputations" in res.methods["beta"]
    with pytest.warns(Warning, match="dropped"):
        cc = lande_arnold(df, "W", ["a", "b"], standardize=None)
    # imputation recovers information: SE of beta_b smaller than complete-case
    assert res.beta.loc["b", "se"] < cc.beta.loc["b", "se"]
    # binary fitness: p-values pool the logistic Wald tests
    rb = lande_arnold(df.assign(s=(df.W > 3).astype(int)), "s", ["a", "b"], fitness_type="binary", missing="impute",
                      imputations=5, seed=0)
    assert "pooled Wald of the GLM" in rb.methods["beta"]


@pytest.mark.slow
def test_mcar_intervals_cover_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    hits = []
    for s in range(120):
        df = population(rng, 200)
        df.loc[rng.random(200) < 0.3, "a"] = np.nan                # MCAR
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lande_arnold(df, "W", ["a", "b"], standardize=None, quadratic=False, missing="impute",
                               imputations=5, seed=s)
        hits.append((res.beta["ci_low"].to_numpy() <= TRUE_BETA) & (TRUE_BETA <= res.beta["ci_high"].to_numpy()))
    cover = np.mean(hits)
    # 240 intervals: binomial SD of the coverage ~0.014 at 0.95
    assert 0.90 <= cover <= 0.99, cover
    assert stats.binomtest(int(np.sum(hits)), 240, 0.95).pvalue > 0.001


def test_imputation_errors():
    df = population(np.random.default_rng(2), 100)
    df.loc[:5, "a"] = np.nan
    with pytest.raises(ValueError, match="imputations must be an integer >= 2"):
        lande_arnold(df, "W", ["a", "b"], missing="impute", imputations=1)
    with pytest.raises(ValueError, match="permutation p-values cannot be pooled"):
        lande_arnold(df, "W", ["a", "b"], missing="impute", permutations=99)
    with pytest.raises(ValueError, match="missing='impute' cannot be combined with groups="):
        lande_arnold(df.assign(g="x"), "W", ["a", "b"], missing="impute", groups="g")
    with pytest.raises(ValueError, match="missing must be one of"):
        lande_arnold(df, "W", ["a", "b"], missing="mean")
    with pytest.raises(ValueError, match="column\\(s\\) \\['b'\\] have no value in any row"):
        lande_arnold(df.assign(b=np.nan), "W", ["a", "b"], missing="impute")
