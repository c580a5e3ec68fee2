"""Shared helpers of the selection tests."""
import numpy as np
import pandas as pd


def gaussian_population(n, alpha, A, rng, noise_shape=4.0):
    """Traits z ~ N(0, I); expected fitness exp(alpha'z - z'Az/2); gamma-distributed noise.

    Returns (DataFrame, true beta, true gamma) for SD-standardised traits:
    beta = (I + A)^-1 alpha, gamma = (I + A)^-1 - I + beta beta'.
    """
    alpha = np.asarray(alpha, float)
    A = np.asarray(A, float)
    p = len(alpha)
    Z = rng.normal(size=(n, p))
    Wexp = np.exp(Z @ alpha - 0.5 * np.einsum("ni,ij,nj->n", Z, A, Z))
    W = Wexp * rng.gamma(noise_shape, 1.0 / noise_shape, size=n)
    df = pd.DataFrame(Z, columns=[f"z{i + 1}" for i in range(p)])
    df["W"] = W
    Sig = np.linalg.inv(np.eye(p) + A)
    beta = Sig @ alpha
    gamma = Sig - np.eye(p) + np.outer(beta, beta)
    return df, beta, gamma


def bumpus():
    """Bumpus data: sciml.datasets.load_bumpus() when available, else the bundled CSV."""
    try:
        from sciml.datasets import load_bumpus

        return load_bumpus()
    except (ImportError, AttributeError):
        from pathlib import Path

        df = pd.read_csv(Path(__file__).resolve().parents[2] / "datasets" / "bumpus" / "bumpus.csv")
        df = df.rename(columns={"alar.extent_mm": "alar_extent_mm",
                                "length_beak_and_head_mm_": "length_beak_and_head_mm"})
        df["survived"] = (df["survival"] == "yes").astype(int)
        return df


BUMPUS_TRAITS = ["total_length_mm", "alar_extent_mm", "weight_g", "length_beak_and_head_mm", "length_humerus_in"]
