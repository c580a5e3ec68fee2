"""Counting directed 3- and 4-node subgraphs (motif census) of networkx graphs.

Conventions
-----------
Counts are of **induced** subgraphs on node sets whose undirected skeleton is
connected (the usual motif convention of mfinder, FANMOD and igraph's
``motifs_randesu``). Self-loops are ignored (see :func:`sciml.motifs.weights_to_graph`,
which reports them separately); multi-edges count once.

3-node classes are keyed by the standard triad-census codes (Holland & Leinhardt;
identical to :func:`networkx.triadic_census`): ``021D 021U 021C 111D 111U 030T 030C
201 120D 120U 120C 210 300`` (``003 012 102`` are the disconnected ones).
:data:`MOTIF_NAMES` gives common names (``030T`` = feed-forward loop, ``030C`` =
3-cycle / feedback loop, ...). 4-node classes (199 connected ones) are keyed by their
**mfinder ID** (the bi-fan is ``204``, the bi-parallel ``904``; definition and the
tables in :mod:`sciml.motifs.motif_classes`). :func:`motif_graph` turns any key back
into a pattern graph.

Algorithm
---------
The graph becomes integer edge arrays in one pass over its successor dicts
(:func:`graph_to_arrays`), then one of two engines (:mod:`sciml.motifs.engine`) counts:

- ``"numba"`` (default when numba is installed; :mod:`sciml.motifs.census_numba`):
  compiled loops over the undirected skeleton in CSR form. 3 nodes: Batagelj & Mrvar's
  subquadratic triad census, O(sum_v d_v^2). 4 nodes: every connected 4-node set
  enumerated through its spanning trees (paths keyed by the middle edge, and stars).
- ``"numpy"`` (:mod:`sciml.motifs.census_numpy`): the same counts vectorised -- open
  triads from per-node degree sums minus the closed ones, triangles listed once in
  degree order; 4-node spanning trees enumerated in chunks.

Both classify each subgraph by the 6- or 12-bit code of its dyads and give identical,
exact counts (4-node spanning-tree totals are divided by the number of spanning trees of
each class: 1 for paths and stars, 3 for the paw, 4 for the 4-cycle, 8 for the diamond,
16 for K4).
"""
from __future__ import annotations

import itertools
from typing import Any, Hashable

import networkx as nx
import numpy as np

from .census_numba import census3_csr, census4_csr, skeleton_csr
from .census_numpy import census3_arrays, census4_arrays
from .engine import resolve_engine
from .motif_classes import (MOTIF_NAMES, TRIAD_CODES, TRIAD_CODES_ALL, TRIAD_MFINDER_ID, _check_size, _tables,
                            _triad_table, motif_graph, motif_keys, motif_name)

__all__ = [
    "TRIAD_CODES",
    "TRIAD_CODES_ALL",
    "TRIAD_MFINDER_ID",
    "MOTIF_NAMES",
    "motif_census",
    "triad_census",
    "motif_graph",
    "motif_keys",
    "motif_name",
    "graph_to_arrays",
    "census_vector",
    "census_from_arrays",
]


def graph_to_arrays(G: nx.DiGraph, min_nodes: int = 3) -> tuple[np.ndarray, np.ndarray, int, list[Hashable]]:
    """Directed edges of ``G`` as integer arrays sorted by (source, target), self-loops dropped,
    with the node list (node ``nodes[i]`` is index ``i``).

    Raises ``TypeError`` for undirected graphs and ``ValueError`` for graphs with fewer
    than ``min_nodes`` nodes or without edges between distinct nodes.
    """
    src, dst, n, nodes = _edge_arrays(G, min_nodes)
    key = np.sort(src * n + dst)
    return key // n, key % n, n, nodes


def _edge_arrays(G: nx.DiGraph, min_nodes: int) -> tuple[np.ndarray, np.ndarray, int, list[Hashable]]:
    """:func:`graph_to_arrays` without the sort: edges in adjacency order (what the census needs).

    Reads the successor dicts directly (``G._succ``, as networkx's own algorithms do): one
    ``np.fromiter`` over all neighbour keys instead of a Python tuple per edge. Neighbour keys
    of a node are unique, so multi-edges of a ``MultiDiGraph`` collapse to one edge.
    """
    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx DiGraph, got {type(G).__name__}")
    if not G.is_directed():
        raise TypeError("G must be a directed graph (networkx.DiGraph); got an undirected graph")
    succ = G._succ
    nodes = list(succ)
    n = len(nodes)
    if n < min_nodes:
        raise ValueError(f"G has {n} node(s); motif analysis of size {min_nodes} needs at least {min_nodes}")
    lens = np.fromiter(map(len, succ.values()), dtype=np.int64, count=n)
    m = int(lens.sum())
    targets = itertools.chain.from_iterable(succ.values())
    if nodes == list(range(n)) and set(map(type, nodes)) <= {int}:
        dst = np.fromiter(targets, dtype=np.int64, count=m)  # nodes 0..n-1 in order: keys are indices
    else:
        index = {v: i for i, v in enumerate(nodes)}
        dst = np.fromiter(map(index.__getitem__, targets), dtype=np.int64, count=m)
    src = np.repeat(np.arange(n, dtype=np.int64), lens)
    keep = src != dst
    if not keep.all():
        src, dst = src[keep], dst[keep]
    if len(src) == 0:
        raise ValueError("G has no edges between distinct nodes: nothing to count")
    return src, dst, n, nodes



# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------
def _census_numba(src: np.ndarray, dst: np.ndarray, n: int, size: int) -> np.ndarray:
    """16-class triad census (size 3) or the 199 4-node counts (size 4) by the compiled engine."""
    indptr, col, code = skeleton_csr(np.ascontiguousarray(src, dtype=np.int64),
                                     np.ascontiguousarray(dst, dtype=np.int64), np.int64(n))
    if size == 3:
        return census3_csr(indptr, col, code, np.int64(n), _triad_table())
    t = _tables(4)
    raw = census4_csr(indptr, col, code, np.int64(n), t["cls"], np.int64(len(t["tau"])))
    if np.any(raw % t["tau"]):
        raise RuntimeError("internal error in the 4-node census: counts not divisible by spanning-tree numbers")
    return raw // t["tau"]


def _census_all(src: np.ndarray, dst: np.ndarray, n: int, size: int, engine: str) -> np.ndarray:
    """Full 16-class triad census (size 3) or the 199 connected 4-node counts (size 4)."""
    _check_size(size)
    if resolve_engine(engine) == "numba":
        return _census_numba(src, dst, n, size)
    return census3_arrays(src, dst, n) if size == 3 else census4_arrays(src, dst, n)


def triad_census(G: nx.DiGraph, engine: str = "auto") -> dict[str, int]:
    """All 16 triad classes of ``G`` (same keys and values as :func:`networkx.triadic_census`).

    Self-loops are ignored. ``engine``: ``"auto"``, ``"numba"`` or ``"numpy"`` (see
    :mod:`sciml.motifs.engine`; identical counts). Typically 50-1000x faster than networkx.

    Example
    -------
    >>> import networkx as nx
    >>> triad_census(nx.DiGraph([(0, 1), (1, 2), (0, 2)]))["030T"]
    1
    """
    src, dst, n, _ = _edge_arrays(G, min_nodes=3)
    return dict(zip(TRIAD_CODES_ALL, (int(x) for x in _census_all(src, dst, n, 3, engine))))


def motif_census(G: nx.DiGraph, size: int = 3, engine: str = "auto") -> dict[Any, int]:
    """Counts of all connected directed ``size``-node classes, as induced subgraphs.

    Parameters
    ----------
    G:
        A ``networkx.DiGraph`` (self-loops are ignored; multi-edges collapsed).
    size:
        3 (13 classes keyed by triad codes such as ``"030T"``) or 4 (199 classes keyed by
        mfinder IDs such as ``204`` for the bi-fan; see the module docstring).
    engine:
        ``"auto"`` (compiled numba kernels when numba is installed, else numpy), ``"numba"``
        or ``"numpy"``; the counts are identical (see :mod:`sciml.motifs.engine`).

    Returns
    -------
    dict
        ``{key: count}`` in the order of :func:`motif_keys`; zero counts included.

    Raises
    ------
    ValueError
        if ``G`` has fewer than ``size`` nodes or no edges, or ``size`` is not 3 or 4.

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.DiGraph([(0, 1), (1, 2), (0, 2), (2, 3)])
    >>> motif_census(G)["030T"], motif_census(G)["021C"]
    (1, 2)
    >>> sum(motif_census(G, size=4).values())
    1
    """
    _check_size(size)
    src, dst, n, _ = _edge_arrays(G, min_nodes=size)
    return census_from_arrays(src, dst, n, size, engine)


def census_from_arrays(src: np.ndarray, dst: np.ndarray, n: int, size: int = 3,
                       engine: str = "auto") -> dict[Any, int]:
    """:func:`motif_census` on a simple digraph given as edge arrays (no self-loops, no duplicates)."""
    return dict(zip(motif_keys(size), (int(x) for x in census_vector(src, dst, n, size, engine))))


def census_vector(src: np.ndarray, dst: np.ndarray, n: int, size: int = 3, engine: str = "auto") -> np.ndarray:
    """Connected-class counts as an int64 vector (order of :func:`motif_keys`)."""
    c = _census_all(src, dst, n, size, engine)
    return c[3:] if size == 3 else c
