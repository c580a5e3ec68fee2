"""Randomised null models for directed graphs, vectorised across many random graphs.

Three nulls:

- ``"mutual"`` (Milo et al., Science 2002): directed edge switching that keeps every
  node's in-degree, out-degree **and** number of mutual (bidirectional) edges.
  Asymmetric edges ``a->b, c->d`` become ``a->d, c->b`` (only if neither new dyad is
  connected in either direction), mutual pairs ``a<->b, c<->d`` become ``a<->d, c<->b``
  (only if both new dyads are empty). Hence the total number of mutual edges is
  preserved exactly.
- ``"degree"``: the same switching on all edges without the mutual constraint (in- and
  out-degrees preserved; no self-loops or multi-edges are created).
- ``"er"``: Erdos-Renyi G(n, m): the same numbers of nodes and directed edges placed
  uniformly at random (no self-loops).

Switching runs for ``n_switches_per_edge * m`` attempted switches per random graph
(default 10 per edge; Milo et al. 2003 discuss how many are needed). Two engines (see
:mod:`sciml.motifs.engine`): ``"numba"`` runs each chain compiled on a bitset adjacency
(about 20 ns per attempted switch); ``"numpy"`` advances many chains together (one
proposal per graph per step, or several node-disjoint proposals per step for a single
graph), so the Python loop is over steps, not graphs or edges. Both give exactly the same
guarantees but different random streams, so the engine is recorded with every result. Graphs
that cannot be randomised (complete graphs, stars, ...) never loop forever: the number
of attempted and achieved switches is reported, and a ``RuntimeWarning`` is issued when
fewer than one switch per edge succeeded.
"""
from __future__ import annotations

import math
import warnings
from typing import Iterator

import networkx as nx
import numpy as np

from .census import graph_to_arrays
from .engine import njit, resolve_engine

__all__ = ["randomize", "NULL_MODELS"]

NULL_MODELS = ("mutual", "degree", "er")
_MEM = 64 * 2**20  # bytes of adjacency kept per chunk of graphs


def _check_null(null: str) -> None:
    if null not in NULL_MODELS:
        raise ValueError(f"null must be one of {NULL_MODELS}, got {null!r}")


class _Adj:
    """Adjacency of R graphs on n nodes: dense uint8 (small n) or bit-packed (large n)."""

    def __init__(self, R: int, n: int):
        self.R, self.n = R, n
        self.packed = n > 2048
        if self.packed:
            self.rb = (n + 7) // 8
            self.data = np.zeros(R * n * self.rb, dtype=np.uint8)
            self.stride = n * self.rb
        else:
            self.data = np.zeros(R * n * n, dtype=np.uint8)
            self.stride = n * n

    def _idx(self, base: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.packed:
            return base + x * self.rb + (y >> 3)
        return base + x * self.n + y

    def get(self, base, x, y) -> np.ndarray:
        v = self.data[self._idx(base, x, y)]
        if self.packed:
            return ((v >> (y & 7).astype(np.uint8)) & 1).astype(bool)
        return v.astype(bool)

    def set(self, base, x, y, value: bool, unique: bool = True) -> None:
        """Set bits; ``unique=False`` allows several (x, y) in one byte (initial fill)."""
        idx = self._idx(base, x, y)
        if self.packed and not unique:
            mask = (np.uint8(1) << (y & 7).astype(np.uint8)).astype(np.uint8)
            np.bitwise_or.at(self.data, idx, mask)
            return
        if self.packed:
            mask = (np.uint8(1) << (y & 7).astype(np.uint8)).astype(np.uint8)
            if value:
                self.data[idx] |= mask
            else:
                self.data[idx] &= ~mask
        else:
            self.data[idx] = 1 if value else 0


def _switch_chains(
    S: np.ndarray,
    D: np.ndarray,
    adj: _Adj,
    n: int,
    rng: np.random.Generator,
    target: int,
    mutual_pairs: bool,
    forbid_reverse: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Advance R switching chains in place. ``S, D``: (R, m) edge slots (for mutual pairs, (u, v)
    stands for u<->v). Returns attempted and achieved switch counts per chain."""
    R, m = S.shape
    attempted = np.zeros(R, dtype=np.int64)
    achieved = np.zeros(R, dtype=np.int64)
    if m < 2 or target <= 0:
        return attempted, achieved
    K = max(1, min(n // 32, 8192 // R))
    rr = np.repeat(np.arange(R), K)
    base = rr * adj.stride
    claim = np.full(R * n, -1, dtype=np.int64) if K > 1 else None
    rowoff = rr * m
    Sf = S.reshape(-1)
    Df = D.reshape(-1)
    step = 0
    max_steps = 50 * math.ceil(target / K) + 10  # guard: conflicts never make this loop unbounded
    while attempted.min() < target and step < max_steps:
        e1 = rng.integers(0, m, size=R * K) + rowoff
        e2 = rng.integers(0, m, size=R * K) + rowoff
        a, b = Sf[e1], Df[e1]
        c, d = Sf[e2], Df[e2]
        if mutual_pairs:
            flipc = rng.random(R * K) < 0.5
            c, d = np.where(flipc, d, c), np.where(flipc, c, d)
        considered = np.ones(R * K, dtype=bool)
        if K > 1:
            stamp = np.arange(R * K, dtype=np.int64) + step * R * K
            cb = rr * n
            for x in (a, b, c, d):
                claim[cb + x] = stamp
            for x in (a, b, c, d):
                considered &= claim[cb + x] == stamp
        ok = considered & (a != c) & (b != d) & (a != d) & (c != b)
        idx = np.flatnonzero(ok)
        if len(idx):
            bb, a_, b_, c_, d_ = base[idx], a[idx], b[idx], c[idx], d[idx]
            good = ~adj.get(bb, a_, d_) & ~adj.get(bb, c_, b_)
            if forbid_reverse:
                good &= ~adj.get(bb, d_, a_) & ~adj.get(bb, b_, c_)
            idx = idx[good]
            bb, a_, b_, c_, d_ = bb[good], a_[good], b_[good], c_[good], d_[good]
            adj.set(bb, a_, b_, False)
            adj.set(bb, c_, d_, False)
            adj.set(bb, a_, d_, True)
            adj.set(bb, c_, b_, True)
            if mutual_pairs:
                adj.set(bb, b_, a_, False)
                adj.set(bb, d_, c_, False)
                adj.set(bb, d_, a_, True)
                adj.set(bb, b_, c_, True)
            Sf[e1[idx]], Df[e1[idx]] = a_, d_
            Sf[e2[idx]], Df[e2[idx]] = c_, b_
            achieved += np.bincount(rr[idx], minlength=R)
        attempted += np.bincount(rr[considered], minlength=R)
        step += 1
    return attempted, achieved


# ----------------------------------------------------------------------------------------------
# compiled kernel (numba, optional): one chain at a time, adjacency as a bitset
# ----------------------------------------------------------------------------------------------
@njit
def _getb(bits, rb, x, y):
    return (bits[x * rb + (y >> 3)] >> (y & 7)) & 1


@njit
def _setb(bits, rb, x, y, v):
    i = x * rb + (y >> 3)
    if v:
        bits[i] |= np.uint8(1 << (y & 7))
    else:
        bits[i] &= np.uint8(~(1 << (y & 7)) & 0xFF)


@njit
def _chain(S, D, bits, rb, n_attempts, mutual_pairs, forbid_reverse):
    m = S.shape[0]
    done = 0
    if m < 2:
        return 0
    for _ in range(n_attempts):
        e1 = np.random.randint(0, m)
        e2 = np.random.randint(0, m)
        a = S[e1]
        b = D[e1]
        c = S[e2]
        d = D[e2]
        if mutual_pairs and np.random.random() < 0.5:
            c, d = d, c
        if a == c or b == d or a == d or c == b:
            continue
        if _getb(bits, rb, a, d) or _getb(bits, rb, c, b):
            continue
        if forbid_reverse and (_getb(bits, rb, d, a) or _getb(bits, rb, b, c)):
            continue
        _setb(bits, rb, a, b, False)
        _setb(bits, rb, c, d, False)
        _setb(bits, rb, a, d, True)
        _setb(bits, rb, c, b, True)
        if mutual_pairs:
            _setb(bits, rb, b, a, False)
            _setb(bits, rb, d, c, False)
            _setb(bits, rb, d, a, True)
            _setb(bits, rb, b, c, True)
        D[e1] = d
        S[e2] = c
        D[e2] = b
        done += 1
    return done


@njit
def _randomize_one(src, dst, n, S1, D1, S2, D2, t1, t2, mode, seed):
    """One switching chain (compiled): mode 0 = degree null, 1 = mutual null."""
    np.random.seed(seed)
    rb = (n + 7) // 8
    bits = np.zeros(n * rb, dtype=np.uint8)
    for k in range(src.shape[0]):
        _setb(bits, rb, src[k], dst[k], True)
    if mode == 0:
        return _chain(S1, D1, bits, rb, t1, False, False)
    a1 = _chain(S1, D1, bits, rb, t1, False, True)
    a2 = _chain(S2, D2, bits, rb, t2, True, True)
    return a1 + a2


def _er_arrays(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = rng.choice(n * (n - 1), size=m, replace=False)
    src = k // (n - 1)
    dst = k % (n - 1)
    dst = dst + (dst >= src)
    return src, dst


def null_arrays(
    src: np.ndarray,
    dst: np.ndarray,
    n: int,
    null: str = "mutual",
    n_random: int = 1,
    seed: int | None = None,
    n_switches_per_edge: float = 10.0,
    progress: bool = False,
    engine: str = "auto",
) -> Iterator[tuple[np.ndarray, np.ndarray, int, int]]:
    """Yield ``(src, dst, attempted, achieved)`` for ``n_random`` random versions of a simple digraph.

    Every chain starts from the input graph. ``engine`` as in :mod:`sciml.motifs.engine`
    (numpy: chains run in chunks, as many graphs at once as fit in ~64 MB of adjacency).
    Deterministic for a given ``seed`` and engine.
    """
    _check_null(null)
    engine = resolve_engine(engine)
    rng = np.random.default_rng(seed)
    m = len(src)
    if null == "er":
        for _ in range(n_random):
            s, d = _er_arrays(n, m, rng)
            yield s, d, 0, 0
        return
    key = src * n + dst
    rkey = dst * n + src
    skey = np.sort(key)
    pos = np.minimum(np.searchsorted(skey, rkey), m - 1)
    mutual = skey[pos] == rkey
    if engine == "numba":
        yield from _null_arrays_numba(src, dst, n, mutual, null, n_random, rng, n_switches_per_edge, progress)
        return
    per_graph = n * n if n <= 2048 else n * ((n + 7) // 8)
    chunk = max(1, min(n_random, _MEM // max(per_graph, 1)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_random, desc=f"null graphs ({null})", unit="graph")
    done = 0
    while done < n_random:
        R = min(chunk, n_random - done)
        adj = _Adj(R, n)
        base = np.repeat(np.arange(R) * adj.stride, m)
        adj.set(base, np.tile(src, R), np.tile(dst, R), True, unique=False)
        if null == "degree":
            S = np.tile(src, (R, 1))
            D = np.tile(dst, (R, 1))
            tgt = int(math.ceil(n_switches_per_edge * m))
            att, ach = _switch_chains(S, D, adj, n, rng, tgt, mutual_pairs=False, forbid_reverse=False)
            parts = [(S, D)]
        else:
            asym = ~mutual
            mpair = mutual & (src < dst)
            S1, D1 = np.tile(src[asym], (R, 1)), np.tile(dst[asym], (R, 1))
            S2, D2 = np.tile(src[mpair], (R, 1)), np.tile(dst[mpair], (R, 1))
            t1 = int(math.ceil(n_switches_per_edge * S1.shape[1]))
            t2 = int(math.ceil(n_switches_per_edge * S2.shape[1]))
            att1, ach1 = _switch_chains(S1, D1, adj, n, rng, t1, mutual_pairs=False, forbid_reverse=True)
            att2, ach2 = _switch_chains(S2, D2, adj, n, rng, t2, mutual_pairs=True, forbid_reverse=True)
            att, ach = att1 + att2, ach1 + ach2
            parts = [(S1, D1), (S2, D2), (D2, S2)]
        for r in range(R):
            s = np.concatenate([p[0][r] for p in parts])
            d = np.concatenate([p[1][r] for p in parts])
            yield s, d, int(att[r]), int(ach[r])
        done += R
        if bar is not None:
            bar.update(R)
    if bar is not None:
        bar.close()


def _null_arrays_numba(src, dst, n, mutual, null, n_random, rng, q, progress):
    kern = _randomize_one
    seeds = rng.integers(0, 2**31 - 1, size=n_random)
    src = src.astype(np.int64)
    dst = dst.astype(np.int64)
    asym = ~mutual if null == "mutual" else np.ones(len(src), dtype=bool)
    mpair = mutual & (src < dst) if null == "mutual" else np.zeros(len(src), dtype=bool)
    t1 = int(math.ceil(q * asym.sum()))
    t2 = int(math.ceil(q * mpair.sum()))
    mode = 1 if null == "mutual" else 0
    it = range(n_random)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"null graphs ({null})", unit="graph")
    for r in it:
        S1, D1 = src[asym].copy(), dst[asym].copy()
        S2, D2 = src[mpair].copy(), dst[mpair].copy()
        ach = kern(src, dst, np.int64(n), S1, D1, S2, D2, np.int64(t1), np.int64(t2), np.int64(mode),
                   np.int64(seeds[r]))
        yield np.concatenate([S1, S2, D2]), np.concatenate([D1, D2, S2]), t1 + t2, int(ach)


def _warn_switches(achieved: int, m: int, null: str) -> None:
    if achieved < m:
        warnings.warn(
            f"null model {null!r}: only {achieved} edge switches succeeded for {m} edges "
            "(fewer than one per edge); the graph is (nearly) unrandomisable under this null, "
            "so random graphs stay close to the original",
            RuntimeWarning,
            stacklevel=3,
        )


def randomize(
    G: nx.DiGraph,
    null: str = "mutual",
    seed: int | None = None,
    n_switches_per_edge: float = 10.0,
    engine: str = "auto",
) -> nx.DiGraph:
    """A random version of ``G`` under a null model (``G`` itself is not modified).

    Parameters
    ----------
    G:
        Directed graph; self-loops are ignored (the result has none) and edge
        attributes are not carried over (nulls are topological).
    null:
        ``"mutual"`` (in/out-degrees and mutual edges preserved, Milo et al. 2002),
        ``"degree"`` (in/out-degrees preserved) or ``"er"`` (same n and m, uniform).
    seed:
        Seed of the random generator.
    n_switches_per_edge:
        Attempted switches per edge for the switching nulls.
    engine:
        ``"auto"``, ``"numba"`` or ``"numpy"`` (:mod:`sciml.motifs.engine`); the engines draw
        different random graphs for the same seed.

    Returns
    -------
    networkx.DiGraph
        On the same nodes; ``graph["null"]``, ``graph["engine"]``, ``graph["switches_attempted"]``
        and ``graph["switches_achieved"]`` record what happened.

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.gnp_random_graph(30, 0.2, directed=True, seed=1)
    >>> H = randomize(G, null="mutual", seed=0)
    >>> sorted(d for _, d in H.in_degree()) == sorted(d for _, d in G.in_degree())
    True
    """
    _check_null(null)
    engine = resolve_engine(engine)
    src, dst, n, nodes = graph_to_arrays(G, min_nodes=2)
    s, d, att, ach = next(null_arrays(src, dst, n, null, 1, seed, n_switches_per_edge, engine=engine))
    if null != "er":
        _warn_switches(ach, len(src), null)
    H = nx.DiGraph()
    H.add_nodes_from(nodes)
    H.add_edges_from(zip([nodes[i] for i in s], [nodes[j] for j in d]))
    H.graph.update(null=null, engine=engine, switches_attempted=att, switches_achieved=ach)
    return H
