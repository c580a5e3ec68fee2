"""Episodes of selection: additivity, Arnold & Wade's opportunity partition, bootstrap, bad input."""
import numpy as np
import pandas as pd
import pytest

from sciml.selection import lande_arnold, selection_episodes

TR = ["a", "b"]


def birds(seed=0, n=800, mates_count=False):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 2))
    surv = (rng.random(n) < 1 / (1 + np.exp(-(0.5 + 0.8 * Z[:, 0])))).astype(int)
    if mates_count:
        mated = np.where(surv == 1, rng.poisson(np.exp(0.2 - 0.4 * Z[:, 1])), np.nan)
    else:
        mated = np.where(surv == 1, (rng.random(n) < 1 / (1 + np.exp(-(0.2 - 0.5 * Z[:, 1])))).astype(int), np.nan)
    eggs = np.where(mated > 0, rng.poisson(np.exp(1.5 + 0.2 * Z[:, 0] + 0.1 * Z[:, 1])), np.nan)
    return pd.DataFrame(Z, columns=TR).assign(survived=surv, mated=mated, eggs=eggs)


def total_fitness(df):
    return df["survived"] * df["mated"].fillna(0) * df["eggs"].fillna(0)


@pytest.mark.parametrize("mates_count", [False, True])
def test_episodes_add_up_to_the_total_lande_arnold_analysis(mates_count):
    df = birds(mates_count=mates_count)
    res = selection_episodes(df, ["survived", "mated", "eggs"], TR)
    assert list(res.gradients.columns) == ["survived", "mated", "eggs", "total"]
    assert list(res.differentials.index) == TR
    tot = lande_arnold(df.assign(W=total_fitness(df)), "W", TR, quadratic=False)
    np.testing.assert_allclose(res.gradients["total"], tot.beta["estimate"], atol=1e-12)
    np.testing.assert_allclose(res.differentials["total"], tot.differentials["estimate"], atol=1e-12)
    for f in (res.gradients, res.differentials):
        np.testing.assert_allclose(f[["survived", "mated", "eggs"]].sum(axis=1), f["total"], atol=1e-12)
    o = res.opportunity
    np.testing.assert_allclose(o.loc[["survived", "mated", "eggs"], ["contribution", "covariance"]].to_numpy().sum(),
                               o.loc["total", "I"], atol=1e-12)
    w = total_fitness(df) / total_fitness(df).mean()
    assert o.loc["total", "I"] == pytest.approx(np.var(w), rel=1e-12)            # I = var(w)
    # survival first: its episode gradient is the Lande-Arnold gradient of survival alone
    surv = lande_arnold(df, "survived", TR, fitness_type="binary", quadratic=False)
    np.testing.assert_allclose(res.gradients["survived"], surv.beta["estimate"], atol=1e-12)
    # cumulative: survival + mating = the analysis of (survived x mated)
    sm_ = lande_arnold(df.assign(W=df["survived"] * df["mated"].fillna(0)), "W", TR, quadratic=False)
    np.testing.assert_allclose(res.gradients[["survived", "mated"]].sum(axis=1), sm_.beta["estimate"], atol=1e-12)


def test_opportunity_partition_as_arnold_and_wade():
    df = birds(seed=1, mates_count=True)
    res = selection_episodes(df, ["survived", "mated", "eggs"], TR)
    o = res.opportunity
    s = df["survived"].to_numpy(float)
    ps = s.mean()
    assert o.loc["survived", "I"] == pytest.approx(np.var(s / ps), rel=1e-12) == pytest.approx(1 / ps - 1)
    # among survivors (equal weights): I_mated = var of relative mating success
    m = df.loc[s == 1, "mated"].to_numpy(float)
    assert o.loc["mated", "I"] == pytest.approx(np.var(m / m.mean()), rel=1e-12)
    # an all-or-none first episode: no covariance term, and I(1..2) = I_1 + I_2 / P(survive)
    assert abs(o.loc["mated", "covariance"]) < 1e-12
    w12 = s * df["mated"].fillna(0).to_numpy()
    assert np.var(w12 / w12.mean()) == pytest.approx(o.loc["survived", "I"] + o.loc["mated", "I"] / ps, rel=1e-12)
    # eggs among mated birds, weighted by their number of mates: I_eggs = weighted variance
    mm = df["mated"].fillna(0).to_numpy() * s
    e = df["eggs"].fillna(0).to_numpy()
    wt = mm / mm.sum()
    ebar = wt @ e
    assert o.loc["eggs", "I"] == pytest.approx(wt @ (e / ebar - 1) ** 2, rel=1e-10)
    # mates vary among those that lay eggs: a covariance term appears, and the terms still add up
    assert abs(o.loc["eggs", "covariance"]) > 1e-4
    assert o["share"].iloc[:3].sum() == pytest.approx(1.0, abs=1e-12)
    assert res.reached.to_dict() == {"survived": 800, "mated": int(s.sum()), "eggs": int((mm > 0).sum())}


def test_within_episode_gradients_are_weighted_least_squares():
    import statsmodels.api as sm

    df = birds(seed=2, mates_count=True)
    res = selection_episodes(df, ["survived", "mated", "eggs"], TR)
    Z = df[TR].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    mm = df["survived"].to_numpy() * df["mated"].fillna(0).to_numpy()
    sel = mm > 0
    e = df["eggs"].to_numpy()[sel]
    wls = sm.WLS(e / np.average(e, weights=mm[sel]), sm.add_constant(U[sel]), weights=mm[sel]).fit()
    np.testing.assert_allclose(res.gradients_within["eggs"], wls.params[1:], rtol=1e-9)


def test_bootstrap_intervals_for_every_episode():
    df = birds(seed=3)
    res = selection_episodes(df, ["survived", "mated", "eggs"], TR, bootstrap=400, seed=0, progress=False,
                             ci_method="percentile")
    for f in (res.gradients_se, res.gradients_ci_low, res.gradients_ci_high, res.differentials_se):
        assert f.shape == (2, 4) and f.notna().all().all()
    assert (res.gradients_ci_low <= res.gradients).all().all() and (res.gradients <= res.gradients_ci_high).all().all()
    # bootstrap SD of the total gradient ~ the analytic OLS SE of the total-fitness regression
    tot = lande_arnold(df.assign(W=total_fitness(df)), "W", TR, quadratic=False)
    np.testing.assert_allclose(res.gradients_se["total"], tot.beta["se"], rtol=0.3)
    boot = res.bootstrap_samples["beta"]
    np.testing.assert_allclose(boot[:, :3, :].sum(axis=1), boot[:, 3, :], atol=1e-10)   # additive in every replicate
    assert res.opportunity_se.notna().all()
    tab = res.table()
    assert set(tab["type"]) == {"S", "beta", "I"} and "Opportunity" in res.summary()
    assert res.params[("total", "beta", "a")] == res.gradients.at["a", "total"]


def test_episode_errors_name_the_column():
    df = birds(seed=4)
    bad = df.copy()
    dead = bad.index[bad["survived"] == 0][:3]
    bad.loc[dead, "mated"] = 1                                   # mated birds that did not survive
    with pytest.raises(ValueError, match="episode column 'mated' is not nested in the previous ones: 3 individuals"):
        selection_episodes(bad, ["survived", "mated", "eggs"], TR)
    with pytest.raises(ValueError, match="fitness component 'eggs' has 1 negative"):
        neg = df.copy()
        neg.loc[neg["eggs"].notna().idxmax(), "eggs"] = -1
        selection_episodes(neg, ["survived", "mated", "eggs"], TR)
    with pytest.raises(ValueError, match="columns not found.*'clutch'"):
        selection_episodes(df, ["survived", "clutch"], TR)
    with pytest.raises(ValueError, match="column\\(s\\) \\['b'\\] have no value in any row"):
        selection_episodes(df.assign(b=np.nan), ["survived", "mated"], TR)
    with pytest.raises(ValueError, match="no individual has positive accumulated fitness after episode 'mated'"):
        selection_episodes(df.assign(mated=df["mated"] * 0), ["survived", "mated"], TR)
    with pytest.warns(Warning, match="dropped 1 of 800 rows"):
        miss = df.copy()
        miss.loc[miss.index[miss["survived"] == 1][0], "mated"] = np.nan     # reached the episode, value unknown
        selection_episodes(miss, ["survived", "mated", "eggs"], TR)
