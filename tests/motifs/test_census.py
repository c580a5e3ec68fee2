"""Motif census: 3-node counts equal networkx's triadic census; 4-node counts equal an
independent brute-force counter and igraph's motifs_randesu (classes matched by isomorphism);
both engines (compiled numba, vectorised numpy) give those counts."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

import sciml.motifs.census as census
import sciml.motifs.census_numpy as census_numpy
import sciml.motifs.engine as engine_mod
from sciml.motifs import MOTIF_NAMES, TRIAD_CODES, motif_census, motif_graph, motif_keys, triad_census

ENGINES = ["numba", "numpy"]


@pytest.fixture(params=ENGINES)
def engine(request):
    if request.param == "numba" and not engine_mod.HAVE_NUMBA:
        pytest.skip("numba not installed")
    return request.param


def _random_digraph(rng, n, p, p_mutual=0.0):
    """G(n, p) plus extra reciprocation: each edge gets its reverse with probability p_mutual."""
    G = nx.gnp_random_graph(n, p, directed=True, seed=int(rng.integers(1 << 30)))
    for u, v in list(G.edges()):
        if rng.random() < p_mutual:
            G.add_edge(v, u)
    return G


GRAPH_KINDS = [(0.03, 0.0), (0.1, 0.0), (0.5, 0.0), (0.9, 0.0), (0.1, 0.8), (0.3, 1.0)]


@pytest.mark.parametrize("p,p_mutual", GRAPH_KINDS)
@pytest.mark.parametrize("variant", ["numba", "numpy-dense", "numpy-sparse"])
def test_triads_match_networkx(p, p_mutual, variant, monkeypatch):
    engine, _, layout = variant.partition("-")
    if engine == "numba" and not engine_mod.HAVE_NUMBA:
        pytest.skip("numba not installed")
    if layout == "sparse":  # exercise the sorted-key (large-graph) code path on small graphs
        monkeypatch.setattr(census_numpy._Skeleton, "DENSE_MAX", 0)
    rng = np.random.default_rng(int(p * 1000) + int(p_mutual * 10))
    for _ in range(6):
        n = int(rng.integers(3, 45))
        G = _random_digraph(rng, n, p, p_mutual)
        if G.number_of_edges() == 0:
            continue
        assert triad_census(G, engine=engine) == dict(nx.triadic_census(G))


def test_triads_match_networkx_larger_sparse(engine):
    G = _random_digraph(np.random.default_rng(3), 300, 0.02, 0.3)
    ours = motif_census(G, size=3, engine=engine)
    ref = nx.triadic_census(G)
    assert ours == {k: ref[k] for k in TRIAD_CODES}


def test_triads_with_hubs_and_isolated_nodes(engine):
    """Rows longer than the insertion-sort limit, isolated nodes and a fully mutual clique."""
    rng = np.random.default_rng(5)
    G = _random_digraph(rng, 200, 0.01, 0.3)
    G.add_edges_from((0, v) for v in range(1, 120))  # hub: skeleton row of > 100 entries
    G.add_edges_from((v, 1) for v in range(50, 150, 2))
    G.add_edges_from((u, v) for u in range(190, 195) for v in range(190, 195) if u != v)
    G.add_nodes_from(range(200, 230))  # isolated
    assert triad_census(G, engine=engine) == dict(nx.triadic_census(G))


def _brute_mfinder_id(A):
    k = len(A)
    best = None
    for perm in itertools.permutations(range(k)):
        bits = "".join(str(int(A[perm[i]][perm[j]])) for i in range(k) for j in range(k))
        v = int(bits, 2)
        best = v if best is None else min(best, v)
    return best


def _brute_census4(G):
    nodes = list(G)
    out = {}
    for S in itertools.combinations(nodes, 4):
        H = G.subgraph(S)
        if not nx.is_weakly_connected(H):
            continue
        A = [[1 if H.has_edge(u, v) else 0 for v in S] for u in S]
        key = _brute_mfinder_id(A)
        out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize("p,p_mutual", [(0.15, 0.0), (0.35, 0.5), (0.7, 0.2)])
def test_four_node_matches_brute_force(p, p_mutual, engine):
    rng = np.random.default_rng(7)
    for _ in range(3):
        G = _random_digraph(rng, int(rng.integers(5, 12)), p, p_mutual)
        if G.number_of_edges() == 0:
            continue
        ours = {k: v for k, v in motif_census(G, size=4, engine=engine).items() if v}
        assert ours == _brute_census4(G)


def test_four_node_matches_igraph(engine, monkeypatch):
    ig = pytest.importorskip("igraph")
    # map igraph isoclass ids to our keys by isomorphism (via the brute-force canonical ID)
    iso_to_key = {}
    for k in range(218):
        g = ig.Graph.Isoclass(4, k, directed=True)
        H = nx.DiGraph(g.get_edgelist())
        H.add_nodes_from(range(4))
        if nx.is_weakly_connected(H):
            A = [[1 if H.has_edge(u, v) else 0 for v in range(4)] for u in range(4)]
            iso_to_key[k] = _brute_mfinder_id(A)
    assert sorted(iso_to_key.values()) == motif_keys(4)
    rng = np.random.default_rng(11)
    for dense in (True, False) if engine == "numpy" else (False,):
        if not dense:
            monkeypatch.setattr(census_numpy._Skeleton, "DENSE_MAX", 0)
        for p, pm in [(0.05, 0.0), (0.2, 0.5), (0.5, 0.9)]:
            n = int(rng.integers(20, 60))
            G = _random_digraph(rng, n, p, pm)
            g = ig.Graph(n=n, edges=list(G.edges()), directed=True)
            ref = {iso_to_key[k]: int(v) for k, v in enumerate(g.motifs_randesu(size=4)) if k in iso_to_key}
            assert motif_census(G, size=4, engine=engine) == ref


def test_keys_names_and_patterns_roundtrip():
    assert len(motif_keys(3)) == 13 and len(motif_keys(4)) == 199
    assert MOTIF_NAMES["030T"] == "feed-forward loop"
    assert census.TRIAD_MFINDER_ID["030T"] == 38 and census.TRIAD_MFINDER_ID["030C"] == 98
    for size in (3, 4):
        for key in motif_keys(size):
            counts = motif_census(motif_graph(key), size=size)
            assert counts[key] == 1 and sum(counts.values()) == 1
    bifan = nx.DiGraph([("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")])
    assert motif_census(bifan, 4)[204] == 1
    with pytest.raises(ValueError, match="unknown motif key"):
        motif_graph(3)


def test_self_loops_and_multiedges_ignored(engine):
    G = nx.MultiDiGraph([(0, 1), (0, 1), (1, 2), (0, 2), (2, 2)])
    counts = motif_census(G, engine=engine)
    assert counts["030T"] == 1 and sum(counts.values()) == 1


def test_node_labels_of_any_kind_give_the_same_census(engine):
    G = _random_digraph(np.random.default_rng(9), 40, 0.08, 0.3)
    ref = motif_census(G, size=4, engine=engine)
    order = list(np.random.default_rng(1).permutation(40))
    relabelled = [
        nx.relabel_nodes(G, {v: f"n{v}" for v in G}),  # strings
        nx.relabel_nodes(G, {v: float(v) for v in G}),  # floats equal to 0..n-1
        nx.relabel_nodes(G, {v: int(order[v]) for v in G}),  # integers, not in order
        nx.DiGraph(nx.relabel_nodes(G, {v: 39 - v for v in G}).edges()),
    ]
    for H in relabelled:
        assert motif_census(H, size=4, engine=engine) == ref
    # graph views (filtered adjacency, reversed) count like their copies
    sub = G.subgraph(range(5, 35))
    rev = G.reverse(copy=False)
    for view in (sub, rev):
        assert motif_census(view, size=4, engine=engine) == motif_census(nx.DiGraph(view), size=4, engine=engine)
    assert triad_census(rev, engine=engine) == dict(nx.triadic_census(nx.DiGraph(rev)))
    src, dst, n, nodes = census.graph_to_arrays(nx.relabel_nodes(G, {v: f"n{v}" for v in G}))
    assert np.all(np.diff(src * n + dst) > 0)  # sorted by (source, target), no duplicates
    assert sorted(zip(src.tolist(), dst.tolist())) == sorted(G.edges())
    assert nodes == [f"n{v}" for v in G]


def test_engine_choice_is_explicit(monkeypatch):
    G = nx.DiGraph([(0, 1), (1, 2), (0, 2)])
    with pytest.raises(ValueError, match="engine must be one of"):
        motif_census(G, engine="cuda")
    monkeypatch.setattr(engine_mod, "HAVE_NUMBA", False)
    assert engine_mod.resolve_engine("auto") == "numpy"
    assert motif_census(G)["030T"] == 1  # auto runs on numpy without numba
    with pytest.raises(ImportError, match="engine='numba' was requested but numba is not installed"):
        motif_census(G, engine="numba")  # never a silent fallback


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="2 node"):
        motif_census(nx.DiGraph([(0, 1)]))
    with pytest.raises(ValueError, match="no edges"):
        G = nx.DiGraph()
        G.add_nodes_from(range(5))
        motif_census(G)
    with pytest.raises(ValueError, match="no edges"):
        motif_census(nx.DiGraph([(0, 0), (1, 1), (2, 2)]))
    with pytest.raises(TypeError, match="directed"):
        motif_census(nx.path_graph(5))
    with pytest.raises(ValueError, match="size must be 3 or 4"):
        motif_census(nx.DiGraph([(0, 1), (1, 2)]), size=5)
    with pytest.raises(ValueError, match="at least 4"):
        motif_census(nx.DiGraph([(0, 1), (1, 2)]), size=4)
