"""Energy, forces and stress of large structures in bounded memory (layer-by-layer, block-by-block).

Why: back-propagating through the whole network at once keeps every per-edge intermediate of
every layer alive until the backward pass -- about 4 kB per edge in float32, 18 GB for 10^5
fcc atoms (4.2 million edges). Worse, each of those tensors is larger than glibc's mmap
threshold (32 MB), so every step maps fresh pages and the kernel zero-fills them: at 10^4
atoms half of the CPU time went to page faults (155 minor faults per atom per step), which is
why the cost per atom grew with the system size.

How: the network is evaluated one block of centre atoms at a time, so no tensor is larger than
one block's edges, and only per-atom (node) features are kept between blocks:

1. forward sweep (no autograd): ``H_0 = embedding(species)``; for each layer but the last,
   ``H_{k+1}[block] = update(H_k[block], aggregate(linear_up(H_k)[neighbours], edges of block))``;
2. backward sweep, last layer first: each block is recomputed with autograd, from leaves
   ``H_k[block]``, ``linear_up(H_k)[neighbours of block]`` and the block's edge vectors, and
   differentiated against the block's energies (last layer) or against ``dE/dH_{k+1}[block]``
   from the layer above. Gradients w.r.t. edge vectors give the forces
   (``F_i = sum_{e: i=centre} g_e - sum_{e: i=neighbour} g_e``) and the virial
   (``W = sum_e r_e g_e^T``, stress ``= sym(W) / V``); gradients w.r.t. node features are
   accumulated for the layer below (``linear_up`` is differentiated node block by node block).

Exact: the same terms as full autograd, summed in another order (float rounding only; tested).
Cost: the forward of every layer but the last is computed twice (once without autograd, once
in the backward sweep): about +10-15 % for the default two layers, against 2-3x saved in page
faults and cache misses on large systems. Memory: a few node-feature arrays (N x 288 floats for
the default model) plus one block's autograd graph (``max_edges`` edges).

Blocks are ranges of consecutive atom indices (edges sorted by centre, as the neighbour list
returns them). Any atom order gives the same numbers; orders in which consecutive atoms are
near each other (lattice builders, ``Atoms.repeat``, most MD codes) keep each block's set of
neighbour atoms small. (A Z-order re-numbering of a 10^4-atom ``repeat`` cell was measured and
was not faster, so none is applied.)
"""
from __future__ import annotations

from typing import Iterator

import torch

from .graph import AtomicGraph
from .model import EquivariantPotential, edge_vectors
from .tensor_product import ChannelwiseTensorProduct, PaddedEdges, _scalar_input, _scalar_output

#: Default edges per block: every per-block tensor stays below glibc's 32 MB mmap threshold in float64.
DEFAULT_MAX_EDGES = 16384


def blocks(centre: torch.Tensor, num_nodes: int, max_edges: int) -> list[tuple[int, int, int, int]]:
    """Split atoms ``0..num_nodes-1`` into ranges ``(a, b, e0, e1)`` with at most ``max_edges`` edges each.

    ``centre`` must be sorted; edges ``e0:e1`` are those whose centre is in ``a:b``. An atom with
    more than ``max_edges`` edges gets a block of its own.
    """
    counts = torch.bincount(centre, minlength=num_nodes).cpu()
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=ptr[1:])
    # greedy: cut where the cumulative edge count passes a multiple of max_edges
    ptr_list = ptr.tolist()
    out, a = [], 0
    while a < num_nodes:
        target = ptr_list[a] + max_edges
        b = int(torch.searchsorted(ptr, torch.tensor(target), right=True)) - 1
        b = max(min(b, num_nodes), a + 1)
        out.append((a, b, ptr_list[a], ptr_list[b]))
        a = b
    return out


class _Block:
    """The edges of one block of centre atoms, relabelled for the block's own node tensors."""

    def __init__(self, graph: AtomicGraph, a: int, b: int, e0: int, e1: int, dtype: torch.dtype) -> None:
        self.a, self.b = a, b
        ei = graph.edge_index[:, e0:e1]
        self.centre, self.neighbour = ei[0], ei[1]
        self.centre_local = self.centre - a
        # the block's neighbour atoms, sorted, and each edge's neighbour as an index into them
        self.sub, self.neighbour_local = torch.unique(self.neighbour, sorted=True, return_inverse=True)
        with torch.no_grad():
            self.vec = edge_vectors(graph.positions, ei, graph.shifts[e0:e1], graph.cell, graph.batch).to(dtype)
        self.graph = graph
        self._pads: dict = {}

    @property
    def size(self) -> int:
        return self.b - self.a

    def pads(self, tp) -> tuple:
        """Paddings for :func:`sciml.potentials.tensor_product.convolve` (only the one the layer uses)."""
        if not isinstance(tp, ChannelwiseTensorProduct) or self.centre.numel() == 0:
            return None
        if _scalar_input(tp):
            if "c" not in self._pads:
                self._pads["c"] = PaddedEdges(self.centre_local, self.size)
            return (self._pads["c"], None)
        if _scalar_output(tp):
            if "n" not in self._pads:
                self._pads["n"] = PaddedEdges(self.neighbour_local, int(self.sub.numel()))
            return (None, self._pads["n"])
        return None


def _node_blocks(n: int, size: int) -> Iterator[slice]:
    for a in range(0, n, size):
        yield slice(a, min(a + size, n))


def _linear_up(layer, H: torch.Tensor, rows: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([layer.linear_up(H[s]) for s in _node_blocks(H.shape[0], rows)]) if H.shape[0] else \
            layer.linear_up(H)


# Over 100 lines with a reason: one algorithm in two sweeps (forward node features layer by layer, then
# the backward adjoint sweep) sharing the block list, closures and per-layer buffers; split apart, the
# adjoint bookkeeping (which buffer is freed when) would be spread over several functions.
def chunked_properties(
    model: EquivariantPotential,
    graph: AtomicGraph,
    forces: bool = True,
    stress: bool = False,
    max_edges: int = DEFAULT_MAX_EDGES,
    progress=None,
) -> dict[str, torch.Tensor]:
    """Energies, forces and stress like :func:`sciml.potentials.forces.compute_properties`, in bounded memory.

    ``graph`` must have its edges sorted by centre atom (``graph.neighbor_list`` and the calculator
    produce them so; unsorted graphs are sorted here). No autograd graph is returned (inference only).
    Positions may be float64 with a float32 model: edge vectors are formed in the graph's
    precision, then cast to the model's.

    Example
    -------
    >>> out = chunked_properties(model, graph, stress=True, max_edges=16384)  # doctest: +SKIP
    >>> out["forces"].shape  # doctest: +SKIP
    torch.Size([100920, 3])
    """
    if max_edges < 1:
        raise ValueError(f"max_edges must be a positive integer, got {max_edges!r}")
    graph = sort_edges(graph)
    p = next(model.parameters())
    dtype, device = p.dtype, p.device
    N, B = graph.positions.shape[0], graph.num_graphs
    species = graph.species
    layers = list(model.layers)
    norm = model.message_norm()
    S = len(model.species)
    blk = blocks(graph.edge_index[0], N, max_edges)
    rows = max(max_edges // 8, 1024)  # node rows per block of node-level work (~ atoms of an edge block)

    def onehot(a: int, b: int) -> torch.Tensor:
        return torch.nn.functional.one_hot(species[a:b], S).to(dtype)

    def evaluate(layer, k_last: bool, blk_: _Block, H: torch.Tensor, X: torch.Tensor, leaf_nodes: bool):
        """One block of one layer with autograd from the block's leaves; returns (output, leaves)."""
        vec = blk_.vec.detach().requires_grad_(forces or stress)
        xs = X[blk_.sub].requires_grad_(leaf_nodes)
        hc = H[blk_.a : blk_.b].requires_grad_(leaf_nodes)
        sh, basis, env = model.edge_attributes(vec)
        agg = layer.aggregate(xs, sh, basis, env, blk_.centre_local, blk_.neighbour_local, blk_.size,
                              blk_.pads(layer.tp))
        out = layer.update(hc, onehot(blk_.a, blk_.b), agg, norm)
        if k_last:
            out = model.node_energies(out, species[blk_.a : blk_.b])
        return out, vec, xs, hc

    # ---- forward sweep: node features of every layer input (no autograd)
    with torch.no_grad():
        H = [model.embedding(species)]
        for k, layer in enumerate(layers[:-1]):
            X = _linear_up(layer, H[k], rows)
            Hn = None
            for (a, b, e0, e1) in blk:
                bl = _Block(graph, a, b, e0, e1, dtype)
                out, *_ = evaluate(layer, False, bl, H[k], X, False)
                if Hn is None:
                    Hn = out.new_empty((N, out.shape[1]))
                Hn[a:b] = out
            H.append(Hn)
            del X

    # ---- backward sweep
    energies = torch.empty(N, dtype=dtype, device=device)
    F = torch.zeros((N, 3), dtype=dtype, device=device)
    W = torch.zeros((B, 3, 3), dtype=dtype, device=device)
    need = forces or stress
    g_next = None
    for k in reversed(range(len(layers))):
        layer, last = layers[k], k == len(layers) - 1
        leaf_nodes = need and k > 0  # H_0 (the embedding) does not depend on positions
        X = _linear_up(layer, H[k], rows)
        gX = torch.zeros_like(X) if leaf_nodes else None
        gH = torch.zeros_like(H[k]) if leaf_nodes else None
        for (a, b, e0, e1) in blk:
            bl = _Block(graph, a, b, e0, e1, dtype)
            with torch.enable_grad():
                out, vec, xs, hc = evaluate(layer, last, bl, H[k], X, leaf_nodes)
                if last:
                    energies[a:b] = out.detach()
                if not need:
                    continue
                inputs = [vec] + ([xs, hc] if leaf_nodes else [])
                if last:
                    grads = torch.autograd.grad(out.sum(), inputs, allow_unused=True)
                else:
                    grads = torch.autograd.grad(out, inputs, grad_outputs=g_next[a:b], allow_unused=True)
            gvec = grads[0] if grads[0] is not None else torch.zeros_like(vec)
            if forces:
                F.index_add_(0, bl.centre, gvec)
                F.index_add_(0, bl.neighbour, -gvec)
            if stress:
                W.index_add_(0, graph.batch[bl.centre], vec.detach().unsqueeze(2) * gvec.unsqueeze(1))
            if leaf_nodes:
                if grads[1] is not None:
                    gX.index_add_(0, bl.sub, grads[1])
                if grads[2] is not None:
                    gH[a:b] += grads[2]
            if progress is not None:
                progress(1)
        if leaf_nodes:  # through linear_up, node block by node block
            for s in _node_blocks(N, rows):
                with torch.enable_grad():
                    h = H[k][s].detach().requires_grad_(True)
                    (g,) = torch.autograd.grad(layer.linear_up(h), h, grad_outputs=gX[s])
                gH[s] += g
        g_next = gH
        del X, gX
        H[k] = None  # no longer needed: free it before the next layer down
    energy = torch.zeros(B, dtype=dtype, device=device).index_add(0, graph.batch, energies)
    out = {"energy": energy, "energies": energies}
    if forces:
        out["forces"] = F
    if stress:
        cell = graph.cell.to(dtype)
        vol = torch.linalg.det(cell).abs().clamp_min(1e-12)
        periodic = graph.pbc.all(dim=1).to(dtype)
        out["stress"] = 0.5 * (W + W.transpose(1, 2)) / vol[:, None, None] * periodic[:, None, None]
    return out


def sort_edges(graph: AtomicGraph) -> AtomicGraph:
    """The same graph with edges sorted by centre atom (returned as is when they already are)."""
    centre = graph.edge_index[0]
    if centre.numel() < 2 or bool((centre[1:] >= centre[:-1]).all()):
        return graph
    order = torch.argsort(centre, stable=True)
    g = AtomicGraph(**{f: getattr(graph, f) for f in ("positions", "species", "cell", "batch", "n_atoms", "pbc",
                                                       "energy", "forces", "stress", "has_stress")},
                    edge_index=graph.edge_index[:, order], shifts=graph.shifts[order], extra=dict(graph.extra))
    return g
