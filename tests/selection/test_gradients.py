"""Point estimates and analytic inference agree with statsmodels on the same design (1e-10)."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from sciml.selection import gamma_from_quadratic, lande_arnold, relative_fitness, standardize_traits
from sciml.selection.gradients import design, prepare_data
from sciml.selection.average import average_gradients
from sciml.selection.bootstrap import MomentEngine

TR = ["z1", "z2", "z3"]


def _designs(df, traits, std="sd"):
    Z = df[traits].to_numpy(float)
    U = (Z - Z.mean(0)) / (Z.std(0, ddof=1) if std == "sd" else (Z.mean(0) if std == "mean" else 1.0))
    quad = [U[:, i] * U[:, j] for i in range(len(traits)) for j in range(i, len(traits))]
    Xl = sm.add_constant(U)
    Xq = np.column_stack([Xl] + quad)
    return U, Xl, Xq


def test_ols_matches_statsmodels(pop):
    res = lande_arnold(pop, "W", TR)
    U, Xl, Xq = _designs(pop, TR)
    w = pop["W"].to_numpy() / pop["W"].mean()
    lin = sm.OLS(w, Xl).fit()
    quad = sm.OLS(w, Xq).fit()
    np.testing.assert_allclose(res.beta["estimate"], lin.params[1:], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.beta["se"], lin.bse[1:], rtol=1e-10)
    np.testing.assert_allclose(res.beta["p_value"], lin.pvalues[1:], rtol=1e-8, atol=1e-12)
    ci = lin.conf_int()[1:]
    np.testing.assert_allclose(res.beta[["ci_low", "ci_high"]].to_numpy(), ci, rtol=1e-10)
    # gamma: the diagonal doubled (estimate and SE), off-diagonals as estimated; p-values untouched
    p = len(TR)
    k = 1 + p
    for i in range(p):
        for j in range(i, p):
            f = 2.0 if i == j else 1.0
            assert res.gamma.iat[i, j] == pytest.approx(f * quad.params[k], rel=1e-10, abs=1e-12)
            assert res.gamma.iat[j, i] == res.gamma.iat[i, j]
            assert res.gamma_se.iat[i, j] == pytest.approx(f * quad.bse[k], rel=1e-10)
            assert res.gamma_p.iat[i, j] == pytest.approx(quad.pvalues[k], rel=1e-8, abs=1e-12)
            k += 1


def test_doubling_convention_explicit():
    # exact quadratic surface w = 1 + 0.5 z1^2 - 0.3 z1 z2 (no noise): gamma_11 = 1.0, gamma_12 = -0.3
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 2))
    z = (z - z.mean(0)) / z.std(0, ddof=1)
    W = 10 + 0.5 * z[:, 0] ** 2 - 0.3 * z[:, 0] * z[:, 1]
    df = pd.DataFrame(z, columns=["a", "b"]).assign(W=W)
    res = lande_arnold(df, "W", ["a", "b"])
    m = W.mean()
    assert res.gamma.loc["a", "a"] == pytest.approx(2 * 0.5 / m, rel=1e-9)
    assert res.gamma.loc["a", "b"] == pytest.approx(-0.3 / m, rel=1e-9)
    assert res.gamma.loc["b", "b"] == pytest.approx(0.0, abs=1e-10)
    g = gamma_from_quadratic(np.array([0.5, -0.3, 0.0]), 2)
    np.testing.assert_array_equal(g, [[1.0, -0.3], [-0.3, 0.0]])


def test_glm_pvalues_match_statsmodels(pop):
    res = lande_arnold(pop, "surv", TR, fitness_type="binary")
    U, Xl, Xq = _designs(pop, TR)
    y = pop["surv"].to_numpy(float)
    lo = sm.Logit(y, Xl).fit(disp=0, method="newton", tol=1e-14, maxiter=100)
    lq = sm.Logit(y, Xq).fit(disp=0, method="newton", tol=1e-14, maxiter=100)
    np.testing.assert_allclose(res.models["glm_linear"].params, lo.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.beta["p_value"], lo.pvalues[1:], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(res.gamma_p.to_numpy()[np.triu_indices(3)], lq.pvalues[4:], rtol=1e-6, atol=1e-10)
    # the gradients themselves stay OLS on relative fitness (Lande & Arnold)
    w = y / y.mean()
    np.testing.assert_allclose(res.beta["estimate"], sm.OLS(w, Xl).fit().params[1:], rtol=1e-10)
    # Janzen & Stern: alpha * mean(p(1-p)) / mean(p)
    pr = lo.predict(Xl)
    js = lo.params[1:] * np.mean(pr * (1 - pr)) / np.mean(pr)
    np.testing.assert_allclose(res.average_gradients["estimate"], js, rtol=1e-6)


def test_count_fitness_poisson_and_negbin(pop):
    res = lande_arnold(pop, "count", TR, fitness_type="count")
    U, Xl, Xq = _designs(pop, TR)
    y = pop["count"].to_numpy(float)
    fam = res.models["glm_linear"].family
    assert fam in ("poisson", "negbin")
    if fam == "poisson":
        ref = sm.GLM(y, Xl, family=sm.families.Poisson()).fit()
        np.testing.assert_allclose(res.beta["p_value"], ref.pvalues[1:], rtol=1e-8, atol=1e-12)
    # overdispersed counts switch to the negative binomial
    rng = np.random.default_rng(3)
    df = pop.copy()
    df["nb"] = rng.negative_binomial(1, 1 / (1 + 3 * df["W"].to_numpy()))
    res2 = lande_arnold(df, "nb", TR, fitness_type="count")
    assert res2.models["glm_linear"].family == "negbin"
    ref = sm.NegativeBinomial(df["nb"].to_numpy(float), Xl).fit(disp=0, maxiter=200)
    np.testing.assert_allclose(res2.beta["p_value"], ref.pvalues[1:4], rtol=1e-5, atol=1e-10)


def test_differentials_and_conventions(pop):
    res = lande_arnold(pop, "W", TR)
    w = pop["W"].to_numpy() / pop["W"].mean()
    Z = pop[TR].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)                     # R's scale(): n - 1
    S = np.array([np.cov(w, U[:, j])[0, 1] for j in range(3)])
    np.testing.assert_allclose(res.differentials["estimate"], S, rtol=1e-12)
    C = np.array([[np.cov(w, U[:, i] * U[:, j])[0, 1] for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(res.C.to_numpy(), C, rtol=1e-10, atol=1e-14)
    # beta = P^-1 S
    P = np.cov(U, rowvar=False)
    np.testing.assert_allclose(res.beta["estimate"], np.linalg.solve(P, S), rtol=1e-10)
    # mean standardisation: gradient = raw gradient * trait mean (Hereford et al. 2004)
    df = pop.assign(z1=pop.z1 + 10, z2=pop.z2 + 5, z3=pop.z3 + 8)
    raw = lande_arnold(df, "W", TR, standardize=None, quadratic=False)
    ms = lande_arnold(df, "W", TR, standardize="mean", quadratic=False)
    np.testing.assert_allclose(ms.beta["estimate"], raw.beta["estimate"] * df[TR].mean().to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(standardize_traits(Z, "sd"), U)
    np.testing.assert_allclose(relative_fitness(np.array([1.0, 3, 2, 2]), np.array([0, 0, 1, 1])), [0.5, 1.5, 1, 1])


def test_groups_relative_fitness_within_group(pop):
    res = lande_arnold(pop, "W", TR, groups="g")
    w = res.data["w"]
    np.testing.assert_allclose(w.groupby(res.data["g"]).mean(), [1.0, 1.0])
    assert set(res.groups) == {"a", "b"}
    sub = pop[pop.g == "a"]
    alone = lande_arnold(sub, "W", TR)
    np.testing.assert_allclose(res.groups["a"].beta["estimate"], alone.beta["estimate"], rtol=1e-12)
    gt = res.group_test
    assert list(gt["gradients"]) == ["beta", "gamma"]     # values checked in test_group_test.py
    # pooled beta = OLS with group intercepts on within-group relative fitness
    U, Xl, _ = _designs(pop, TR)
    D = pd.get_dummies(pop["g"]).to_numpy(float)
    ref = sm.OLS(w.to_numpy(), np.column_stack([D, U])).fit()
    np.testing.assert_allclose(res.beta["estimate"], ref.params[2:], rtol=1e-10)


@pytest.mark.parametrize("std", ["sd", "mean", None])
def test_moment_engine_equals_analysis_of_resample(pop, std):
    df = pop.assign(z1=pop.z1 + 6, z2=pop.z2 + 4, z3=pop.z3 + 5)
    prep = prepare_data(df, "W", TR, standardize=std, groups="g")
    eng = MomentEngine(prep.W, prep.Z_raw, prep.group_codes, std)
    full = lande_arnold(df, "W", TR, standardize=std, groups="g")
    o = eng.estimate(np.ones((1, len(df))))
    np.testing.assert_allclose(o["beta"][0], full.beta["estimate"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(o["gamma"][0], full.gamma.to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(o["S"][0], full.differentials["estimate"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(o["C"][0], full.C.to_numpy(), rtol=1e-9, atol=1e-12)
    # resampling counts as weights == analysing the resampled rows
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(df), len(df))
    K = np.bincount(idx, minlength=len(df))[None, :].astype(float)
    o = eng.estimate(K)
    again = lande_arnold(df.iloc[idx].reset_index(drop=True), "W", TR, standardize=std, groups="g")
    np.testing.assert_allclose(o["beta"][0], again.beta["estimate"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(o["gamma"][0], again.gamma.to_numpy(), rtol=1e-8, atol=1e-11)


def test_average_gradient_formula_for_quadratic_logistic():
    # numerical check of E[d2W/dz2]/E[W] against finite differences of the fitted function
    rng = np.random.default_rng(1)
    U = rng.normal(size=(50, 2))
    X = design(U, quadratic=True)
    th = np.array([0.1, 0.5, -0.2, -0.3, 0.1, 0.2])
    b, g = average_gradients(th, X, U, "logit", 1, np.zeros(50, int), True)
    W = lambda Z: 1 / (1 + np.exp(-(design(Z, quadratic=True) @ th)))  # noqa: E731
    h = 1e-4
    e = np.eye(2) * h
    grad = np.stack([(W(U + e[i]) - W(U - e[i])) / (2 * h) for i in range(2)], 1)
    hess = np.array([[((W(U + e[i] + e[j]) - W(U + e[i] - e[j]) - W(U - e[i] + e[j]) + W(U - e[i] - e[j])) / (4 * h * h)).mean()
                      for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(b, grad.mean(0) / W(U).mean(), rtol=1e-6)
    np.testing.assert_allclose(g, hess / W(U).mean(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("quadratic", [False, True])
def test_glm_average_engine_equals_analysis_of_resample(pop, quadratic):
    from sciml.selection.average import GLMAverageEngine

    key = "gamma_avg" if quadratic else "beta_avg"
    get = (lambda r: r.average_gamma.to_numpy()) if quadratic else (lambda r: r.average_gradients["estimate"].to_numpy())
    prep = prepare_data(pop, "surv", TR, fitness_type="binary", groups="g")
    eng = GLMAverageEngine(prep.W, prep.Z_raw, prep.group_codes, "sd", "logit", quadratic)
    full = lande_arnold(pop, "surv", TR, fitness_type="binary", groups="g")
    np.testing.assert_allclose(eng.estimate(np.ones((1, len(pop))))[key][0], get(full), rtol=1e-7, atol=1e-9)
    idx = np.random.default_rng(8).integers(0, len(pop), len(pop))
    K = np.bincount(idx, minlength=len(pop))[None, :].astype(float)
    again = lande_arnold(pop.iloc[idx].reset_index(drop=True), "surv", TR, fitness_type="binary", groups="g")
    np.testing.assert_allclose(eng.estimate(K)[key][0], get(again), rtol=1e-6, atol=1e-8)
    res = lande_arnold(pop, "surv", TR, fitness_type="binary", bootstrap=300, seed=0, progress=False)
    assert "bootstrap" in res.methods["beta_avg"]
    ag = res.average_gradients
    assert (ag["ci_low"] < ag["estimate"]).all() and (ag["estimate"] < ag["ci_high"]).all()


def test_poisson_pvalues_on_equidispersed_counts():
    rng = np.random.default_rng(21)
    n = 600
    Z = rng.normal(size=(n, 3))
    y = rng.poisson(np.exp(0.4 + 0.25 * Z[:, 0] - 0.15 * Z[:, 1] - 0.1 * Z[:, 2] ** 2))
    df = pd.DataFrame(Z, columns=TR).assign(eggs=y)
    res = lande_arnold(df, "eggs", TR, fitness_type="count")
    gl = res.models["glm_linear"]
    assert gl.family == "poisson" and gl.dispersion < 1.5         # the Poisson branch, not the negative binomial
    U, Xl, Xq = _designs(df, TR)
    ref = sm.GLM(y.astype(float), Xl, family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(res.beta["p_value"], ref.pvalues[1:], rtol=1e-8)
    np.testing.assert_allclose(gl.params, ref.params, rtol=1e-8)
    refq = sm.GLM(y.astype(float), Xq, family=sm.families.Poisson()).fit()
    pq = refq.pvalues[4:]
    np.testing.assert_allclose(np.diag(res.gamma_p), [pq[0], pq[3], pq[5]], rtol=1e-8)
    np.testing.assert_allclose([res.gamma_p.iat[0, 1], res.gamma_p.iat[0, 2], res.gamma_p.iat[1, 2]],
                               [pq[1], pq[2], pq[4]], rtol=1e-8)
    for j in range(3):                                           # S: univariate Poisson Wald p-values
        uj = sm.GLM(y.astype(float), sm.add_constant(U[:, j] - U[:, j].mean()), family=sm.families.Poisson()).fit()
        assert res.differentials["p_value"].iloc[j] == pytest.approx(uj.pvalues[1], rel=1e-8)
    # log link: E[dW/dz] / E[W] of the linear Poisson fit is its slope exactly
    np.testing.assert_allclose(res.average_gradients["estimate"], ref.params[1:], rtol=1e-8)
    np.testing.assert_allclose(res.average_gradients["se"], ref.bse[1:], rtol=1e-4)
    # the truth is inside a generous interval: log-linear slope 0.25 on z1
    assert abs(res.average_gradients.loc["z1", "estimate"] - 0.25) < 4 * res.average_gradients.loc["z1", "se"]
