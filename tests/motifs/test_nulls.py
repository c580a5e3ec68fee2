"""Null models preserve what they promise exactly, randomise, are seeded, never loop forever,
and record the engine that drew them (an engine asked for by name never falls back)."""
from __future__ import annotations


import networkx as nx
import numpy as np
import pytest

import sciml.motifs.engine as engine_mod
from sciml.motifs import motif_significance, randomize


def _profile(G):
    mutual = {v: sum(1 for u in G.successors(v) if G.has_edge(u, v)) for v in G}
    return {v: (G.in_degree(v), G.out_degree(v), mutual[v]) for v in G}


def _graph(seed=0, n=60, p=0.1, p_mutual=0.4):
    rng = np.random.default_rng(seed)
    G = nx.gnp_random_graph(n, p, directed=True, seed=seed)
    for u, v in list(G.edges()):
        if rng.random() < p_mutual:
            G.add_edge(v, u)
    return G


@pytest.fixture(params=["numba", "numpy"])
def engine(request):
    if request.param == "numba" and not engine_mod.HAVE_NUMBA:
        pytest.skip("numba not installed")
    return request.param


def test_mutual_null_preserves_degrees_and_mutual_edges(engine):
    for seed in range(3):
        G = _graph(seed)
        H = randomize(G, null="mutual", seed=seed, engine=engine)
        assert H.graph["engine"] == engine
        assert _profile(H) == _profile(G)  # in, out and mutual degree of every node
        assert nx.number_of_selfloops(H) == 0 and H.number_of_edges() == G.number_of_edges()
        assert H.graph["switches_achieved"] > G.number_of_edges()
        assert len(set(H.edges()) & set(G.edges())) < 0.6 * G.number_of_edges()


def test_degree_null_preserves_in_out_degrees(engine):
    G = _graph(5)
    H = randomize(G, null="degree", seed=1, engine=engine)
    assert dict(G.in_degree()) == dict(H.in_degree()) and dict(G.out_degree()) == dict(H.out_degree())
    assert nx.number_of_selfloops(H) == 0 and H.number_of_edges() == G.number_of_edges()


def test_large_graph_bitpacked_path():
    G = _graph(1, n=2100, p=0.002, p_mutual=0.3)  # n > 2048: bit-packed adjacency
    H = randomize(G, null="mutual", seed=0, n_switches_per_edge=2, engine="numpy")
    assert _profile(H) == _profile(G)


def test_er_null_same_size():
    G = _graph(2)
    H = randomize(G, null="er", seed=0)
    assert H.number_of_edges() == G.number_of_edges() and nx.number_of_selfloops(H) == 0
    assert set(H.nodes()) == set(G.nodes())


def test_seeded_and_input_untouched(engine):
    G = _graph(3)
    before = sorted(G.edges())
    a = randomize(G, seed=42, engine=engine)
    b = randomize(G, seed=42, engine=engine)
    c = randomize(G, seed=43, engine=engine)
    assert sorted(a.edges()) == sorted(b.edges()) != sorted(c.edges())
    assert sorted(G.edges()) == before


def test_engines_draw_different_streams_and_say_so():
    if not engine_mod.HAVE_NUMBA:
        pytest.skip("numba not installed")
    G = _graph(4)
    a = randomize(G, seed=7, engine="numba")
    b = randomize(G, seed=7, engine="numpy")
    assert (a.graph["engine"], b.graph["engine"]) == ("numba", "numpy")
    assert sorted(a.edges()) != sorted(b.edges())  # same seed, another random stream
    assert _profile(a) == _profile(b) == _profile(G)
    dfa = motif_significance(G, n_random=30, seed=0, progress=False, engine="numba")
    dfb = motif_significance(G, n_random=30, seed=0, progress=False, engine="numpy")
    assert dfa.attrs["engine"] == "numba" and dfb.attrs["engine"] == "numpy"
    assert dfa["count"].equals(dfb["count"]) and not dfa["random_mean"].equals(dfb["random_mean"])
    assert motif_significance(G, n_random=5, seed=0, progress=False).attrs["engine"] == "numba"  # auto


def test_without_numba_auto_records_numpy_and_named_engine_raises(monkeypatch):
    monkeypatch.setattr(engine_mod, "HAVE_NUMBA", False)
    G = _graph(5)
    assert randomize(G, seed=0).graph["engine"] == "numpy"
    df = motif_significance(G, n_random=10, seed=0, progress=False)
    assert df.attrs["engine"] == "numpy"
    np.testing.assert_array_equal(
        df["random_mean"], motif_significance(G, n_random=10, seed=0, progress=False, engine="numpy")["random_mean"])
    for call in (lambda: randomize(G, seed=0, engine="numba"),
                 lambda: motif_significance(G, n_random=10, progress=False, engine="numba")):
        with pytest.raises(ImportError, match="engine='numba' was requested"):
            call()
    with pytest.raises(ValueError, match="engine must be one of"):
        randomize(G, engine="gpu")


@pytest.mark.parametrize("null", ["mutual", "degree"])
def test_unrandomisable_graph_reports_switches(null, engine):
    G = nx.complete_graph(6, create_using=nx.DiGraph)  # every dyad is mutual: nothing can move
    with pytest.warns(RuntimeWarning, match="0 edge switches"):
        H = randomize(G, null=null, seed=0, engine=engine)
    assert H.graph["switches_achieved"] == 0 and H.graph["switches_attempted"] > 0
    assert sorted(H.edges()) == sorted(G.edges())
    star = nx.DiGraph([(0, i) for i in range(1, 8)])
    with pytest.warns(RuntimeWarning):
        randomize(star, null=null, seed=0, engine=engine)


def test_bad_null_name():
    with pytest.raises(ValueError, match="null must be one of"):
        randomize(_graph(), null="configuration")
