"""Canonical analysis, response to selection and GP fitness-surface average gradients."""
import numpy as np
import pandas as pd
import pytest

from sciml.selection import canonical_analysis, lande_arnold, predicted_response

from selection_helpers import gaussian_population

TR = ["z1", "z2", "z3"]


def test_canonical_reconstructs_gamma_and_double_regression(pop):
    res = lande_arnold(pop, "W", TR, bootstrap=200, permutations=199, seed=0)
    can = res.canonical
    np.testing.assert_allclose(can.reconstruct().to_numpy(), res.gamma.to_numpy(), atol=1e-12)
    M = can.M.to_numpy()
    np.testing.assert_allclose(M.T @ M, np.eye(3), atol=1e-12)
    lam = can.eigenvalues["estimate"].to_numpy()
    assert np.all(np.diff(lam) <= 0)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(res.gamma.to_numpy())[::-1], atol=1e-12)
    # double regression of w on y and y^2 returns the eigenvalues exactly (twice the y^2 coefficients)
    import statsmodels.api as sm

    Y = can.canonical_traits(res.data[TR]).to_numpy()
    fit = sm.OLS(res.data["w"].to_numpy(), sm.add_constant(np.hstack([Y, Y ** 2]))).fit()
    np.testing.assert_allclose(2 * fit.params[4:], lam, atol=1e-10)
    np.testing.assert_allclose(can.eigenvalues["se_naive"], 2 * fit.bse[4:], rtol=1e-10)
    ev = can.eigenvalues
    assert ev["p_value"].between(1 / 200, 1).all()
    assert (ev["ci_low"] <= ev["ci_high"]).all()
    assert "permutation" in ev["method"].iloc[0]
    tab = res.table()
    assert set(tab["type"]) >= {"S", "beta", "C", "gamma", "lambda", "theta"}
    assert can.params[("lambda", "y1")] == lam[0] and can.conf_int().loc[("lambda", "y1"), "lower"] == ev["ci_low"].iloc[0]
    assert res.params[("lambda", "y1")] == lam[0] and res.pvalues[("beta", "z1")] == res.beta.loc["z1", "p_value"]
    with pytest.raises(ValueError, match="re-run lande_arnold"):
        res.conf_int(alpha=0.1)


def test_canonical_standalone_validation():
    with pytest.raises(ValueError, match="symmetric"):
        canonical_analysis(np.array([[1.0, 0.2], [0.0, 1.0]]))
    res = canonical_analysis(pd.DataFrame([[-0.2, 0.1], [0.1, 0.3]], index=["a", "b"], columns=["a", "b"]))
    assert list(res.M.index) == ["a", "b"]


def test_stabilising_selection_detected():
    # strong stabilising selection on z1 only: the most negative eigenvalue loads on z1
    df, _, gamma = gaussian_population(3000, [0.0, 0.0, 0.0], np.diag([0.8, 0.0, 0.0]), np.random.default_rng(4))
    res = lande_arnold(df, "W", TR, permutations=199, seed=1)
    ev = res.canonical.eigenvalues
    assert ev["estimate"].iloc[-1] == pytest.approx(gamma[0, 0], abs=0.08)
    assert abs(res.canonical.M.iloc[0, -1]) > 0.95
    assert ev["p_value"].iloc[-1] < 0.01


def test_predicted_response():
    G = pd.DataFrame([[0.5, 0.1], [0.1, 0.4]], index=["a", "b"], columns=["a", "b"])
    beta = pd.Series([0.2, -0.3], index=["b", "a"])
    r = predicted_response(G, beta)
    np.testing.assert_allclose(r.loc[["b", "a"]].to_numpy(), G.loc[["b", "a"], ["b", "a"]].to_numpy() @ beta.to_numpy())
    with pytest.raises(ValueError, match="positive semi-definite"):
        predicted_response(np.array([[1.0, 2.0], [2.0, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match="2 x 2"):
        predicted_response(np.eye(3), np.ones(2))


def test_surface_average_gradients_match_ols_for_quadratic_truth():
    from sciml.selection import FitnessSurface

    rng = np.random.default_rng(5)
    n = 250
    Z = rng.normal(size=(n, 2))
    W = 3 + 0.6 * Z[:, 0] - 0.2 * Z[:, 1] ** 2 + 0.1 * Z[:, 0] * Z[:, 1] + 0.3 * rng.normal(size=n)
    df = pd.DataFrame(Z, columns=["a", "b"]).assign(W=W)
    res = lande_arnold(df, "W", ["a", "b"])
    surf = FitnessSurface(n_iter=120, progress=False).fit(res.data[["a", "b"]], res.data["W"])
    beta, gamma = surf.average_gradients(n_samples=150, seed=0)
    np.testing.assert_allclose(beta["estimate"], res.beta["estimate"], atol=0.025)
    assert np.all((beta["ci_low"] - 0.01 <= res.beta["estimate"]) & (res.beta["estimate"] <= beta["ci_high"] + 0.01))
    np.testing.assert_allclose(surf.gamma_matrix_.to_numpy(), res.gamma.to_numpy(), atol=0.05)
    # posterior draws average to the gpytorch predictive mean
    draws = surf.sample(Z[:10], n_samples=3000, seed=1)
    np.testing.assert_allclose(draws.mean(0), surf.predict(Z[:10]), atol=0.03)


def test_binary_surface_agrees_with_logistic_average_gradients():
    from sciml.selection.surfaces import fitness_surface

    rng = np.random.default_rng(6)
    n = 250
    Z = rng.normal(size=(n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.0 * Z[:, 0] - 0.5 * Z[:, 1])))).astype(int)
    df = pd.DataFrame(Z, columns=["a", "b"]).assign(s=y)
    res = lande_arnold(df, "s", ["a", "b"], fitness_type="binary", quadratic=False)
    surf = fitness_surface(res, n_iter=150, n_inducing=120, progress=False)
    beta, _ = surf.average_gradients(n_samples=150, seed=0)
    js = res.average_gradients["estimate"]
    np.testing.assert_allclose(beta["estimate"], js, atol=0.12)
    assert np.all((beta["ci_low"] <= js) & (js <= beta["ci_high"]))
    p = surf.predict(Z[:5])
    assert np.all((p > 0) & (p < 1))
