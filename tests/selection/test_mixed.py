"""Random effects: REML against statsmodels MixedLM, BLUPs, cluster bootstrap, GLMM, known truth, errors."""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import integrate, stats
from scipy.special import expit

from sciml.selection import SelectionWarning, lande_arnold
from sciml.selection.glmm import GLMMProblem, fit_glmm
from sciml.selection.mixed_bootstrap import MixedEngine
from sciml.selection.random_effects import build_random_effects, parse_random_effects
from sciml.selection.reml import mixed_fit

TR = ["a", "b", "c"]


def field_data(seed=7, J=25, n=900, slope_sd=0.15, site=False):
    """Years (random intercepts and slopes on ``a``), optional sites/broods; raw-unit traits."""
    rng = np.random.default_rng(seed)
    year = rng.integers(0, J, n)
    Z = rng.normal(size=(n, 3)) * [1.0, 2.0, 3.0] + [10.0, 20.0, 30.0]
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    eta = 0.25 * U[:, 0] - 0.1 * U[:, 1] - 0.1 * U[:, 2] ** 2 + rng.normal(0, 0.3, J)[year] \
        + rng.normal(0, slope_sd, J)[year] * U[:, 0]
    df = pd.DataFrame(Z, columns=TR).assign(year=1990 + year)
    if site:
        s, b = rng.integers(0, 8, n), rng.integers(0, 5, n)
        eta = eta + rng.normal(0, 0.3, 8)[s] + rng.normal(0, 0.25, (8, 5))[s, b]
        df = df.assign(site=s, brood=b)
    df["W"] = np.exp(eta) * rng.gamma(5, 0.2, n)
    return df


def tight_mixedlm(formula, d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = smf.mixedlm(formula, d, **kw)
        r = m.fit(reml=True)
        return m.fit(reml=True, method="bfgs", gtol=1e-10, maxiter=2000, start_params=r.params)


def _std(df, traits=TR):
    Z = df[traits].to_numpy()
    return pd.DataFrame((Z - Z.mean(0)) / Z.std(0, ddof=1), columns=traits, index=df.index)


QUAD = " + ".join(f"I({x}*{y})" for i, x in enumerate(TR) for y in TR[i:])


@pytest.mark.parametrize("slopes", [None, ["a"]])
def test_reml_matches_mixedlm(slopes):
    df = field_data()
    res = lande_arnold(df, "W", TR, random_effects="year", random_slopes=slopes)
    d = _std(df).assign(w=df.W / df.W.mean(), year=df.year)
    rf = "1 + a" if slopes else "1"
    ref = tight_mixedlm("w ~ a + b + c", d, groups="year", re_formula=rf)
    np.testing.assert_allclose(res.beta["estimate"], ref.fe_params.to_numpy()[1:], atol=1e-6)
    lin = res.models["lmm_linear"]
    assert lin.llf == pytest.approx(ref.llf, abs=1e-6)
    vc = res.variance_components.set_index(["group", "term"])["estimate"]
    C = ref.cov_re.to_numpy()
    assert vc[("year", "intercept")] == pytest.approx(C[0, 0], abs=1e-6)
    assert vc[("residual", "residual")] == pytest.approx(ref.scale, abs=1e-6)
    if slopes:
        assert vc[("year", "a")] == pytest.approx(C[1, 1], abs=1e-6)
        assert vc[("year", "intercept,a")] == pytest.approx(C[0, 1], abs=1e-6)
    # fixed-effect SEs: sigma^2 (X'V^-1 X)^-1 built densely from MixedLM's own estimates
    X = sm.add_constant(d[TR].to_numpy())
    V = ref.scale * np.eye(len(d))
    for g, rows in d.groupby("year").indices.items():
        Zg = np.ones((len(rows), 1)) if not slopes else np.column_stack([np.ones(len(rows)), d["a"].to_numpy()[rows]])
        V[np.ix_(rows, rows)] += Zg @ C @ Zg.T
    cov = np.linalg.inv(X.T @ np.linalg.solve(V, X))
    np.testing.assert_allclose(res.beta["se"], np.sqrt(np.diag(cov))[1:], rtol=1e-5)
    # gamma: quadratic mixed model, diagonal doubled
    refq = tight_mixedlm(f"w ~ a + b + c + {QUAD}", d, groups="year", re_formula=rf)
    q = refq.fe_params.to_numpy()[4:]
    np.testing.assert_allclose(np.diag(res.gamma), 2 * q[[0, 3, 5]], atol=2e-6)
    np.testing.assert_allclose([res.gamma.iat[0, 1], res.gamma.iat[0, 2], res.gamma.iat[1, 2]], q[[1, 2, 4]], atol=1e-6)


def test_nested_random_effects_match_mixedlm_variance_components():
    df = field_data(seed=3, site=True)
    res = lande_arnold(df, "W", TR, random_effects=["site", "brood"], quadratic=False)
    d = _std(df).assign(w=df.W / df.W.mean(), site=df.site, sb=df.site.astype(str) + "/" + df.brood.astype(str))
    ref = tight_mixedlm("w ~ a + b + c", d, groups="site", re_formula="1", vc_formula={"brood": "0 + C(sb)"})
    np.testing.assert_allclose(res.beta["estimate"], ref.fe_params.to_numpy()[1:], atol=1e-6)
    vc = res.variance_components.set_index("group")["estimate"]
    assert vc["site"] == pytest.approx(ref.cov_re.iat[0, 0], abs=1e-6)
    assert vc["brood"] == pytest.approx(ref.vcomp[0], abs=1e-6)
    assert res.models["lmm_linear"].llf == pytest.approx(ref.llf, abs=1e-6)
    assert set(res.blups["group"]) == {"site", "brood"} and (res.blups["level"].str.count("/") >= 0).all()


def test_blups_match_mixedlm_and_shrink():
    df = field_data(seed=11, J=30, n=700)
    res = lande_arnold(df, "W", TR, random_effects="year", quadratic=False)
    fit = res.models["lmm_linear"]
    d = _std(df).assign(w=df.W / df.W.mean(), year=df.year)
    ref = tight_mixedlm("w ~ a + b + c", d, groups="year")
    bl = res.blups.set_index("level")
    for g, v in ref.random_effects.items():
        assert bl.loc[str(g), "blup"] == pytest.approx(float(v.iloc[0]), abs=1e-6)
    # closed form for random intercepts: b_j = n_j s2b / (s2 + n_j s2b) * mean_j(w - X beta)
    s2b = res.variance_components.set_index("group").loc["year", "estimate"]
    s2 = fit.scale
    X = sm.add_constant(d[TR].to_numpy())
    r = d["w"].to_numpy() - X @ fit.params
    for g, rows in d.groupby("year").indices.items():
        k = len(rows) * s2b / (s2 + len(rows) * s2b)
        assert bl.loc[str(g), "blup"] == pytest.approx(k * r[rows].mean(), rel=1e-8, abs=1e-12)
    # fewer individuals -> more shrinkage -> larger prediction-error SD; SDs below the prior SD
    sizes = d.groupby("year").size().rename(lambda g: str(g))
    pe = bl["blup_se"]
    assert stats.spearmanr(sizes.loc[pe.index], pe).statistic < -0.9
    assert (pe < np.sqrt(s2b)).all()
    # prediction-error covariance: the inverse of Henderson's mixed-model equations, built densely
    Zd = pd.get_dummies(d["year"]).to_numpy(float)
    Cm = np.block([[X.T @ X, X.T @ Zd], [Zd.T @ X, Zd.T @ Zd + np.eye(Zd.shape[1]) * s2 / s2b]])
    Ci = np.linalg.inv(Cm) * s2
    np.testing.assert_allclose(pe.to_numpy(), np.sqrt(np.diag(Ci)[4:]), rtol=1e-7)
    lvl = bl["estimate"].to_numpy()            # level-specific intercept = intercept + b_j
    pe_sum = np.sqrt(Ci[0, 0] + np.diag(Ci)[4:] + 2 * Ci[0, 4:])
    np.testing.assert_allclose(lvl, fit.params[0] + bl["blup"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(bl["se"].to_numpy(), pe_sum, rtol=1e-7)


def test_per_year_gradients_shrink_and_beat_separate_regressions():
    rng = np.random.default_rng(3)
    J, n = 40, 1200
    year = rng.integers(0, J, n)
    U = rng.normal(size=(n, 2))
    slope = 0.2 + rng.normal(0, 0.15, J)                        # true per-year gradient of x (fluctuating)
    W = 3.0 + slope[year] * U[:, 0] - 0.1 * U[:, 1] + rng.normal(0, 0.3, J)[year] + rng.normal(0, 0.6, n)
    df = pd.DataFrame(U, columns=["x", "y"]).assign(W=W, year=year)
    res = lande_arnold(df, "W", ["x", "y"], random_effects="year", random_slopes=["x"], quadratic=False)
    sdx, m = df.x.std(ddof=1), df.W.mean()
    truth = pd.Series(slope * sdx / m, index=[str(j) for j in range(J)])   # relative fitness, SD units
    per = res.blups[res.blups["coef"] == "x"].set_index("level")
    d = _std(df, ["x", "y"]).assign(w=df.W / m, year=df.year.astype(str))
    raw = pd.Series({g: sm.OLS(s["w"], sm.add_constant(s[["x", "y"]])).fit().params["x"] for g, s in d.groupby("year")})
    est, raw = per["estimate"], raw.loc[per.index]
    assert ((est - truth.loc[est.index]) ** 2).mean() < 0.85 * ((raw - truth.loc[est.index]) ** 2).mean()
    assert est.var() < raw.var()                                 # shrunk towards the mean gradient
    z = (est - truth.loc[est.index]) / per["se"]
    assert np.mean(np.abs(z) < 1.96) >= 0.85                     # prediction intervals cover the year gradients
    t = res.random_effects_test.set_index("test")
    assert t.filter(like="fluctuate", axis=0)["p_value"].iloc[0] < 1e-3
    sd_slope = np.sqrt(res.variance_components.set_index("term").loc["x", "estimate"])
    assert sd_slope == pytest.approx(0.15 * sdx / m, rel=0.35)


def test_known_truth_gradients_and_variance_components():
    rng = np.random.default_rng(4)
    J, n = 200, 8000
    year = rng.integers(0, J, n)
    U = rng.normal(size=(n, 2))
    sb = 0.3
    w = 3.0 + 0.2 * U[:, 0] - 0.1 * U[:, 1] + rng.normal(0, sb, J)[year] + rng.normal(0, 0.5, n)
    df = pd.DataFrame(U, columns=["x", "y"]).assign(W=w, year=year)
    res = lande_arnold(df, "W", ["x", "y"], random_effects="year", quadratic=False, bootstrap=300, seed=0,
                       ci_method="percentile", progress=False)
    m = df.W.mean()
    sdx = df[["x", "y"]].std(ddof=1).to_numpy()
    truth = np.array([0.2, -0.1]) * sdx / m                       # relative fitness, SD-standardised traits
    z = (res.beta["estimate"] - truth) / res.beta["se"]
    assert np.all(np.abs(z) < 4), z
    vc = res.variance_components.set_index("group")
    assert abs(vc.loc["year", "estimate"] - sb ** 2 / m ** 2) < 4 * vc.loc["year", "se"]
    assert abs(vc.loc["residual", "estimate"] - 0.25 / m ** 2) < 4 * vc.loc["residual", "se"]


@pytest.mark.parametrize("slopes", [None, ["a"]])
def test_cluster_bootstrap_replicate_equals_statsmodels_on_the_resample(slopes):
    df = field_data(seed=5, J=15, n=450)
    g, s = parse_random_effects("year", slopes, TR)
    Z = df[TR].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    re = build_random_effects(df, g, s, U, TR)
    w = df.W.to_numpy() / df.W.mean()
    Xl = sm.add_constant(U)
    Xq = np.column_stack([Xl] + [U[:, i] * U[:, j] for i in range(3) for j in range(i, 3)])
    fl = mixed_fit(Xl, w, re, ["intercept"] + TR)
    fq = mixed_fit(Xq, w, re, [f"x{k}" for k in range(Xq.shape[1])])
    eng = MixedEngine(df.W.to_numpy(), Z, "sd", re, True, fl.theta, fq.theta)
    one = eng.estimate(np.ones((1, 15)))
    np.testing.assert_allclose(one["beta"][0], fl.params[1:], atol=1e-10)
    K = eng.draw(np.random.default_rng(1), 2)
    out = eng.estimate(K)
    for b in range(2):
        parts = [df[df.year.astype(str) == re.cluster_names[j]].assign(copy=f"{j}_{r}")
                 for j in range(15) for r in range(int(K[b, j]))]
        rs = pd.concat(parts, ignore_index=True)
        d = _std(rs).assign(w=rs.W / rs.W.mean(), copy=rs["copy"])
        ref = tight_mixedlm("w ~ a + b + c", d, groups="copy", re_formula="1 + a" if slopes else "1")
        np.testing.assert_allclose(out["beta"][b], ref.fe_params.to_numpy()[1:], atol=1e-6)
        C = ref.cov_re.to_numpy()
        np.testing.assert_allclose(out["vc"][b], np.r_[C[np.tril_indices(len(C))], ref.scale], atol=1e-6)
        refq = tight_mixedlm(f"w ~ a + b + c + {QUAD}", d, groups="copy", re_formula="1 + a" if slopes else "1")
        np.testing.assert_allclose(np.diag(out["gamma"][b]), 2 * refq.fe_params.to_numpy()[[4, 7, 9]], atol=2e-6)


def test_glmm_likelihood_against_numerical_integration_and_glm():
    rng = np.random.default_rng(5)
    J, n = 30, 600
    yr = rng.integers(0, J, n)
    U = rng.normal(size=(n, 2))
    y = (rng.random(n) < expit(-0.2 + 0.5 * U[:, 0] - 0.3 * U[:, 1] + rng.normal(0, 0.7, J)[yr])).astype(float)
    g, s = parse_random_effects("year", None, ["x", "y"])
    re = build_random_effects(pd.DataFrame({"year": yr}), g, s, U, ["x", "y"])
    X = sm.add_constant(U)
    phi = np.array([-0.1, 0.4, -0.2, 0.6])
    ref = 0.0
    for j in range(J):
        rows = np.flatnonzero(re.cluster == j)
        off = X[rows] @ phi[:3]
        val = integrate.quad(lambda u: np.exp(np.sum(y[rows] * (off + phi[3] * u) - np.logaddexp(0, off + phi[3] * u)))
                             * stats.norm.pdf(u), -12, 12, epsabs=0, epsrel=1e-13, limit=200)[0]
        ref += np.log(val)
    assert GLMMProblem(X, y, re, "binomial", 25).loglik(phi)[0][0] == pytest.approx(ref, abs=1e-9)
    assert abs(GLMMProblem(X, y, re, "binomial", 1).loglik(phi)[0][0] - ref) < 0.5      # Laplace: close
    for fam, yy in (("binomial", y), ("poisson", rng.poisson(np.exp(0.2 + 0.3 * U[:, 0])).astype(float))):
        glm = sm.GLM(yy, X, family=sm.families.Binomial() if fam == "binomial" else sm.families.Poisson())
        assert GLMMProblem(X, yy, re, fam).loglik(np.r_[phi[:3], 0.0])[0][0] == pytest.approx(glm.loglike(phi[:3]), abs=1e-9)
    # the exact Laplace gradient in beta equals central differences of the Laplace log-likelihood
    lap = GLMMProblem(X, y, re, "binomial", 1)
    ll, grad, _ = lap.laplace_beta_gradient(phi)
    fd = [(lap.loglik(phi + e)[0][0] - lap.loglik(phi - e)[0][0]) / 2e-6 for e in np.eye(4)[:3] * 1e-6]
    assert ll == pytest.approx(lap.loglik(phi)[0][0], abs=1e-10)
    np.testing.assert_allclose(grad, fd, atol=1e-6)
    fit = fit_glmm(X, y, re, "binomial", ["intercept", "x", "y"], nAGQ=15)
    # the maximum: the quadrature log-likelihood is not improved by perturbing any parameter
    prob = GLMMProblem(X, y, re, "binomial", 15)
    best = prob.loglik(np.r_[fit.params, fit.theta])[0][0]
    for k in range(4):
        e = np.zeros(4)
        e[k] = 1e-3
        assert prob.loglik(np.r_[fit.params, fit.theta] + e)[0][0] <= best + 1e-8
        assert prob.loglik(np.r_[fit.params, fit.theta] - e)[0][0] <= best + 1e-8


def test_binary_fitness_glmm_pvalues_and_known_truth():
    rng = np.random.default_rng(8)
    J, n = 60, 3000
    yr = rng.integers(0, J, n)
    U = rng.normal(size=(n, 2))
    y = (rng.random(n) < expit(0.1 + 0.6 * U[:, 0] + rng.normal(0, 0.8, J)[yr])).astype(int)
    df = pd.DataFrame(U, columns=["x", "y"]).assign(s=y, year=yr)
    res = lande_arnold(df, "s", ["x", "y"], fitness_type="binary", random_effects="year", quadratic=False)
    gl = res.models["glmm_linear"]
    assert abs(gl.params[1] - 0.6 * df.x.std()) < 4 * gl.bse[1]
    assert abs(gl.params[2]) < 4 * gl.bse[2]
    assert abs(np.sqrt(gl.cov_re["year"].iat[0, 0]) - 0.8) < 0.25
    np.testing.assert_allclose(res.beta["p_value"], gl.pvalues[1:])
    assert res.beta.loc["x", "p_value"] < 1e-6 and "GLMM" in res.methods["beta"]


def test_mixed_bootstrap_in_lande_arnold_and_report_pieces():
    df = field_data(seed=9, J=20, n=600)
    res = lande_arnold(df, "W", TR, random_effects="year", random_slopes={"year": ["a"]}, bootstrap=200, seed=0,
                       progress=False)
    assert "cluster bootstrap" in res.methods["beta"] and res.bootstrap_samples["beta"].shape == (200, 3)
    assert (res.beta["ci_low"] < res.beta["estimate"]).all() and (res.beta["estimate"] < res.beta["ci_high"]).all()
    vc = res.variance_components
    assert vc[["se", "ci_low", "ci_high"]].notna().all().all()
    assert res.canonical is not None and res.canonical.eigenvalues["se"].notna().all()
    s = res.summary()
    assert "Variance components" in s and "Per-level gradients" in s and "random effects: year" in s
    tab = res.table()
    assert (tab["type"] == "vc").sum() == 4
    assert res.to_dict()["blups"][0]["group"] == "year"
    assert res.params[("beta", "a")] == res.beta.loc["a", "estimate"]


def test_random_effect_errors():
    df = field_data(seed=1, J=10, n=300)
    with pytest.raises(ValueError, match="random-effect column 'one' has a single level"):
        lande_arnold(df.assign(one=1), "W", TR, random_effects="one")
    with pytest.raises(ValueError, match="every level of the random-effect column 'id' holds a single individual"):
        lande_arnold(df.assign(id=np.arange(len(df))), "W", TR, random_effects="id")
    with pytest.raises(ValueError, match="random slopes among 'year' for \\['zz'\\]"):
        lande_arnold(df, "W", TR, random_effects="year", random_slopes=["zz"])
    with pytest.raises(ValueError, match="columns not found.*nope"):
        lande_arnold(df, "W", TR, random_effects="nope")
    with pytest.raises(ValueError, match="groups= and random_effects= cannot be combined"):
        lande_arnold(df.assign(g="x"), "W", TR, random_effects="year", groups="g")
    with pytest.raises(ValueError, match="permutations are not available with random_effects"):
        lande_arnold(df, "W", TR, random_effects="year", permutations=99)
    with pytest.raises(ValueError, match="random_slopes needs random_effects"):
        lande_arnold(df, "W", TR, random_slopes=["a"])
    with pytest.warns(SelectionWarning, match="only 3 levels"):
        lande_arnold(df.assign(y3=df.year % 3), "W", TR, random_effects="y3", quadratic=False)
    with pytest.warns(SelectionWarning, match="dropped 2 of 300 rows.*'year': 2"):
        bad = df.astype({"year": float})
        bad.loc[[0, 1], "year"] = np.nan
        lande_arnold(bad, "W", TR, random_effects="year", quadratic=False)
