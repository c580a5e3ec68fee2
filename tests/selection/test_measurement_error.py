"""Measurement error: Hermite corrections, known-truth recovery, attenuation, repeatability, errors."""
import numpy as np
import pandas as pd
import pytest

from sciml.selection import lande_arnold
from sciml.selection.measurement import ErrorsInVariablesEngine, hermite, individuals_with_known_error

COV = np.array([[1.0, 0.4], [0.4, 1.0]])


def latent_population(rng, n):
    X = rng.normal(size=(n, 2)) @ np.linalg.cholesky(COV).T
    W = 2.0 + 0.3 * X[:, 0] - 0.2 * X[:, 1] - 0.15 * X[:, 0] ** 2 + 0.1 * X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, np.maximum(W, 0.0)


def test_hermite_polynomials_are_unbiased():
    rng = np.random.default_rng(0)
    S = np.array([[0.5, 0.2, 0.0], [0.2, 0.3, 0.1], [0.0, 0.1, 0.4]])
    x = np.array([0.7, -1.2, 0.4])
    e = rng.multivariate_normal(np.zeros(3), S, size=400000)
    u = x + e
    for idx in [(0,), (0, 1), (1, 1), (0, 0, 1), (0, 1, 2), (0, 0, 1, 1), (1, 1, 1, 1), (0, 1, 1, 2)]:
        est = hermite(idx, u, np.broadcast_to(S, (len(u), 3, 3))).mean()
        assert est == pytest.approx(np.prod(x[list(idx)]), abs=0.03), idx


def test_no_error_equals_least_squares():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(300, 2)) * [2, 1] + 5
    W = np.exp(0.2 * Z[:, 0] - 0.1 * (Z[:, 1] - 5) ** 2) * rng.gamma(4, 0.25, 300)
    df = pd.DataFrame(Z, columns=["a", "b"]).assign(W=W)
    for std in ("sd", "mean", None):
        ref = lande_arnold(df, "W", ["a", "b"], standardize=std)
        res = lande_arnold(df, "W", ["a", "b"], standardize=std, measurement_error={"a": 0.0})
        np.testing.assert_allclose(res.beta["estimate"], ref.beta["estimate"], atol=1e-12)
        np.testing.assert_allclose(res.beta_naive["estimate"], ref.beta["estimate"], atol=1e-12)
        np.testing.assert_allclose(res.gamma.to_numpy(), ref.gamma.to_numpy(), atol=1e-12)
        np.testing.assert_allclose(res.C.to_numpy(), ref.C.to_numpy(), atol=1e-12)
        np.testing.assert_allclose(res.differentials["estimate"], ref.differentials["estimate"], atol=1e-12)


def test_known_truth_corrected_and_naive_attenuated_as_theory_predicts():
    rng = np.random.default_rng(2)
    n = 4000
    X, W = latent_population(rng, n)
    err = np.array([0.6, 0.3])
    Z = X + rng.normal(size=(n, 2)) * np.sqrt(err)
    df = pd.DataFrame(Z, columns=["a", "b"]).assign(W=W)
    res = lande_arnold(df, "W", ["a", "b"], standardize=None, measurement_error={"a": err[0], "b": err[1]},
                       bootstrap=400, seed=0, ci_method="percentile", progress=False)
    # the truth: least-squares gradients of the latent traits (population values)
    Xb, Wb = latent_population(np.random.default_rng(99), 400000)
    w = Wb / Wb.mean()
    Xc = Xb - Xb.mean(0)
    beta_true = np.linalg.solve(np.cov(Xb.T), Xc.T @ (w - 1) / (len(w) - 1))
    D = np.column_stack([np.ones(len(w)), Xb, Xb[:, 0] ** 2, Xb[:, 0] * Xb[:, 1], Xb[:, 1] ** 2])
    c = np.linalg.lstsq(D, w, rcond=None)[0]
    gamma_true = np.array([[2 * c[3], c[4]], [c[4], 2 * c[5]]])
    z = (res.beta["estimate"].to_numpy() - beta_true) / res.beta["se"].to_numpy()
    assert np.all(np.abs(z) < 4), z
    zg = (res.gamma.to_numpy() - gamma_true) / res.gamma_se.to_numpy()
    assert np.all(np.abs(zg) < 4), zg
    # naive OLS: beta_naive = P_z^-1 P_x beta (raw units) -- attenuated, and the corrected estimate is not
    Pz = COV + np.diag(err)
    naive_theory = np.linalg.solve(Pz, COV @ beta_true)
    zn = (res.beta_naive["estimate"].to_numpy() - naive_theory) / res.beta_naive["se"].to_numpy()
    assert np.all(np.abs(zn) < 4), zn
    assert abs(res.beta_naive.loc["a", "estimate"]) < abs(beta_true[0]) - 3 * res.beta_naive.loc["a", "se"]
    assert np.all(res.beta["ci_low"].to_numpy() <= beta_true) and np.all(beta_true <= res.beta["ci_high"].to_numpy())
    rep = res.repeatability
    np.testing.assert_allclose(rep["error_variance"], err)
    np.testing.assert_allclose(rep["repeatability"], 1 / (1 + err), atol=0.03)


def test_repeated_measures_estimate_error_and_repeatability():
    rng = np.random.default_rng(3)
    n = 1500
    X, W = latent_population(rng, n)
    err_sd = np.array([0.8, 0.5])
    k = rng.integers(1, 5, n)
    rows = [[f"id{i}", W[i], *(X[i] + rng.normal(size=2) * err_sd)] for i in range(n) for _ in range(k[i])]
    long = pd.DataFrame(rows, columns=["bird", "W", "a", "b"])
    res = lande_arnold(long, "W", ["a", "b"], individual="bird", standardize=None, bootstrap=300, seed=1,
                       ci_method="percentile", progress=False)
    assert res.n == n and res.individual == "bird"
    rep = res.repeatability
    np.testing.assert_allclose(rep["error_variance"], err_sd ** 2, rtol=0.08)
    true_R = 1 / (1 + err_sd ** 2)
    assert np.all((rep["repeatability_ci_low"] <= true_R + 0.01) & (true_R - 0.01 <= rep["repeatability_ci_high"]))
    # independent check of the repeatability: one-way ANOVA by hand for trait a
    g = long.groupby("bird")["a"]
    k_i, means = g.size(), g.mean()
    N, m = len(long), len(k_i)
    msw = ((long["a"] - long["bird"].map(means)) ** 2).sum() / (N - m)
    msa = (k_i * (means - long["a"].mean()) ** 2).sum() / (m - 1)
    n0 = (N - (k_i ** 2).sum() / N) / (m - 1)
    va = (msa - msw) / n0
    assert rep.loc["a", "repeatability"] == pytest.approx(va / (va + msw), rel=1e-10)
    assert rep.loc["a", "error_variance"] == pytest.approx(msw, rel=1e-10)
    # corrected beta on the latent traits vs the truth from a large latent sample
    Xb, Wb = latent_population(np.random.default_rng(99), 400000)
    w = Wb / Wb.mean()
    beta_true = np.linalg.solve(np.cov(Xb.T), (Xb - Xb.mean(0)).T @ (w - 1) / (len(w) - 1))
    z = (res.beta["estimate"].to_numpy() - beta_true) / res.beta["se"].to_numpy()
    assert np.all(np.abs(z) < 4), z


def test_engine_bootstrap_counts_equal_analysis_of_the_resample():
    rng = np.random.default_rng(4)
    X, W = latent_population(rng, 200)
    ind = individuals_with_known_error(W, X + rng.normal(size=X.shape) * 0.5, ["a", "b"], {"a": 0.25, "b": 0.25})
    eng = ErrorsInVariablesEngine(ind, "sd", True)
    idx = rng.integers(0, 200, 200)
    K = np.bincount(idx, minlength=200)[None].astype(float)
    df = pd.DataFrame(ind.Z[idx], columns=["a", "b"]).assign(W=ind.W[idx])
    again = lande_arnold(df, "W", ["a", "b"], measurement_error={"a": 0.25, "b": 0.25})
    o = eng.estimate(K)
    np.testing.assert_allclose(o["beta"][0], again.beta["estimate"], rtol=1e-10)
    np.testing.assert_allclose(o["gamma"][0], again.gamma.to_numpy(), rtol=1e-9, atol=1e-12)


def test_measurement_error_bad_input():
    rng = np.random.default_rng(5)
    X, W = latent_population(rng, 100)
    df = pd.DataFrame(X, columns=["a", "b"]).assign(W=W, id=np.arange(100))
    with pytest.raises(ValueError, match="measurement-error variance of trait 'a' must be a finite number >= 0"):
        lande_arnold(df, "W", ["a", "b"], measurement_error={"a": -0.1})
    with pytest.raises(ValueError, match="names \\['c'\\], which are not traits"):
        lande_arnold(df, "W", ["a", "b"], measurement_error={"c": 0.1})
    with pytest.raises(ValueError, match="measurement error of trait 'b'.*not smaller than their observed variance"):
        lande_arnold(df, "W", ["a", "b"], measurement_error={"b": 5.0})
    with pytest.raises(ValueError, match="no individual of 'id' has repeated measurements"):
        lande_arnold(df, "W", ["a", "b"], individual="id")
    long = pd.concat([df, df.assign(W=df.W + 1.0)])
    with pytest.raises(ValueError, match="fitness column 'W' differs between rows of the same individual"):
        lande_arnold(long, "W", ["a", "b"], individual="id")
    with pytest.raises(ValueError, match="either measurement_error= .* or individual="):
        lande_arnold(df, "W", ["a", "b"], individual="id", measurement_error={"a": 0.1})
    with pytest.raises(TypeError, match="measurement_error must be a dict"):
        lande_arnold(df, "W", ["a", "b"], measurement_error=[0.1, 0.2])
