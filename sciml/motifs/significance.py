"""Motif statistics against null models: Z-scores, empirical p-values, concentrations and
significance profiles (Milo et al., Science 2002; Milo et al., Science 2004)."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from .census import census_vector, graph_to_arrays, motif_keys, motif_name
from .engine import resolve_engine
from .nulls import _check_null, _warn_switches, null_arrays

__all__ = ["null_census", "motif_significance", "significance_table", "significance_profile"]


def null_census(
    G: nx.DiGraph,
    size: int = 3,
    null: str = "mutual",
    n_random: int = 1000,
    seed: int | None = 0,
    n_switches_per_edge: float = 10.0,
    progress: bool | None = None,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Motif counts of ``G`` and of ``n_random`` null graphs.

    Returns ``(observed, random)`` with shapes ``(n_classes,)`` and ``(n_random, n_classes)``
    in the order of :func:`sciml.motifs.motif_keys`. The random graphs are never built
    as networkx objects (edge arrays go straight to the census). ``engine`` runs both the
    null model and the census (:mod:`sciml.motifs.engine`).

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.gnp_random_graph(30, 0.1, directed=True, seed=0)
    >>> obs, rnd = null_census(G, n_random=20, progress=False)
    >>> rnd.shape
    (20, 13)
    """
    _check_null(null)
    if not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random must be a positive integer, got {n_random!r}")
    engine = resolve_engine(engine)
    src, dst, n, _ = graph_to_arrays(G, min_nodes=size)
    observed = census_vector(src, dst, n, size, engine)
    if progress is None:
        from sciml._runtime import quiet_progress

        progress = not quiet_progress() and n_random >= 50
    rows = []
    min_ach = None
    for s, d, _att, ach in null_arrays(src, dst, n, null, int(n_random), seed, n_switches_per_edge, progress, engine):
        rows.append(census_vector(s, d, n, size, engine))
        min_ach = ach if min_ach is None else min(min_ach, ach)
    if null != "er" and min_ach is not None:
        _warn_switches(min_ach, len(src), null)
    return observed, np.vstack(rows)


def significance_table(observed: np.ndarray, random: np.ndarray, keys: list) -> pd.DataFrame:
    """Turn observed and null counts into the table of :func:`motif_significance`."""
    observed = np.asarray(observed, dtype=float)
    random = np.asarray(random, dtype=float)
    R = random.shape[0]
    mean = random.mean(axis=0)
    std = random.std(axis=0, ddof=1) if R > 1 else np.zeros_like(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (observed - mean) / std, np.nan)
    p_over = (1 + (random >= observed).sum(axis=0)) / (R + 1)
    p_under = (1 + (random <= observed).sum(axis=0)) / (R + 1)
    total = observed.sum()
    conc = observed / total if total > 0 else np.full_like(observed, np.nan)
    sp = significance_profile(z)
    df = pd.DataFrame(
        {
            "count": observed.astype(np.int64),
            "random_mean": mean,
            "random_std": std,
            "z": z,
            "p_value": p_over,
            "p_under": p_under,
            "concentration": conc,
            "sp": sp,
            "name": [motif_name(k) for k in keys],
        },
        index=pd.Index(keys, name="motif"),
    )
    return df


def significance_profile(z: np.ndarray) -> np.ndarray:
    """SP_i = Z_i / sqrt(sum_j Z_j^2) over the finite Z-scores (NaN stays NaN; Milo et al. 2004)."""
    z = np.asarray(z, dtype=float)
    norm = np.sqrt(np.nansum(z**2))
    if norm == 0 or not np.isfinite(norm):
        return np.where(np.isfinite(z), 0.0, np.nan)
    return z / norm


def motif_significance(
    G: nx.DiGraph,
    size: int = 3,
    null: str = "mutual",
    n_random: int = 1000,
    seed: int | None = 0,
    n_switches_per_edge: float = 10.0,
    progress: bool | None = None,
    engine: str = "auto",
) -> pd.DataFrame:
    """Over- and under-represented motifs of ``G`` compared with randomised graphs.

    Parameters
    ----------
    G:
        Directed graph (self-loops ignored).
    size:
        3 (13 triad classes) or 4 (199 classes keyed by mfinder ID).
    null:
        ``"mutual"``, ``"degree"`` or ``"er"`` (see :func:`sciml.motifs.randomize`).
    n_random:
        Number of random graphs.
    seed:
        Seed; results are reproducible for a given seed.
    n_switches_per_edge:
        Attempted edge switches per edge for each random graph.
    progress:
        Show a progress bar (default: when ``n_random >= 50`` unless ``SCIML_QUIET=1``).
    engine:
        ``"auto"`` (numba when installed, else numpy), ``"numba"`` or ``"numpy"``
        (:mod:`sciml.motifs.engine`). The engines draw different random graphs for the same
        seed; the one used is recorded in ``df.attrs["engine"]``. A named engine that cannot
        run raises ``ImportError`` (no silent fallback).

    Returns
    -------
    pandas.DataFrame
        Indexed by motif key, with columns ``count`` (in ``G``), ``random_mean``,
        ``random_std`` (ddof=1), ``z`` = (count - mean) / std (NaN where std = 0),
        ``p_value`` = (1 + #random >= count) / (n_random + 1) (over-representation),
        ``p_under`` (the same for under-representation), ``concentration`` (count over all
        connected subgraphs of that size in ``G``), ``sp`` (significance profile
        Z_i / sqrt(sum_j Z_j^2)) and ``name``. ``df.attrs`` records the settings (``size``,
        ``null``, ``n_random``, ``seed``, ``n_switches_per_edge``, ``engine``).

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.gnp_random_graph(40, 0.1, directed=True, seed=0)
    >>> df = motif_significance(G, n_random=100, progress=False)
    >>> list(df.columns[:4])
    ['count', 'random_mean', 'random_std', 'z']
    """
    engine = resolve_engine(engine)
    observed, random = null_census(G, size, null, n_random, seed, n_switches_per_edge, progress, engine)
    df = significance_table(observed, random, motif_keys(size))
    df.attrs.update(size=size, null=null, n_random=int(n_random), seed=seed, n_switches_per_edge=n_switches_per_edge,
                    engine=engine)
    return df
