"""Compiled (numba) motif census: the ``"numba"`` engine of :func:`sciml.motifs.motif_census`.

Same conventions and class tables as :mod:`sciml.motifs.census` (whose numpy engine gives
identical counts); this module only holds the loops.

*Skeleton.* The directed edges become the undirected skeleton in CSR form -- every node's
neighbours sorted, each with its 2-bit dyad code (bit 0: edge row -> neighbour, bit 1: edge
neighbour -> row) -- by a counting sort over rows and an insertion sort inside each row:
O(m + sum d^2) worst case, O(m) for the short rows of sparse graphs.

*3 nodes* (Batagelj & Mrvar, Social Networks 2001, "A subquadratic triad census algorithm").
For every skeleton edge ``u < v`` the third node ``w`` runs over ``N(u) | N(v)``; the triad
is counted there iff ``v < w``, or ``u < w < v`` and ``w`` is not adjacent to ``u``, which
counts every connected triad exactly once. The dyad codes of ``u`` and ``v`` to every
neighbour are read from two marker arrays (O(1) per look-up). The remaining ``n - 2 -
|N(u) | N(v)|`` nodes make one-dyad triads (``012`` or ``102``); ``003`` is the rest.
Cost O(sum over edges of d_u + d_v) = O(sum_v d_v^2).

*4 nodes.* As in the numpy engine, every connected 4-node set is enumerated through its
spanning trees -- paths ``a-b-c-d`` (keyed by the middle edge ``b < c``) and stars (a centre
with three of its neighbours) -- each tree is classified by the 12-bit code of the induced
subgraph, and the caller divides the class totals by the number of spanning trees of the
class. Look-ups use marker arrays holding one row's dyad codes. Cost O(paths + stars) =
O(sum over edges of d_b d_c + sum_v d_v^3).
"""
from __future__ import annotations

import numpy as np

from .engine import njit

__all__ = ["skeleton_csr", "census3_csr", "census4_csr"]


@njit
def _insertion_sort(a, lo, hi):  # pragma: no cover - compiled
    for i in range(lo + 1, hi):
        x = a[i]
        j = i - 1
        while j >= lo and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@njit
def skeleton_csr(src, dst, n):  # pragma: no cover - compiled
    """Undirected skeleton of a simple digraph (no self-loops): ``(indptr, col, code)``, rows sorted."""
    m = src.shape[0]
    start = np.zeros(n + 1, np.int64)
    for k in range(m):
        start[src[k] + 1] += 1
        start[dst[k] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    fill = start[:-1].copy()
    key = np.empty(2 * m, np.int64)  # neighbour * 4 + dyad bit
    for k in range(m):
        s, d = src[k], dst[k]
        key[fill[s]] = d * 4 + 1
        fill[s] += 1
        key[fill[d]] = s * 4 + 2
        fill[d] += 1
    for v in range(n):
        lo, hi = start[v], start[v + 1]
        if hi - lo <= 32:
            _insertion_sort(key, lo, hi)
        else:
            key[lo:hi] = np.sort(key[lo:hi])
    indptr = np.zeros(n + 1, np.int64)
    col = np.empty(2 * m, np.int64)
    code = np.empty(2 * m, np.uint8)
    k = 0
    for v in range(n):
        j, hi = start[v], start[v + 1]
        while j < hi:
            nb, c = key[j] >> 2, key[j] & 3
            j += 1
            while j < hi and key[j] >> 2 == nb:  # a mutual pair: both bits
                c |= key[j] & 3
                j += 1
            col[k] = nb
            code[k] = c
            k += 1
        indptr[v + 1] = k
    return indptr, col[:k], code[:k]


@njit
def census3_csr(indptr, col, code, n, table):  # pragma: no cover - compiled
    """All 16 triad classes (index = ``table[6-bit code]``) of the skeleton ``(indptr, col, code)``."""
    counts = np.zeros(16, np.int64)
    mark_u = np.zeros(n, np.int64)  # dyad code of (u, x) for x in N(u), else 0
    mark_v = np.zeros(n, np.int64)
    for u in range(n):
        for p in range(indptr[u], indptr[u + 1]):
            mark_u[col[p]] = code[p]
        deg_u = indptr[u + 1] - indptr[u]
        for p in range(indptr[u], indptr[u + 1]):
            v = col[p]
            if v <= u:
                continue
            cuv = np.int64(code[p])
            for q in range(indptr[v], indptr[v + 1]):
                mark_v[col[q]] = code[q]
            common = 0
            for q in range(indptr[v], indptr[v + 1]):  # w in N(v)
                w = col[q]
                if w == u:
                    continue
                cuw = mark_u[w]
                if cuw != 0:
                    common += 1
                if v < w or (u < w and cuw == 0):
                    counts[table[cuv | (cuw << 2) | (np.int64(code[q]) << 4)]] += 1
            for q in range(indptr[u], indptr[u + 1]):  # w in N(u) but not in N(v): counted iff v < w
                w = col[q]
                if w > v and mark_v[w] == 0:
                    counts[table[cuv | (np.int64(code[q]) << 2)]] += 1
            deg_v = indptr[v + 1] - indptr[v]
            others = n - 2 - (deg_u - 1) - (deg_v - 1) + common  # adjacent to neither u nor v
            counts[2 if cuv == 3 else 1] += others
            for q in range(indptr[v], indptr[v + 1]):
                mark_v[col[q]] = 0
        for p in range(indptr[u], indptr[u + 1]):
            mark_u[col[p]] = 0
    counts[0] = n * (n - 1) * (n - 2) // 6 - counts[1:].sum()
    return counts


@njit
def _flip(c):  # pragma: no cover - compiled
    return ((c & 1) << 1) | (c >> 1)


@njit
def census4_csr(indptr, col, code, n, cls, n_classes):  # pragma: no cover - compiled
    """Spanning-tree totals per 4-node class (``cls[12-bit code]``); divide by the tree counts."""
    raw = np.zeros(n_classes, np.int64)
    mark_a = np.zeros(n, np.int64)
    mark_b = np.zeros(n, np.int64)
    mark_c = np.zeros(n, np.int64)
    maxdeg = 0
    for v in range(n):
        maxdeg = max(maxdeg, indptr[v + 1] - indptr[v])
    tail = np.empty(maxdeg, np.int64)
    # paths a-b-c-d keyed by the middle edge (b, c), b < c; node order a=0, b=1, c=2, d=3
    for b in range(n):
        for p in range(indptr[b], indptr[b + 1]):
            mark_b[col[p]] = code[p]
        for pc in range(indptr[b], indptr[b + 1]):
            c = col[pc]
            if c <= b:
                continue
            for q in range(indptr[c], indptr[c + 1]):
                mark_c[col[q]] = code[q]
            for k in range(indptr[c], indptr[c + 1]):  # d-dependent bits: (b, d) << 8, (c, d) << 10
                tail[k - indptr[c]] = (mark_b[col[k]] << 8) | (np.int64(code[k]) << 10)
            cbc = np.int64(code[pc]) << 6
            for pa in range(indptr[b], indptr[b + 1]):
                a = col[pa]
                if a == c:
                    continue
                for q in range(indptr[a], indptr[a + 1]):
                    mark_a[col[q]] = code[q]
                head = _flip(np.int64(code[pa])) | (_flip(mark_c[a]) << 2) | cbc
                for k in range(indptr[c], indptr[c + 1]):
                    d = col[k]
                    if d != b and d != a:
                        raw[cls[head | (mark_a[d] << 4) | tail[k - indptr[c]]]] += 1
                for q in range(indptr[a], indptr[a + 1]):
                    mark_a[col[q]] = 0
            for q in range(indptr[c], indptr[c + 1]):
                mark_c[col[q]] = 0
        for p in range(indptr[b], indptr[b + 1]):
            mark_b[col[p]] = 0
    # stars: centre v and neighbours x < y < z (positions in row v); node order v=0, x=1, y=2, z=3
    for v in range(n):
        lo = indptr[v]
        k = indptr[v + 1] - lo
        if k < 3:
            continue
        local = np.empty((k, k), np.int64)  # dyad codes among the neighbours of v
        for i in range(k):
            x = col[lo + i]
            for q in range(indptr[x], indptr[x + 1]):
                mark_a[col[q]] = code[q]
            for j in range(k):
                local[i, j] = mark_a[col[lo + j]]
            for q in range(indptr[x], indptr[x + 1]):
                mark_a[col[q]] = 0
        for i in range(k - 2):
            for j in range(i + 1, k - 1):
                head = np.int64(code[lo + i]) | (np.int64(code[lo + j]) << 2) | (local[i, j] << 6)
                for z in range(j + 1, k):
                    raw[cls[head | (np.int64(code[lo + z]) << 4) | (local[i, z] << 8) | (local[j, z] << 10)]] += 1
    return raw
