"""Vectorised numpy motif census: the ``"numpy"`` engine of :func:`sciml.motifs.motif_census`.

Same conventions and class tables as :mod:`sciml.motifs.motif_classes` (the compiled engine
in :mod:`sciml.motifs.census_numba` gives identical counts); no Python loop over nodes or
node triples.

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

import numpy as np

from .motif_classes import _FLIP, TRIAD_CODES_ALL, _tables, _triad_table

__all__ = ["census3_arrays", "census4_arrays"]


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


def census3_arrays(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
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


def census4_arrays(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
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


