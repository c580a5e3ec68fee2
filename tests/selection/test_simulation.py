"""Simulated populations with a known Gaussian fitness function.

For z ~ N(0, I) and E[W | z] = exp(alpha'z - z'Az/2), the selected phenotypes are Gaussian
with covariance (I + A)^-1, so beta = (I + A)^-1 alpha and gamma = (I + A)^-1 - I + beta beta'
(Lande & Arnold 1983); with Gaussian traits these are also the population least-squares
coefficients of the linear and quadratic regressions.
"""
import warnings

import numpy as np
import pytest
from scipy import stats

from sciml.selection import lande_arnold

from selection_helpers import gaussian_population

ALPHA = [0.3, -0.2, 0.0]
A = np.diag([0.2, 0.0, 0.3]) + 0.05


def test_recovers_known_gradients():
    df, beta, gamma = gaussian_population(20000, ALPHA, A, np.random.default_rng(0))
    res = lande_arnold(df, "W", ["z1", "z2", "z3"])
    z_b = (res.beta["estimate"] - beta) / res.beta["se"]
    assert np.all(np.abs(z_b) < 4), z_b
    np.testing.assert_allclose(res.beta["estimate"], beta, atol=0.02)
    z_g = (res.gamma.to_numpy() - gamma) / res.gamma_se.to_numpy()
    assert np.all(np.abs(z_g) < 4), z_g
    np.testing.assert_allclose(res.gamma.to_numpy(), gamma, atol=0.04)
    # differentials: S = P beta = beta (P = I); C = P* - P + SS'
    np.testing.assert_allclose(res.differentials["estimate"], beta, atol=0.02)


@pytest.mark.parametrize("ci_method", ["percentile", "bca"])
def test_bootstrap_intervals_cover_truth(ci_method):
    rng = np.random.default_rng(1)
    n_sim, hits_b, hits_g = 150, [], []
    for s in range(n_sim):
        df, beta, gamma = gaussian_population(250, ALPHA[:2], A[:2, :2], rng)
        res = lande_arnold(df, "W", ["z1", "z2"], bootstrap=300, seed=s, ci_method=ci_method, progress=False)
        hits_b.append((res.beta["ci_low"] <= beta) & (beta <= res.beta["ci_high"]))
        d = np.diag(gamma)
        hits_g.append((np.diag(res.gamma_ci_low) <= d) & (d <= np.diag(res.gamma_ci_high)))
    cov_b, cov_g = np.mean(hits_b), np.mean(hits_g)
    # 300 intervals each: binomial SD of the coverage is about 0.013 at 0.95
    assert 0.90 <= cov_b <= 0.985, cov_b
    assert 0.88 <= cov_g <= 0.985, cov_g


def test_permutation_pvalues_uniform_without_selection():
    rng = np.random.default_rng(2)
    pb, pg = [], []
    for s in range(150):
        df, _, _ = gaussian_population(60, [0.0, 0.0], np.zeros((2, 2)), rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lande_arnold(df, "W", ["z1", "z2"], permutations=199, seed=s, progress=False)
        pb += res.beta["p_value"].tolist()
        pg += res.gamma_p.to_numpy()[np.triu_indices(2)].tolist()
    for p in (np.array(pb), np.array(pg)):
        assert stats.kstest(p, "uniform").pvalue > 0.01
        assert 0.02 <= np.mean(p <= 0.05) <= 0.09
        assert p.min() >= 1 / 200


def test_permutation_detects_selection():
    df, _, _ = gaussian_population(300, ALPHA, A, np.random.default_rng(3))
    res = lande_arnold(df, "W", ["z1", "z2", "z3"], permutations=499, seed=0)
    assert res.beta.loc["z1", "p_value"] < 0.01 and res.beta.loc["z2", "p_value"] < 0.01
    assert res.beta.loc["z3", "p_value"] > 0.01
