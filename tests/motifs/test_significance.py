"""Z-scores: planted motifs stand out, random graphs do not; table layout and SP normalisation."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sciml.motifs import motif_significance


def _planted_ffl_graph(n=120, n_ffl=60, seed=0):
    rng = np.random.default_rng(seed)
    G = nx.gnm_random_graph(n, 2 * n, directed=True, seed=seed)
    for _ in range(n_ffl):
        x, y, z = rng.choice(n, 3, replace=False)
        G.add_edges_from([(x, y), (y, z), (x, z)])
    return G


def test_planted_feed_forward_loops_are_significant():
    df = motif_significance(_planted_ffl_graph(), null="mutual", n_random=200, seed=0, progress=False)
    assert df.loc["030T", "z"] > 5
    assert df.loc["030T", "p_value"] <= 1 / 201 + 1e-12
    assert df["z"].idxmax() == "030T"


def test_random_graphs_have_small_z():
    zs = []
    for seed in range(4):
        G = nx.gnp_random_graph(80, 0.05, directed=True, seed=seed)
        df = motif_significance(G, null="er", n_random=200, seed=seed, progress=False)
        zs.append(df["z"].to_numpy())
    z = np.concatenate(zs)
    z = z[np.isfinite(z)]
    assert np.mean(np.abs(z)) < 1.5
    assert np.mean(z**2) < 3.0  # Z ~ N(0, 1) under the null


def test_table_columns_and_sp_norm():
    G = _planted_ffl_graph(60, 20, seed=1)
    df = motif_significance(G, size=3, null="degree", n_random=60, seed=3, progress=False)
    assert list(df.columns) == ["count", "random_mean", "random_std", "z", "p_value", "p_under", "concentration",
                                "sp", "name"]
    assert df.index.name == "motif" and list(df.index) == ["021D", "021U", "021C", "111D", "111U", "030T", "030C",
                                                            "201", "120D", "120U", "120C", "210", "300"]
    sp = df["sp"].to_numpy()
    assert np.isclose(np.nansum(sp**2), 1.0)
    assert np.isclose(df["concentration"].sum(), 1.0)
    assert ((df["p_value"] > 0) & (df["p_value"] <= 1)).all()
    again = motif_significance(G, size=3, null="degree", n_random=60, seed=3, progress=False)
    assert df.equals(again)


def test_size_four_and_validation():
    G = _planted_ffl_graph(40, 10, seed=2)
    df = motif_significance(G, size=4, null="mutual", n_random=20, seed=0, progress=False)
    assert len(df) == 199 and df.loc[204, "name"] == "bi-fan"
    with pytest.raises(ValueError, match="n_random"):
        motif_significance(G, n_random=0)
