import numpy as np
import pytest

from selection_helpers import gaussian_population


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def pop(rng):
    df, beta, gamma = gaussian_population(400, [0.3, -0.2, 0.0], np.diag([0.2, 0.0, 0.3]) + 0.05, rng)
    df["g"] = np.where(rng.random(len(df)) < 0.5, "a", "b")
    df["count"] = rng.poisson(df["W"].to_numpy() * 2)
    df["surv"] = (rng.random(len(df)) < 1 / (1 + np.exp(-(0.2 + 0.8 * df.z1 - 0.3 * df.z2 ** 2)))).astype(int)
    return df
