"""Weight matrices -> directed, signed graphs (and graph files -> graphs).

Convention: in a recurrent layer ``h_t = tanh(W_ih x_t + W h_{t-1} + b)`` the entry
``W[j, i]`` is the weight *from* hidden unit ``i`` *to* unit ``j`` (torch's
``weight_hh_l0`` layout). :func:`weights_to_graph` therefore adds the edge ``i -> j``
for ``W[j, i]``. Diagonal entries (self-connections) never become edges: motif
counts ignore them and they are reported separately in ``G.graph["self_loops"]``
and in the node attribute ``self_weight``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

__all__ = ["weights_to_graph", "read_graph", "graph_to_matrix"]

_MODES = ("absolute", "quantile", "density")


def _as_matrix(W: Any) -> np.ndarray:
    if hasattr(W, "detach"):  # torch tensor
        W = W.detach().cpu().numpy()
    try:
        A = np.asarray(W, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"W must be a 2-D numeric array, got {type(W).__name__}") from exc
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"W must be a square matrix (n_units x n_units), got shape {A.shape}")
    if A.shape[0] < 3:
        raise ValueError(f"W has {A.shape[0]} unit(s); motif analysis needs at least 3")
    return A


def weights_to_graph(
    W: Any,
    threshold: float = 0.0,
    mode: str = "absolute",
    signed: bool = True,
    nan: str = "raise",
) -> nx.DiGraph:
    """Directed graph of a recurrent weight matrix: edge ``i -> j`` for ``W[j, i]``.

    Edges are selected by the magnitude ``|W[j, i]|`` of off-diagonal entries:

    - ``mode="absolute"``: keep ``|w| > threshold`` (``threshold >= 0``; the default 0 keeps
      every non-zero weight);
    - ``mode="quantile"``: ``threshold`` in [0, 1): keep weights above that quantile of the
      off-diagonal ``|w|`` (0.9 keeps the strongest 10 %);
    - ``mode="density"``: ``threshold`` in (0, 1]: keep the ``round(threshold * n (n - 1))``
      strongest weights (ties broken by position), so graphs of different networks can be
      compared at matched edge density.

    Every edge carries ``weight`` (the signed weight if ``signed`` else ``|w|``) and ``sign``
    (+1/-1; always +1 if not ``signed``). Self-connections are not edges; they are stored
    in ``G.graph["self_loops"]`` (``{unit: weight}`` for diagonal entries passing the same
    threshold) and in every node's ``self_weight``. ``G.graph`` also records ``threshold``
    (the effective absolute cut), ``mode`` and the achieved ``density``.

    Parameters
    ----------
    W:
        Square (n_units x n_units) array or torch tensor.
    nan:
        ``"raise"`` (default) rejects NaN/inf weights with a ``ValueError`` naming the first
        one; ``"drop"`` treats them as absent connections.

    Example
    -------
    >>> import numpy as np
    >>> W = np.array([[0.0, 0.0, 0.0], [0.9, 0.1, 0.0], [-0.5, 0.7, 0.0]])
    >>> G = weights_to_graph(W, threshold=0.2)
    >>> sorted(G.edges(data="sign"))
    [(0, 1, 1), (0, 2, -1), (1, 2, 1)]
    """
    A = _as_matrix(W)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if nan not in ("raise", "drop"):
        raise ValueError(f"nan must be 'raise' or 'drop', got {nan!r}")
    A, finite = _finite_weights(A, nan)
    thr = float(threshold)
    if not np.isfinite(thr):
        raise ValueError(f"threshold must be finite, got {threshold!r}")
    off = ~np.eye(A.shape[0], dtype=bool) & finite
    keep, cut = _SELECT[mode](np.abs(A), off, thr)
    if not keep.any():
        offvals = np.abs(A)[off]
        raise ValueError(
            f"threshold={threshold!r} (mode={mode!r}) removes every edge of W "
            f"(largest off-diagonal |w| = {offvals.max() if len(offvals) else 0.0:.4g})"
        )
    return _build_graph(A, keep, cut, mode, signed)


def _finite_weights(A: np.ndarray, nan: str) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: reject NaN/inf weights (``nan="raise"``) or zero them (``"drop"``); returns (A, finite mask)."""
    finite = np.isfinite(A)
    if finite.all():
        return A, finite
    if nan == "raise":
        j, i = np.argwhere(~finite)[0]
        raise ValueError(
            f"W contains {int((~finite).sum())} NaN/inf weight(s), first at W[{j}, {i}] = {A[j, i]}; "
            "pass nan='drop' to treat them as missing connections"
        )
    return np.where(finite, A, 0.0), finite


def _keep_absolute(mag: np.ndarray, off: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
    """Step 2, ``mode="absolute"``: off-diagonal ``|w| > thr``; the cut is ``thr``."""
    if thr < 0:
        raise ValueError(f"threshold must be >= 0 in mode='absolute', got {thr!r}")
    return off & (mag > thr), thr


def _keep_quantile(mag: np.ndarray, off: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
    """Step 2, ``mode="quantile"``: ``|w|`` above the ``thr`` quantile of the off-diagonal ``|w|``."""
    if not 0 <= thr < 1:
        raise ValueError(f"threshold must be in [0, 1) in mode='quantile', got {thr!r}")
    offvals = mag[off]
    cut = float(np.quantile(offvals, thr)) if len(offvals) else 0.0
    return off & (mag > cut), cut


def _keep_density(mag: np.ndarray, off: np.ndarray, thr: float) -> tuple[np.ndarray, float]:
    """Step 2, ``mode="density"``: the ``round(thr * n (n - 1))`` strongest non-zero weights (ties by
    position); the cut is the weakest kept ``|w|``."""
    if not 0 < thr <= 1:
        raise ValueError(f"threshold must be a density in (0, 1] in mode='density', got {thr!r}")
    n = mag.shape[0]
    k = int(round(thr * n * (n - 1)))
    flat_idx = np.flatnonzero(off.ravel())
    vals = mag.ravel()[flat_idx]
    nz = vals > 0
    flat_idx, vals = flat_idx[nz], vals[nz]
    order = np.argsort(-vals, kind="stable")[:k]
    keep = np.zeros(n * n, dtype=bool)
    keep[flat_idx[order]] = True
    return keep.reshape(n, n), float(vals[order[-1]]) if len(order) else float("inf")


_SELECT = {"absolute": _keep_absolute, "quantile": _keep_quantile, "density": _keep_density}


def _build_graph(A: np.ndarray, keep: np.ndarray, cut: float, mode: str, signed: bool) -> nx.DiGraph:
    """Step 3: the DiGraph (edge ``i -> j`` for ``keep[j, i]``), its attributes and the self-loop record."""
    n = A.shape[0]
    jj, ii = np.nonzero(keep)
    G = nx.DiGraph()
    diag = np.diag(A)
    G.add_nodes_from((u, {"self_weight": float(diag[u])}) for u in range(n))
    w = A[jj, ii]
    s = np.where(w < 0, -1, 1) if signed else np.ones_like(w, dtype=int)
    wv = w if signed else np.abs(w)
    G.add_edges_from(
        (int(i), int(j), {"weight": float(x), "sign": int(sg)}) for i, j, x, sg in zip(ii, jj, wv, s)
    )
    self_keep = np.abs(diag) > cut if mode != "density" else np.abs(diag) >= cut
    G.graph.update(
        threshold=cut,
        mode=mode,
        density=len(ii) / (n * (n - 1)),
        self_loops={int(u): float(diag[u]) for u in np.flatnonzero(self_keep & (diag != 0))},
        convention="edge i -> j for W[j, i]",
    )
    return G


def graph_to_matrix(G: nx.DiGraph, weight: str | None = "weight") -> np.ndarray:
    """Inverse of :func:`weights_to_graph`: ``M[j, i] = weight of edge i -> j`` (nodes in ``G`` order)."""
    A = nx.to_numpy_array(G, weight=weight, nonedge=0.0)
    return A.T.copy()


def read_graph(path: str | Path, threshold: float = 0.0, mode: str = "absolute") -> nx.DiGraph:
    """Read a directed graph from ``.edgelist``/``.txt`` (``u v [weight]`` per line),
    ``.graphml`` or ``.npy`` (a square weight matrix, converted with :func:`weights_to_graph`
    using ``threshold`` and ``mode``).

    Example
    -------
    >>> G = read_graph("weights.npy", threshold=0.1, mode="density")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"graph file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return weights_to_graph(np.load(path, allow_pickle=False), threshold=threshold, mode=mode)
    if suffix == ".graphml":
        G = nx.read_graphml(path)
        if not G.is_directed():
            raise ValueError(f"{str(path)!r} holds an undirected graph; motifs here are directed")
        return nx.DiGraph(G)
    if suffix in (".edgelist", ".txt", ".tsv", ".csv", ".edges"):
        G = nx.DiGraph()
        delim = "," if suffix == ".csv" else None
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split(delim)
                if len(parts) < 2:
                    raise ValueError(f"{str(path)!r} line {lineno}: expected 'source target [weight]', got {line!r}")
                u, v = parts[0].strip(), parts[1].strip()
                if len(parts) >= 3:
                    try:
                        w = float(parts[2])
                    except ValueError:
                        raise ValueError(f"{str(path)!r} line {lineno}: weight {parts[2]!r} is not a number") from None
                    G.add_edge(u, v, weight=w, sign=-1 if w < 0 else 1)
                else:
                    G.add_edge(u, v)
        return G
    raise ValueError(f"unsupported graph file type {suffix!r} for {str(path)!r}: use .edgelist, .graphml or .npy")
