"""A simulated multi-year field study with known selection (for demonstrations and tests).

Every bird has latent traits ``mass`` (g), ``wing`` (mm) and ``tarsus`` (mm), correlated
(``r = 0.4`` mass-wing, ``0.3`` mass-tarsus, ``0.2`` wing-tarsus), recorded once, mass with a
scale error of SD ``mass_error_sd``. Fitness has three sequential components:

* ``survived`` (0/1): ``logit P = 0.4 + year effect (SD 0.5) + (0.6 + year slope, SD 0.3) * zmass
  - 0.3 zmass^2``  (fluctuating directional and stabilising selection on mass);
* ``mated`` (0/1, survivors only): ``logit P = 0.2 + 0.7 zwing``;
* ``eggs`` (count, mated birds only): ``Poisson(exp(1.6 + 0.15 ztarsus))``;

``z`` are the latent traits in SD units. Components of birds that did not reach them are missing
(NaN); ``fitness = survived * mated * eggs`` (with missing as 0) is total fitness. A fraction
``missing_tarsus`` of tarsus values is missing completely at random.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

MEANS = np.array([25.0, 76.0, 19.5])
SDS = np.array([1.6, 2.0, 0.7])
CORR = np.array([[1.0, 0.4, 0.3], [0.4, 1.0, 0.2], [0.3, 0.2, 1.0]])


def simulate_field_study(n_years: int = 20, birds_per_year: int = 60, mass_error_sd: float = 0.8,
                         missing_tarsus: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """One row per bird: ``year, bird, mass, wing, tarsus, survived, mated, eggs, fitness``.

    The generating model is in the module docstring; ``df.attrs`` records it (including the
    per-measurement error variance of ``mass``).

    Example
    -------
    >>> df = simulate_field_study(n_years=5, birds_per_year=20, seed=1)
    >>> sorted(df.columns)[:4], len(df)
    (['bird', 'eggs', 'fitness', 'mass'], 100)
    """
    rng = np.random.default_rng(seed)
    n = n_years * birds_per_year
    year = np.repeat(np.arange(n_years), birds_per_year)
    z = rng.normal(size=(n, 3)) @ np.linalg.cholesky(CORR).T
    latent = MEANS + SDS * z
    a_y, b_y = rng.normal(0, 0.5, n_years), rng.normal(0, 0.3, n_years)
    survived = (rng.random(n) < expit(0.4 + a_y[year] + (0.6 + b_y[year]) * z[:, 0] - 0.3 * z[:, 0] ** 2)).astype(float)
    mated = np.where(survived == 1, (rng.random(n) < expit(0.2 + 0.7 * z[:, 1])).astype(float), np.nan)
    eggs = np.where(mated == 1, rng.poisson(np.exp(1.6 + 0.15 * z[:, 2])).astype(float), np.nan)
    df = pd.DataFrame({"year": 2000 + year, "bird": [f"b{i:05d}" for i in range(n)],
                       "mass": latent[:, 0] + rng.normal(0, mass_error_sd, n), "wing": latent[:, 1],
                       "tarsus": latent[:, 2], "survived": survived, "mated": mated, "eggs": eggs})
    df.loc[rng.random(n) < missing_tarsus, "tarsus"] = np.nan
    df["fitness"] = df["survived"] * df["mated"].fillna(0) * df["eggs"].fillna(0)
    df.attrs["measurement_error"] = {"mass": mass_error_sd ** 2}
    df.attrs["model"] = __doc__
    return df
