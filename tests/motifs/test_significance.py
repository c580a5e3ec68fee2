"""Z-scores: planted motifs stand out, random graphs do not; table layout and SP normalisation."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sciml.motifs import motif_keys, motif_significance, null_census


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
    again = motif_significance(G, size=3, null="degree", n_random=60, seed=3, progress=False)
    assert df.equals(again)


def test_statistics_equal_a_direct_computation_from_the_null_counts():
    """Every column of the table, recomputed by hand (plain loops) from the same null counts."""
    G = _planted_ffl_graph(60, 20, seed=1)
    df = motif_significance(G, size=3, null="mutual", n_random=80, seed=5, progress=False)
    obs, rnd = null_census(G, size=3, null="mutual", n_random=80, seed=5, progress=False)
    assert rnd.shape == (80, 13) and obs.tolist() == df["count"].tolist()
    R = len(rnd)
    for j, key in enumerate(motif_keys(3)):
        col = [float(v) for v in rnd[:, j]]
        mean = sum(col) / R
        sd = (sum((v - mean) ** 2 for v in col) / (R - 1)) ** 0.5
        n_ge = sum(1 for v in col if v >= obs[j])
        n_le = sum(1 for v in col if v <= obs[j])
        row = df.loc[key]
        assert row["random_mean"] == pytest.approx(mean) and row["random_std"] == pytest.approx(sd)
        assert row["p_value"] == pytest.approx((1 + n_ge) / (R + 1))  # add-one empirical p (Davison & Hinkley)
        assert row["p_under"] == pytest.approx((1 + n_le) / (R + 1))
        if sd > 0:
            assert row["z"] == pytest.approx((obs[j] - mean) / sd)
        else:
            assert np.isnan(row["z"])
        assert row["concentration"] == pytest.approx(obs[j] / obs.sum())
    z = df["z"].to_numpy()
    np.testing.assert_allclose(df["sp"], z / np.sqrt(np.nansum(z ** 2)))
    # the planted FFLs: 030T is never reached by any null graph
    assert df.loc["030T", "p_value"] == pytest.approx(1 / 81) and df.loc["030T", "p_under"] == pytest.approx(1.0)


def test_empirical_p_values_are_valid_under_the_null():
    """A graph drawn from the ER null itself: P(p_value <= alpha) <= alpha (add-one p-values are
    conservative), checked over many graphs for the 021C (two-step chain) count."""
    ps = []
    for seed in range(40):
        G = nx.gnm_random_graph(40, 120, directed=True, seed=100 + seed)
        df = motif_significance(G, null="er", n_random=39, seed=seed, progress=False)
        ps.append(df.loc["021C", "p_value"])
    ps = np.array(ps)
    assert (ps <= 0.1).mean() <= 0.1 + 2 * np.sqrt(0.1 * 0.9 / 40)
    assert (ps <= 0.5).mean() == pytest.approx(0.5, abs=0.25)


def test_size_four_and_validation():
    G = _planted_ffl_graph(40, 10, seed=2)
    df = motif_significance(G, size=4, null="mutual", n_random=20, seed=0, progress=False)
    assert len(df) == 199 and df.loc[204, "name"] == "bi-fan"
    with pytest.raises(ValueError, match="n_random"):
        motif_significance(G, n_random=0)
