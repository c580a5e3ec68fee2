"""Response to selection: the multivariate breeder's equation ``delta zbar = G beta``."""
from __future__ import annotations

import numpy as np
import pandas as pd


def predicted_response(G: np.ndarray | pd.DataFrame, beta: np.ndarray | pd.Series) -> pd.Series:
    """Predicted change in mean phenotype ``G @ beta`` (Lande 1979).

    ``G`` (additive genetic covariance matrix) must be on the same scale as the traits used for
    ``beta``: with SD-standardised gradients, give G in units of phenotypic SD (i.e. divided by
    ``sd_i * sd_j``); the response is then in phenotypic SDs per generation.

    Example
    -------
    >>> G = np.array([[0.4, 0.1], [0.1, 0.3]])
    >>> predicted_response(G, pd.Series([0.2, -0.1], index=["a", "b"])).round(3).tolist()
    [0.07, -0.01]
    """
    names = list(beta.index) if isinstance(beta, pd.Series) else None
    b = np.asarray(beta, float).ravel()
    if isinstance(G, pd.DataFrame):
        if names is not None:
            missing = [t for t in names if t not in G.index or t not in G.columns]
            if missing:
                raise ValueError(f"G lacks rows/columns for traits {missing}")
            G = G.loc[names, names]
        else:
            names = list(G.index)
    Gm = np.asarray(G, float)
    p = len(b)
    if Gm.shape != (p, p):
        raise ValueError(f"G must be {p} x {p} to match beta, got shape {Gm.shape}")
    if not np.all(np.isfinite(Gm)) or not np.all(np.isfinite(b)):
        raise ValueError("G and beta must be finite")
    if not np.allclose(Gm, Gm.T, atol=1e-10 * max(1.0, np.abs(Gm).max())):
        raise ValueError("G must be symmetric")
    if np.linalg.eigvalsh(Gm).min() < -1e-10 * max(1.0, np.abs(Gm).max()):
        raise ValueError("G must be positive semi-definite (it is a covariance matrix)")
    return pd.Series(Gm @ b, index=names or [f"z{i + 1}" for i in range(p)], name="response")
