"""Motif classes: their keys, common names, pattern graphs and the code -> class lookup tables.

3-node classes are keyed by the standard triad-census codes (Holland & Leinhardt;
identical to :func:`networkx.triadic_census`): ``021D 021U 021C 111D 111U 030T 030C
201 120D 120U 120C 210 300`` (``003 012 102`` are the disconnected ones).
:data:`MOTIF_NAMES` gives common names (``030T`` = feed-forward loop, ``030C`` =
3-cycle / feedback loop, ...).

4-node classes (199 connected ones) are keyed by their **mfinder ID**: write the
4x4 adjacency matrix row by row as a 16-bit binary number with ``A[0, 0]`` as the
most significant bit and take the smallest such number over all 24 node orderings.
For example the bi-fan (two sources each wired to the same two targets) is
``204 = 0b0000_0000_1100_1100`` and the bi-parallel (``a -> b, a -> c, b -> d,
c -> d``) is ``904``. The same rule on 3x3 matrices gives mfinder's 3-node IDs (feed-forward
loop = 38), available in :data:`TRIAD_MFINDER_ID`. :func:`motif_graph` turns any key
back into a pattern graph.

Codes used by both census engines: a *dyad code* has 2 bits per node pair (bit 0: edge
from the lower to the higher position, bit 1: the reverse); a k-node subgraph's code
concatenates the dyad codes of its pairs in the order of ``_PAIRS[k]`` (6 bits for 3
nodes, 12 bits for 4). ``_tables(k)`` maps every code to its class, and
``_triad_table()`` maps 6-bit codes to the 16 triad classes.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import networkx as nx
import numpy as np

__all__ = ["TRIAD_CODES", "TRIAD_CODES_ALL", "TRIAD_MFINDER_ID", "MOTIF_NAMES", "motif_keys", "motif_name",
           "motif_graph"]

#: The 13 connected triad classes, in networkx order.
TRIAD_CODES: tuple[str, ...] = (
    "021D", "021U", "021C", "111D", "111U", "030T", "030C",
    "201", "120D", "120U", "120C", "210", "300",
)
#: All 16 triad classes, in the order of :func:`networkx.triadic_census`.
TRIAD_CODES_ALL: tuple[str, ...] = ("003", "012", "102") + TRIAD_CODES

# Representatives on nodes A=0, B=1, C=2 (Wasserman & Faust; networkx docstrings).
_TRIAD_EDGES: dict[str, list[tuple[int, int]]] = {
    "003": [],
    "012": [(0, 1)],
    "102": [(0, 1), (1, 0)],
    "021D": [(1, 0), (1, 2)],                          # A<-B->C
    "021U": [(0, 1), (2, 1)],                          # A->B<-C
    "021C": [(0, 1), (1, 2)],                          # A->B->C
    "111D": [(0, 1), (1, 0), (2, 1)],                  # A<->B<-C
    "111U": [(0, 1), (1, 0), (1, 2)],                  # A<->B->C
    "030T": [(0, 1), (2, 1), (0, 2)],                  # A->B<-C, A->C
    "030C": [(1, 0), (2, 1), (0, 2)],                  # A<-B<-C, A->C
    "201": [(0, 1), (1, 0), (1, 2), (2, 1)],           # A<->B<->C
    "120D": [(1, 0), (1, 2), (0, 2), (2, 0)],          # A<-B->C, A<->C
    "120U": [(0, 1), (2, 1), (0, 2), (2, 0)],          # A->B<-C, A<->C
    "120C": [(0, 1), (1, 2), (0, 2), (2, 0)],          # A->B->C, A<->C
    "210": [(0, 1), (1, 2), (2, 1), (0, 2), (2, 0)],   # A->B<->C, A<->C
    "300": [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)],
}

#: Common names of the 3-node classes and of a few well-known 4-node motifs (mfinder IDs).
MOTIF_NAMES: dict[Any, str] = {
    "003": "empty",
    "012": "single edge",
    "102": "mutual edge",
    "021D": "out-star (divergent)",
    "021U": "in-star (convergent)",
    "021C": "two-step chain (cascade)",
    "111D": "mutual edge + incoming edge",
    "111U": "mutual edge + outgoing edge",
    "030T": "feed-forward loop",
    "030C": "3-cycle (feedback loop)",
    "201": "mutual chain (two mutual edges)",
    "120D": "regulated mutual (out-star + mutual)",
    "120U": "regulating mutual (in-star + mutual)",
    "120C": "chain + mutual",
    "210": "two mutual edges + one edge",
    "300": "fully mutual triangle (clique)",
    204: "bi-fan",
    904: "bi-parallel",
    2184: "4-cycle (feedback loop)",
}

_PAIRS = {k: [(i, j) for i in range(k) for j in range(i + 1, k)] for k in (3, 4)}
_FLIP = np.array([0, 2, 1, 3], dtype=np.uint8)  # dyad code seen from the other end


# ----------------------------------------------------------------------------------------------
# class tables
# ----------------------------------------------------------------------------------------------
def _decode(codes: np.ndarray, k: int) -> np.ndarray:
    """Dyad codes (2 bits per node pair, pair order of ``_PAIRS[k]``) -> adjacency (N, k, k)."""
    adj = np.zeros((len(codes), k, k), dtype=np.int64)
    for p, (i, j) in enumerate(_PAIRS[k]):
        adj[:, i, j] = (codes >> (2 * p)) & 1
        adj[:, j, i] = (codes >> (2 * p + 1)) & 1
    return adj


def _mfinder_ids(adj: np.ndarray) -> np.ndarray:
    """Smallest row-major adjacency number (A[0,0] = most significant bit) over node orderings."""
    n_, k, _ = adj.shape
    weights = 1 << np.arange(k * k - 1, -1, -1, dtype=np.int64)
    best = np.full(n_, np.iinfo(np.int64).max, dtype=np.int64)
    for perm in itertools.permutations(range(k)):
        p = list(perm)
        val = adj[:, p][:, :, p].reshape(n_, k * k) @ weights
        np.minimum(best, val, out=best)
    return best


def _connected(adj: np.ndarray) -> np.ndarray:
    k = adj.shape[1]
    reach = ((adj + adj.transpose(0, 2, 1)) > 0).astype(np.int64) + np.eye(k, dtype=np.int64)
    r = reach.copy()
    for _ in range(k):
        r = ((r @ reach) > 0).astype(np.int64)
    return r.reshape(len(adj), -1).all(axis=1)


def _n_spanning_trees(adj: np.ndarray) -> np.ndarray:
    sk = ((adj + adj.transpose(0, 2, 1)) > 0).astype(float)
    lap = np.einsum("nij->ni", sk)[:, :, None] * np.eye(adj.shape[1]) - sk
    return np.rint(np.linalg.det(lap[:, 1:, 1:])).astype(np.int64)


@lru_cache(maxsize=None)
def _tables(k: int) -> dict[str, np.ndarray]:
    """Lookup tables for k-node codes: class index per code, class IDs, spanning-tree counts."""
    npairs = len(_PAIRS[k])
    codes = np.arange(4**npairs, dtype=np.int64)
    adj = _decode(codes, k)
    ids = _mfinder_ids(adj)
    conn = _connected(adj)
    class_ids = np.unique(ids[conn])
    cls = np.full(len(codes), -1, dtype=np.int64)
    cls[conn] = np.searchsorted(class_ids, ids[conn])
    # one representative code per class (smallest code) for spanning-tree counts / patterns
    rep = np.full(len(class_ids), -1, dtype=np.int64)
    order = np.argsort(cls, kind="stable")
    first = order[np.searchsorted(cls[order], np.arange(len(class_ids)))]
    rep[:] = first
    tau = _n_spanning_trees(adj[rep])
    return {"cls": cls, "ids": class_ids, "rep": rep, "tau": tau, "allids": ids}


def _code_of_edges(edges: list[tuple[int, int]], k: int) -> int:
    code = 0
    for p, (i, j) in enumerate(_PAIRS[k]):
        if (i, j) in edges:
            code |= 1 << (2 * p)
        if (j, i) in edges:
            code |= 1 << (2 * p + 1)
    return code


@lru_cache(maxsize=None)
def _triad_table() -> np.ndarray:
    """6-bit triad code (networkx ``_tricode`` bit order) -> index in TRIAD_CODES_ALL."""
    t = _tables(3)
    ids = t["allids"]
    table = np.empty(64, dtype=np.int64)
    rep_ids = {_mfinder_ids(_decode(np.array([_code_of_edges(e, 3)]), 3))[0]: name
               for name, e in _TRIAD_EDGES.items()}
    for c in range(64):
        table[c] = TRIAD_CODES_ALL.index(rep_ids[ids[c]])
    return table


#: mfinder 3-node ID of each triad code (e.g. ``TRIAD_MFINDER_ID["030T"] == 38``).
TRIAD_MFINDER_ID: dict[str, int] = {}


def _fill_mfinder_ids() -> None:
    for name, e in _TRIAD_EDGES.items():
        TRIAD_MFINDER_ID[name] = int(_mfinder_ids(_decode(np.array([_code_of_edges(e, 3)]), 3))[0])


_fill_mfinder_ids()


def motif_keys(size: int = 3) -> list:
    """Keys of the connected classes: triad codes for ``size=3``, mfinder IDs (199) for ``size=4``.

    Example
    -------
    >>> motif_keys(3)[:3]
    ['021D', '021U', '021C']
    >>> len(motif_keys(4))
    199
    """
    _check_size(size)
    if size == 3:
        return list(TRIAD_CODES)
    return [int(x) for x in _tables(4)["ids"]]


def motif_name(key: Any) -> str:
    """Common name of a motif key (falls back to the key itself)."""
    return MOTIF_NAMES.get(key, str(key))


def motif_graph(key: Any) -> nx.DiGraph:
    """The pattern of a motif key as a DiGraph on nodes ``0..k-1``.

    Example
    -------
    >>> sorted(motif_graph("030T").edges())
    [(0, 1), (0, 2), (2, 1)]
    >>> motif_graph(204).number_of_edges()
    4
    """
    G = nx.DiGraph()
    if isinstance(key, str) and key in _TRIAD_EDGES:
        G.add_nodes_from(range(3))
        G.add_edges_from(_TRIAD_EDGES[key])
        return G
    try:
        ident = int(key)
    except (TypeError, ValueError):
        raise ValueError(f"unknown motif key {key!r}: expected a triad code or a 4-node mfinder ID") from None
    if ident not in set(_tables(4)["ids"].tolist()):
        raise ValueError(f"unknown motif key {key!r}: not the mfinder ID of a connected 4-node class")
    G.add_nodes_from(range(4))
    for i in range(4):
        for j in range(4):
            if ident >> (15 - (4 * i + j)) & 1:
                G.add_edge(i, j)
    return G


def _check_size(size: int) -> None:
    if size not in (3, 4):
        raise ValueError(f"size must be 3 or 4, got {size!r}")

