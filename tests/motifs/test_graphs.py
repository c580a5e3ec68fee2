"""weights_to_graph conventions, thresholds, self-loops and input validation; graph readers."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sciml.motifs import read_graph, weights_to_graph
from sciml.motifs.graphs import graph_to_matrix


def test_edge_direction_sign_and_self_loops():
    W = np.array([[0.5, 0.0, 0.0], [0.9, 0.0, -0.3], [-0.5, 0.7, 0.0]])
    G = weights_to_graph(W, threshold=0.2)
    # W[j, i] is the weight from unit i to unit j -> edge i -> j
    assert sorted(G.edges()) == [(0, 1), (0, 2), (1, 2), (2, 1)]
    assert G.edges[0, 2]["sign"] == -1 and G.edges[0, 2]["weight"] == -0.5
    assert G.edges[2, 1]["weight"] == -0.3
    assert nx.number_of_selfloops(G) == 0
    assert G.graph["self_loops"] == {0: 0.5}
    assert G.nodes[0]["self_weight"] == 0.5
    np.testing.assert_allclose(graph_to_matrix(G), np.where(np.abs(W) > 0.2, W, 0) - np.diag(np.diag(W)))
    unsigned = weights_to_graph(W, threshold=0.2, signed=False)
    assert unsigned.edges[0, 2]["sign"] == 1 and unsigned.edges[0, 2]["weight"] == 0.5


def test_density_and_quantile_modes():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(40, 40))
    G = weights_to_graph(W, threshold=0.1, mode="density")
    assert G.number_of_edges() == round(0.1 * 40 * 39)
    assert abs(G.graph["density"] - 0.1) < 1e-3
    kept = np.array([abs(d["weight"]) for *_, d in G.edges(data=True)])
    assert kept.min() >= G.graph["threshold"]
    Q = weights_to_graph(W, threshold=0.75, mode="quantile")
    assert abs(Q.number_of_edges() - 0.25 * 40 * 39) <= 2


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    G = weights_to_graph(torch.ones(4, 4, requires_grad=True), threshold=0.5)
    assert G.number_of_edges() == 12


def test_invalid_inputs():
    with pytest.raises(ValueError, match=r"square.*\(3, 4\)"):
        weights_to_graph(np.ones((3, 4)))
    with pytest.raises(ValueError, match="at least 3"):
        weights_to_graph(np.ones((2, 2)))
    W = np.ones((4, 4))
    W[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*W\[2, 1\]"):
        weights_to_graph(W)
    G = weights_to_graph(W, nan="drop")
    assert not G.has_edge(1, 2) and G.number_of_edges() == 11
    with pytest.raises(ValueError, match="threshold=5.0"):
        weights_to_graph(np.ones((4, 4)), threshold=5.0)
    with pytest.raises(ValueError, match="mode"):
        weights_to_graph(np.ones((4, 4)), mode="top")
    with pytest.raises(ValueError, match="density"):
        weights_to_graph(np.ones((4, 4)), threshold=1.5, mode="density")
    with pytest.raises(ValueError, match="removes every edge"):
        weights_to_graph(np.zeros((4, 4)), threshold=0.1, mode="density")


def test_read_graph_formats(tmp_path):
    (tmp_path / "g.edgelist").write_text("# comment\na b 0.5\nb c -1\nc a 2\n")
    G = read_graph(tmp_path / "g.edgelist")
    assert sorted(G.edges()) == [("a", "b"), ("b", "c"), ("c", "a")] and G.edges["b", "c"]["sign"] == -1
    nx.write_graphml(nx.DiGraph([(1, 2), (2, 3)]), tmp_path / "g.graphml")
    assert read_graph(tmp_path / "g.graphml").number_of_edges() == 2
    np.save(tmp_path / "w.npy", np.random.default_rng(0).normal(size=(10, 10)))
    assert read_graph(tmp_path / "w.npy", threshold=0.2, mode="density").number_of_edges() == 18
    with pytest.raises(ValueError, match="does not exist"):
        read_graph(tmp_path / "missing.edgelist")
    (tmp_path / "bad.edgelist").write_text("a\n")
    with pytest.raises(ValueError, match="line 1"):
        read_graph(tmp_path / "bad.edgelist")
