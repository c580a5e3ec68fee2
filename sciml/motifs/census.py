"""Counting directed 3- and 4-node subgraphs (motif census), vectorised with numpy.

Conventions
-----------
Counts are of **induced** subgraphs on node sets whose undirected skeleton is
connected (the usual motif convention of mfinder, FANMOD and igraph's
``motifs_randesu``). Self-loops are ignored (see :func:`sciml.motifs.weights_to_graph`,
which reports them separately).

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

Algorithm
---------
*3 nodes.* Open triads (one null dyad) are counted from per-node numbers of mutual,
out- and in-neighbours (e.g. ``sum_j C(out_j, 2)`` two-paths with centre ``j`` are
``021D`` candidates) minus those closed by a third edge; closed triads are found by
listing the skeleton's triangles once (edges oriented from low to high degree, all
in numpy) and classifying each by its 6-bit dyad code. Disconnected classes follow
from the same sums, so the full 16-class census is exact. Cost: O(m + sum of
C(d+_v, 2)) with d+ the degree-ordered out-degree -- no loop over node triples.

*4 nodes.* Every connected 4-node set is enumerated through its spanning trees,
which on 4 nodes are paths (a-b-c-d, keyed by the middle edge) or stars (a centre
and 3 of its neighbours); each tree is classified by the 12-bit code of the induced
subgraph and the per-class totals are divided by the number of spanning trees of the
class's skeleton (1 for paths and stars, 3 for the paw, 4 for the 4-cycle, 8 for the
diamond, 16 for K4), which is exact integer arithmetic.
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any, Hashable

import networkx as nx
import numpy as np

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
]

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


# ----------------------------------------------------------------------------------------------
# graph -> arrays
# ----------------------------------------------------------------------------------------------
def graph_to_arrays(G: nx.DiGraph, min_nodes: int = 3) -> tuple[np.ndarray, np.ndarray, int, list[Hashable]]:
    """Directed edges of ``G`` as integer arrays (self-loops dropped), with the node list.

    Raises ``TypeError`` for undirected graphs and ``ValueError`` for graphs with fewer
    than ``min_nodes`` nodes or without edges between distinct nodes.
    """
    if not isinstance(G, nx.Graph):
        raise TypeError(f"G must be a networkx DiGraph, got {type(G).__name__}")
    if not G.is_directed():
        raise TypeError("G must be a directed graph (networkx.DiGraph); got an undirected graph")
    nodes = list(G.nodes())
    n = len(nodes)
    if n < min_nodes:
        raise ValueError(f"G has {n} node(s); motif analysis of size {min_nodes} needs at least {min_nodes}")
    index = {v: i for i, v in enumerate(nodes)}
    pairs = np.array([(index[u], index[v]) for u, v in G.edges() if u != v], dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        raise ValueError("G has no edges between distinct nodes: nothing to count")
    keys = np.unique(pairs[:, 0] * n + pairs[:, 1])  # collapses multi-edges
    return keys // n, keys % n, n, nodes


class _Skeleton:
    """Undirected skeleton in CSR form with dyad codes (bit0: row->col, bit1: col->row)."""

    DENSE_MAX = 2048  # use an n x n code matrix up to this many nodes

    def __init__(self, src: np.ndarray, dst: np.ndarray, n: int):
        self.n = n
        # dense n x n code matrix for small or dense graphs (no sorting needed), sorted keys otherwise
        if n <= self.DENSE_MAX and (n <= 256 or n * n <= 64 * len(src)):
            A = np.zeros((n, n), dtype=np.uint8)
            A[src, dst] = 1
            C = A | (A.T << 1)
            self.row, self.col = np.nonzero(C)
            self.code = C[self.row, self.col]
            self._dense = C
        else:
            key = np.sort(src * n + dst)
            rkey = dst * n + src
            pos = np.minimum(np.searchsorted(key, rkey), len(key) - 1)
            mutual = key[pos] == rkey
            keep = ~mutual | (src < dst)  # one entry per unordered dyad
            s, d, mu = src[keep], dst[keep], mutual[keep]
            u = np.minimum(s, d)
            v = np.maximum(s, d)
            code = np.where(mu, 3, np.where(s == u, 1, 2)).astype(np.uint8)
            rows = np.concatenate([u, v])
            cols = np.concatenate([v, u])
            codes = np.concatenate([code, _FLIP[code]])
            order = np.argsort(rows * n + cols)
            self.row, self.col, self.code = rows[order], cols[order], codes[order]
            self._dense = None
        self._keys = self.row * n + self.col  # sorted
        upper = self.row < self.col
        self.eu, self.ev, self.ecode = self.row[upper], self.col[upper], self.code[upper]
        self.deg = np.bincount(self.row, minlength=n).astype(np.int64)
        self.indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.deg, out=self.indptr[1:])
        self.n_mutual_dyads = int((self.ecode == 3).sum())
        self.n_asym_dyads = int(len(self.ecode) - self.n_mutual_dyads)

    @property
    def pos_uv(self) -> np.ndarray:
        """Entry index of each undirected edge (u, v), u < v, in row u."""
        return np.flatnonzero(self.row < self.col)

    @property
    def pos_vu(self) -> np.ndarray:
        """Entry index of each undirected edge (u, v), u < v, in row v."""
        return np.searchsorted(self._keys, self.ev * self.n + self.eu)

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Dyad code of (x, y): bit0 = edge x->y, bit1 = edge y->x; 0 if unconnected."""
        if self._dense is not None:
            return self._dense[x, y]
        q = x * self.n + y
        pos = np.searchsorted(self._keys, q)
        pos = np.minimum(pos, len(self._keys) - 1)
        return np.where(self._keys[pos] == q, self.code[pos], 0).astype(np.uint8)

    def node_types(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per node: number of mutual, asymmetric-out and asymmetric-in neighbours."""
        n = self.n
        mut = np.bincount(self.row[self.code == 3], minlength=n).astype(np.int64)
        out = np.bincount(self.row[self.code == 1], minlength=n).astype(np.int64)
        inn = np.bincount(self.row[self.code == 2], minlength=n).astype(np.int64)
        return mut, out, inn


def _segment_pairs(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (p, q), p < q, inside segments [start, start + length)."""
    lengths = lengths.astype(np.int64)
    nnz = int(lengths.sum())
    if nnz == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    seg = np.repeat(np.arange(len(starts)), lengths)
    seg_start = np.cumsum(lengths) - lengths
    local = np.arange(nnz) - seg_start[seg]
    npart = lengths[seg] - 1 - local
    glob = starts[seg] + local
    total = int(npart.sum())
    first = np.repeat(glob, npart)
    off = np.arange(total) - np.repeat(np.cumsum(npart) - npart, npart) + 1
    return first, first + off


def _row_chunks(weights: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split rows 0..len(weights) into contiguous chunks whose summed weight is about ``budget``."""
    cum = np.cumsum(weights)
    chunks = []
    lo = 0
    n = len(weights)
    while lo < n:
        base = cum[lo - 1] if lo > 0 else 0
        hi = int(np.searchsorted(cum, base + budget, side="right"))
        hi = max(hi, lo + 1)
        chunks.append((lo, min(hi, n)))
        lo = hi
    return chunks


_CHUNK = 2_000_000

# open-triad class of a pair of dyad types seen from the centre (1 = out, 2 = in, 3 = mutual)
_OPEN_OF_PAIR = np.full(16, -1, dtype=np.int64)
for (_a, _b), _name in {
    (1, 1): "021D", (2, 2): "021U", (1, 2): "021C", (3, 2): "111D", (3, 1): "111U", (3, 3): "201",
}.items():
    _OPEN_OF_PAIR[_a * 4 + _b] = _OPEN_OF_PAIR[_b * 4 + _a] = TRIAD_CODES_ALL.index(_name)


def _triangles(sk: _Skeleton) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every skeleton triangle once: nodes (u, v, w) and dyad codes d(u,v), d(u,w), d(v,w)."""
    n = sk.n
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), sk.deg))] = np.arange(n)
    fwd = rank[sk.row] < rank[sk.col]
    frow, fcol, fcode = sk.row[fwd], sk.col[fwd], sk.code[fwd]  # still sorted by row
    fdeg = np.bincount(frow, minlength=n)
    fptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(fdeg, out=fptr[1:])
    out = ([], [], [], [], [], [])
    for lo, hi in _row_chunks(fdeg * (fdeg - 1) // 2, _CHUNK):
        p, q = _segment_pairs(fptr[lo:hi], fdeg[lo:hi])
        if len(p) == 0:
            continue
        v, w = fcol[p], fcol[q]
        dvw = sk.lookup(v, w)
        hit = dvw > 0
        if not hit.any():
            continue
        p, q = p[hit], q[hit]
        for lst, arr in zip(out, (frow[p], fcol[p], fcol[q], fcode[p], fcode[q], dvw[hit])):
            lst.append(arr)
    if not out[0]:
        z = np.zeros(0, np.int64)
        return z, z, z, z.astype(np.uint8), z.astype(np.uint8), z.astype(np.uint8)
    return tuple(np.concatenate(x) for x in out)  # type: ignore[return-value]


def _census3_arrays(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Full 16-class triad census (TRIAD_CODES_ALL order) of a simple digraph given as arrays."""
    sk = _Skeleton(src, dst, n)
    counts = np.zeros(16, dtype=np.int64)
    mut, out, inn = sk.node_types()
    _, _, _, duv, duw, dvw = _triangles(sk)
    # closed triads
    code6 = duv.astype(np.int64) | (duw.astype(np.int64) << 2) | (dvw.astype(np.int64) << 4)
    counts += np.bincount(_triad_table()[code6], minlength=16)
    # open triads: all two-paths around a centre, minus the closed ones
    idx = TRIAD_CODES_ALL.index
    counts[idx("201")] += int((mut * (mut - 1) // 2).sum())
    counts[idx("111D")] += int((mut * inn).sum())
    counts[idx("111U")] += int((mut * out).sum())
    counts[idx("021D")] += int((out * (out - 1) // 2).sum())
    counts[idx("021U")] += int((inn * (inn - 1) // 2).sum())
    counts[idx("021C")] += int((out * inn).sum())
    if len(duv):
        # dyad types at each corner of each triangle, as seen from the corner
        t0 = _OPEN_OF_PAIR[duv.astype(np.int64) * 4 + duw]
        t1 = _OPEN_OF_PAIR[_FLIP[duv].astype(np.int64) * 4 + dvw]
        t2 = _OPEN_OF_PAIR[_FLIP[duw].astype(np.int64) * 4 + _FLIP[dvw]]
        counts -= np.bincount(np.concatenate([t0, t1, t2]), minlength=16)
        n_asym_tri = int(((duv != 3).sum() + (duw != 3).sum() + (dvw != 3).sum()))
        n_mut_tri = 3 * len(duv) - n_asym_tri
    else:
        n_asym_tri = n_mut_tri = 0
    # one-dyad triads: third node adjacent to neither end
    deg = sk.deg
    asym = sk.ecode != 3
    counts[1] = int((n - deg[sk.eu[asym]] - deg[sk.ev[asym]]).sum()) + n_asym_tri
    counts[2] = int((n - deg[sk.eu[~asym]] - deg[sk.ev[~asym]]).sum()) + n_mut_tri
    total = n * (n - 1) * (n - 2) // 6
    counts[0] = total - int(counts[1:].sum())
    return counts


def _census4_arrays(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Counts of the 199 connected 4-node classes (order of ``motif_keys(4)``)."""
    t = _tables(4)
    table, tau = t["cls"], t["tau"]
    ncls = len(tau)
    raw = np.zeros(ncls, dtype=np.int64)
    sk = _Skeleton(src, dst, n)
    col, code, indptr, deg, row = sk.col, sk.code.astype(np.int64), sk.indptr, sk.deg, sk.row
    flip = _FLIP.astype(np.int64)
    nnz = len(col)

    # W: dyad code between every ordered pair of neighbours of each node (k_v x k_v block per node)
    wsize = deg * deg
    woff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(wsize, out=woff[1:])
    W = np.zeros(int(woff[-1]), dtype=np.int64)
    for lo, hi in _row_chunks(wsize, _CHUNK):
        tot = wsize[lo:hi]
        if tot.sum() == 0:
            continue
        rows = np.repeat(np.arange(lo, hi), tot)
        k = np.arange(len(rows)) + woff[lo] - woff[rows]
        kr = deg[rows]
        i = k // kr
        j = k - i * kr
        W[woff[lo]:woff[hi]] = sk.lookup(col[indptr[rows] + i], col[indptr[rows] + j])
    # entry e (row v, local index l): base index into W for pairs (l, *) minus indptr[v]
    local = np.arange(nnz) - indptr[row]
    wbase = woff[row] + local * deg[row] - indptr[row]

    # --- paths a-b-c-d keyed by the middle edge (b, c), b < c; a in N(b)-c, d in N(c)-b
    b_all, c_all, ecode = sk.eu, sk.ev, sk.ecode.astype(np.int64)
    pos_bc, pos_cb = sk.pos_uv, sk.pos_vu
    ka = deg[b_all] - 1
    kd = deg[c_all] - 1
    work = ka * kd
    for lo, hi in _row_chunks(work, _CHUNK):
        if work[lo:hi].sum() == 0:
            continue
        # (edge, a) slots
        e_a = np.repeat(np.arange(lo, hi), ka[lo:hi])
        a_pos = indptr[b_all[e_a]] + np.arange(len(e_a)) - np.repeat(np.cumsum(ka[lo:hi]) - ka[lo:hi], ka[lo:hi])
        a_pos += a_pos >= pos_bc[e_a]
        part_a = flip[code[a_pos]] | (W[wbase[a_pos] + pos_bc[e_a]] << 2) | (ecode[e_a] << 6)
        # (edge, d) slots
        e_d = np.repeat(np.arange(lo, hi), kd[lo:hi])
        dstart = np.cumsum(kd[lo:hi]) - kd[lo:hi]
        d_pos = indptr[c_all[e_d]] + np.arange(len(e_d)) - np.repeat(dstart, kd[lo:hi])
        d_pos += d_pos >= pos_cb[e_d]
        part_d = (W[wbase[pos_cb[e_d]] + d_pos] << 8) | (code[d_pos] << 10)
        # rows: every (edge, a) slot times every (edge, d) slot of the same edge
        reps = kd[e_a]
        ia = np.repeat(np.arange(len(e_a)), reps)
        cs = np.cumsum(reps) - reps
        idd = np.arange(len(ia)) + np.repeat(dstart[e_a - lo] - cs, reps)
        a = col[a_pos][ia]
        d = col[d_pos][idd]
        c12 = part_a[ia] | part_d[idd] | (sk.lookup(a, d).astype(np.int64) << 4)
        raw += np.bincount(table[c12[a != d]], minlength=ncls)

    # --- stars: centre v and three of its neighbours (local positions p < q < r)
    nstar = deg * (deg - 1) * (deg - 2) // 6
    for lo, hi in _row_chunks(nstar, _CHUNK):
        if nstar[lo:hi].sum() == 0:
            continue
        p, q = _segment_pairs(indptr[lo:hi], deg[lo:hi])
        npart = indptr[row[q] + 1] - 1 - q
        keep = npart > 0
        p, q, npart = p[keep], q[keep], npart[keep]
        pq = code[p] | (code[q] << 2) | (W[wbase[p] + q] << 6)
        ip = np.repeat(np.arange(len(p)), npart)
        r = np.arange(len(ip)) + np.repeat(q + 1 - (np.cumsum(npart) - npart), npart)
        c12 = pq[ip] | (code[r] << 4) | (W[wbase[p][ip] + r] << 8) | (W[wbase[q][ip] + r] << 10)
        raw += np.bincount(table[c12], minlength=ncls)
    if np.any(raw % tau):
        raise RuntimeError("internal error in the 4-node census: counts not divisible by spanning-tree numbers")
    return raw // tau


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------
def triad_census(G: nx.DiGraph) -> dict[str, int]:
    """All 16 triad classes of ``G`` (same keys and values as :func:`networkx.triadic_census`).

    Self-loops are ignored. Vectorised; typically 50-1000x faster than networkx.

    Example
    -------
    >>> import networkx as nx
    >>> triad_census(nx.DiGraph([(0, 1), (1, 2), (0, 2)]))["030T"]
    1
    """
    src, dst, n, _ = graph_to_arrays(G, min_nodes=3)
    return dict(zip(TRIAD_CODES_ALL, (int(x) for x in _census3_arrays(src, dst, n))))


def motif_census(G: nx.DiGraph, size: int = 3) -> dict[Any, int]:
    """Counts of all connected directed ``size``-node classes, as induced subgraphs.

    Parameters
    ----------
    G:
        A ``networkx.DiGraph`` (self-loops are ignored; multi-edges collapsed).
    size:
        3 (13 classes keyed by triad codes such as ``"030T"``) or 4 (199 classes keyed by
        mfinder IDs such as ``204`` for the bi-fan; see the module docstring).

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
    src, dst, n, _ = graph_to_arrays(G, min_nodes=size)
    return census_from_arrays(src, dst, n, size)


def census_from_arrays(src: np.ndarray, dst: np.ndarray, n: int, size: int = 3) -> dict[Any, int]:
    """:func:`motif_census` on a simple digraph given as edge arrays (no self-loops, no duplicates)."""
    if size == 3:
        c = _census3_arrays(src, dst, n)[3:]
    else:
        c = _census4_arrays(src, dst, n)
    return dict(zip(motif_keys(size), (int(x) for x in c)))


def census_vector(src: np.ndarray, dst: np.ndarray, n: int, size: int = 3) -> np.ndarray:
    """Connected-class counts as an int64 vector (order of :func:`motif_keys`)."""
    if size == 3:
        return _census3_arrays(src, dst, n)[3:]
    return _census4_arrays(src, dst, n)
