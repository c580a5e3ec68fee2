"""Signed and weighted motifs.

*Feed-forward loop types* (Mangan & Alon, PNAS 2003). An FFL ``X -> Y -> Z, X -> Z`` is
*coherent* when the sign of the direct path ``X -> Z`` equals the sign of the indirect
path (product of ``X -> Y`` and ``Y -> Z``), otherwise *incoherent*:

====  ========  ========  ========
type  X -> Y    Y -> Z    X -> Z
====  ========  ========  ========
C1    \\+        \\+        \\+
C2    \\-        \\+        \\-
C3    \\+        \\-        \\-
C4    \\-        \\-        \\+
I1    \\+        \\-        \\+
I2    \\-        \\-        \\-
I3    \\+        \\+        \\-
I4    \\-        \\+        \\+
====  ========  ========  ========

Enrichment is tested against *sign-shuffled* nulls: the wiring is kept and the edge
signs are permuted among edges, so the question is whether signs are arranged into
coherent loops more often than their overall frequencies imply.

*Weighted intensity and coherence* (Onnela, Saramaki, Kertesz & Kaski, PRE 71, 065103,
2005): with weights normalised by the largest ``|w|`` in the graph, a subgraph ``g``
with edges ``l_g`` has intensity ``I(g) = (prod |w|)^(1/|l_g|)`` (geometric mean) and
coherence ``Q(g) = I(g) / mean(|w|)`` (1 when all its weights are equal).
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from .census import graph_to_arrays
from .census_numpy import _segment_pairs, _Skeleton, _triangles
from .motif_classes import TRIAD_CODES, TRIAD_CODES_ALL, _triad_table
from .significance import significance_table

__all__ = ["FFL_TYPES", "ffl_types", "signed_ffl_significance", "motif_intensity"]

# (s_xy, s_yz, s_xz) -> type
FFL_TYPES: dict[str, tuple[int, int, int]] = {
    "C1": (1, 1, 1), "C2": (-1, 1, -1), "C3": (1, -1, -1), "C4": (-1, -1, 1),
    "I1": (1, -1, 1), "I2": (-1, -1, -1), "I3": (1, 1, -1), "I4": (-1, 1, 1),
}
_TYPE_OF = np.zeros(8, dtype=np.int64)
for _k, (_a, _b, _c) in enumerate(FFL_TYPES.values()):
    _TYPE_OF[((_a > 0) << 2) | ((_b > 0) << 1) | (_c > 0)] = _k


def _edge_index(src: np.ndarray, dst: np.ndarray, n: int):
    keys = src * n + dst
    order = np.argsort(keys)
    skeys = keys[order]

    def find(x, y):
        pos = np.searchsorted(skeys, x * n + y)
        pos = np.minimum(pos, len(skeys) - 1)
        hit = skeys[pos] == x * n + y
        return np.where(hit, order[pos], -1)

    return find


def _signs(G: nx.DiGraph, src, dst, nodes) -> np.ndarray:
    out = np.empty(len(src), dtype=np.int64)
    for k, (i, j) in enumerate(zip(src, dst)):
        data = G.edges[nodes[i], nodes[j]]
        if "sign" in data:
            s = data["sign"]
        elif "weight" in data:
            s = -1 if data["weight"] < 0 else 1
        else:
            raise ValueError(
                f"edge ({nodes[i]!r}, {nodes[j]!r}) has neither a 'sign' nor a 'weight' attribute; "
                "signed motifs need signed edges (see weights_to_graph)"
            )
        if s not in (-1, 1):
            raise ValueError(f"edge ({nodes[i]!r}, {nodes[j]!r}) has sign {s!r}; expected +1 or -1")
        out[k] = s
    return out


def _ffl_instances(src, dst, n, induced: bool) -> np.ndarray:
    """Edge indices (xy, yz, xz) of every FFL embedding; induced: only in 030T triads."""
    sk = _Skeleton(src, dst, n)
    u, v, w, duv, duw, dvw = _triangles(sk)
    if len(u) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    find = _edge_index(src, dst, n)
    if induced:
        code = duv.astype(np.int64) | (duw.astype(np.int64) << 2) | (dvw.astype(np.int64) << 4)
        keep = _triad_table()[code] == TRIAD_CODES_ALL.index("030T")
        u, v, w = u[keep], v[keep], w[keep]
    tri = np.stack([u, v, w], axis=1)
    out = []
    for px, py, pz in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        x, y, z = tri[:, px], tri[:, py], tri[:, pz]
        exy, eyz, exz = find(x, y), find(y, z), find(x, z)
        ok = (exy >= 0) & (eyz >= 0) & (exz >= 0)
        out.append(np.stack([exy[ok], eyz[ok], exz[ok]], axis=1))
    return np.concatenate(out)


def _type_counts(inst: np.ndarray, signs: np.ndarray) -> np.ndarray:
    s = signs[inst] > 0
    t = _TYPE_OF[(s[:, 0].astype(np.int64) << 2) | (s[:, 1].astype(np.int64) << 1) | s[:, 2]]
    c = np.bincount(t, minlength=8)
    return np.concatenate([c, [c[:4].sum(), c[4:].sum()]])


def ffl_types(G: nx.DiGraph, induced: bool = True) -> dict[str, int]:
    """Counts of the 8 signed feed-forward-loop types plus ``coherent`` and ``incoherent`` totals.

    Signs come from the ``sign`` edge attribute (else the sign of ``weight``).
    ``induced=True`` counts FFLs forming an induced ``030T`` triad (no other edge among the
    three nodes, as in the census); ``induced=False`` counts every FFL embedding, also
    inside denser triads.

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.DiGraph()
    >>> G.add_edges_from([(0, 1, {"sign": 1}), (1, 2, {"sign": -1}), (0, 2, {"sign": 1})])
    >>> ffl_types(G)["I1"], ffl_types(G)["incoherent"]
    (1, 1)
    """
    src, dst, n, nodes = graph_to_arrays(G)
    signs = _signs(G, src, dst, nodes)
    c = _type_counts(_ffl_instances(src, dst, n, induced), signs)
    return dict(zip([*FFL_TYPES, "coherent", "incoherent"], (int(x) for x in c)))


def signed_ffl_significance(
    G: nx.DiGraph, n_random: int = 1000, seed: int | None = 0, induced: bool = True
) -> pd.DataFrame:
    """Enrichment of FFL sign types against sign-shuffled nulls (wiring fixed, signs permuted).

    Returns a DataFrame indexed by ``C1..C4, I1..I4, coherent, incoherent`` with the columns of
    :func:`sciml.motifs.motif_significance` (``concentration`` is the share among FFLs).

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.gnp_random_graph(40, 0.15, directed=True, seed=0)
    >>> for e in G.edges: G.edges[e]["sign"] = 1
    >>> float(signed_ffl_significance(G, n_random=50).loc["coherent", "concentration"])
    1.0
    """
    if not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random must be a positive integer, got {n_random!r}")
    src, dst, n, nodes = graph_to_arrays(G)
    signs = _signs(G, src, dst, nodes)
    inst = _ffl_instances(src, dst, n, induced)
    if len(inst) == 0:
        raise ValueError("G contains no feed-forward loops: nothing to classify")
    obs = _type_counts(inst, signs)
    rng = np.random.default_rng(seed)
    rand = np.vstack([_type_counts(inst, rng.permutation(signs)) for _ in range(int(n_random))])
    keys = [*FFL_TYPES, "coherent", "incoherent"]
    df = significance_table(obs, rand, keys)
    df["concentration"] = obs / obs[-2:].sum()
    df["name"] = [("coherent FFL " if k.startswith("C") else "incoherent FFL ") + k if len(k) == 2 else k + " FFLs"
                  for k in keys]
    df = df.drop(columns="sp")
    df.attrs.update(null="sign-shuffle", n_random=int(n_random), induced=induced)
    return df


def motif_intensity(G: nx.DiGraph, weight: str = "weight") -> pd.DataFrame:
    """Onnela et al. (2005) intensity and coherence of every connected 3-node class.

    Weights are normalised by the largest ``|weight|`` of ``G`` (edges without the attribute
    count as 1). Returns a DataFrame indexed by triad code with ``count``, ``intensity``
    (sum of I(g) over instances), ``mean_intensity`` and ``coherence`` (mean Q(g)).

    Example
    -------
    >>> import networkx as nx
    >>> G = nx.DiGraph()
    >>> G.add_weighted_edges_from([(0, 1, 1.0), (1, 2, 0.25), (0, 2, 1.0)])
    >>> round(float(motif_intensity(G).loc["030T", "intensity"]), 3)
    0.63
    """
    src, dst, n, nodes = graph_to_arrays(G)
    w = np.array([abs(float(G.edges[nodes[i], nodes[j]].get(weight, 1.0))) for i, j in zip(src, dst)])
    if not np.all(np.isfinite(w)):
        raise ValueError(f"edge attribute {weight!r} has NaN/inf values")
    if w.max() <= 0:
        raise ValueError(f"all edge weights ({weight!r}) are zero")
    w = w / w.max()
    find = _edge_index(src, dst, n)
    sk = _Skeleton(src, dst, n)
    # open triads: pairs of skeleton neighbours of a centre that are not adjacent
    p, q = _segment_pairs(sk.indptr[:-1], sk.deg)
    c = sk.row[p]
    x, y = sk.col[p], sk.col[q]
    dxy = sk.lookup(x, y)
    op = dxy == 0
    trip_open = np.stack([c[op], x[op], y[op]], axis=1)
    code_open = sk.code[p][op].astype(np.int64) | (sk.code[q][op].astype(np.int64) << 2)
    u, v, t, duv, duw, dvw = _triangles(sk)
    trip_closed = np.stack([u, v, t], axis=1)
    code_closed = duv.astype(np.int64) | (duw.astype(np.int64) << 2) | (dvw.astype(np.int64) << 4)
    trip = np.concatenate([trip_open, trip_closed])
    cls = _triad_table()[np.concatenate([code_open, code_closed])] - 3
    logsum = np.zeros(len(trip))
    lin = np.zeros(len(trip))
    ne = np.zeros(len(trip))
    for a, b in ((0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)):
        e = find(trip[:, a], trip[:, b])
        has = e >= 0
        we = np.where(has, w[np.maximum(e, 0)], 1.0)
        logsum += np.where(has, np.log(np.maximum(we, 1e-300)), 0.0)
        lin += np.where(has, we, 0.0)
        ne += has
    inten = np.exp(logsum / ne)
    coh = inten / (lin / ne)
    k = len(TRIAD_CODES)
    count = np.bincount(cls, minlength=k)
    tot = np.bincount(cls, weights=inten, minlength=k)
    cohs = np.bincount(cls, weights=coh, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = pd.DataFrame(
            {"count": count, "intensity": tot, "mean_intensity": tot / count, "coherence": cohs / count},
            index=pd.Index(list(TRIAD_CODES), name="motif"),
        )
    return df
