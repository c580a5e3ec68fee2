"""Signed FFL types, sign-shuffle enrichment, Onnela intensity and coherence."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sciml.motifs import ffl_types, motif_intensity, signed_ffl_significance


def _ffl(sxy, syz, sxz):
    G = nx.DiGraph()
    G.add_edges_from([("x", "y", {"sign": sxy}), ("y", "z", {"sign": syz}), ("x", "z", {"sign": sxz})])
    return G


@pytest.mark.parametrize("signs,kind", [((1, 1, 1), "C1"), ((-1, 1, -1), "C2"), ((1, -1, -1), "C3"),
                                        ((-1, -1, 1), "C4"), ((1, -1, 1), "I1"), ((-1, -1, -1), "I2"),
                                        ((1, 1, -1), "I3"), ((-1, 1, 1), "I4")])
def test_ffl_type_table(signs, kind):
    c = ffl_types(_ffl(*signs))
    assert c[kind] == 1 and sum(c[k] for k in c if len(k) == 2) == 1
    assert c["coherent" if kind[0] == "C" else "incoherent"] == 1


def test_induced_vs_all_embeddings_and_weight_signs():
    G = nx.DiGraph()
    G.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 1.0), (0, 2, -1.0), (2, 0, 1.0)])  # 120C: not an induced FFL
    assert ffl_types(G)["coherent"] + ffl_types(G)["incoherent"] == 0
    assert ffl_types(G, induced=False)["I3"] == 1
    with pytest.raises(ValueError, match="sign"):
        ffl_types(nx.DiGraph([(0, 1), (1, 2), (0, 2)]))


def test_coherent_enrichment_against_sign_shuffle():
    rng = np.random.default_rng(0)
    G = nx.gnm_random_graph(80, 240, directed=True, seed=0)
    for e in G.edges:
        G.edges[e]["sign"] = int(rng.choice([-1, 1]))
    for _ in range(60):  # planted coherent type-1 FFLs
        x, y, z = rng.choice(80, 3, replace=False)
        for e in ((x, y), (y, z), (x, z)):
            G.add_edge(*e, sign=1)
    df = signed_ffl_significance(G, n_random=300, seed=0)
    assert df.loc["C1", "z"] > 3 and df.loc["coherent", "z"] > 2
    assert df.loc["I1":"I4", "count"].sum() + df.loc["C1":"C4", "count"].sum() == df.loc[["coherent", "incoherent"], "count"].sum()
    shuffled = nx.DiGraph(G)
    signs = [d["sign"] for *_, d in G.edges(data=True)]
    for e, s in zip(shuffled.edges, rng.permutation(signs)):
        shuffled.edges[e]["sign"] = int(s)
    assert abs(signed_ffl_significance(shuffled, n_random=300, seed=1).loc["coherent", "z"]) < 3


def test_onnela_intensity_and_coherence():
    G = nx.DiGraph()
    G.add_weighted_edges_from([(0, 1, 2.0), (1, 2, 0.5), (0, 2, -2.0), (3, 4, 2.0), (4, 5, 2.0)])
    df = motif_intensity(G)
    # FFL: |w|/max = 1, 0.25, 1 -> I = 0.25^(1/3), Q = I / mean(1, .25, 1)
    assert df.loc["030T", "count"] == 1
    assert np.isclose(df.loc["030T", "intensity"], 0.25 ** (1 / 3))
    assert np.isclose(df.loc["030T", "coherence"], 0.25 ** (1 / 3) / 0.75)
    assert df.loc["021C", "count"] == 1 and np.isclose(df.loc["021C", "coherence"], 1.0)
