"""Channel-wise ("uvu") equivariant tensor product of node features with edge spherical harmonics.

For every path ``(l1 from the features) x (l2 from Y) -> l3`` and channel ``u``::

    out[e, u, k] = w[e, path, u] * sqrt(2 l3 + 1) * sum_ij C^{l1 l2 l3}_{ijk} x[e, u, i] Y[e, j]

with ``C`` the real Clebsch-Gordan coefficients of e3nn (``o3.wigner_3j``, same basis as
``o3.SphericalHarmonics``), so the output of each path is an irrep ``l3`` and has unit
component variance for unit-variance inputs. This computes the same kind of messages as
``e3nn.o3.TensorProduct`` with ``"uvu"`` instructions and per-edge weights, but the edge part
``sum_j C_ijk Y_j`` is contracted once per edge and the two cases every default model uses
are reduced to elementwise products: ``l1 = 0`` (scalar features times ``Y``) and ``l3 = 0``
(dot products ``x_l . Y_l``). On CPU this is ~10-40x faster than the generic e3nn kernel for
these paths (see the notes in ``workflows/benchmarks/potentials_speed.py``).

Feature layout follows e3nn: an irrep block ``mul x l`` is stored as ``(mul, 2l+1)`` flattened.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from e3nn import o3
from torch import nn


class ChannelwiseTensorProduct(nn.Module):
    """``uvu`` tensor product ``irreps_in x irreps_sh -> irreps_out`` with external per-edge weights.

    ``irreps_out`` lists one block per path, in path order (it is not sorted or simplified);
    ``weight_numel`` is the number of weights per edge.
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, wanted: set) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        paths, out = [], []
        self._cg: list[torch.Tensor] = []
        w_off = 0
        self.in_dims = [mul * ir.dim for mul, ir in self.irreps_in]
        self.sh_dims = [ir.dim for _, ir in self.irreps_sh]
        for i1, (mul, ir1) in enumerate(self.irreps_in):
            for i2, (mul2, ir2) in enumerate(self.irreps_sh):
                if mul2 != 1:
                    raise ValueError("irreps_sh must have multiplicity 1 per irrep")
                for ir3 in ir1 * ir2:
                    if ir3 not in wanted:
                        continue
                    l1, l2, l3 = ir1.l, ir2.l, ir3.l
                    paths.append((i1, mul, l1, i2, l2, l3, w_off))
                    out.append((mul, ir3))
                    w_off += mul
                    # kept in float64 (not a buffer, so .float()/.double() never round it) and cast in forward
                    self._cg.append(o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1))
        self.paths = paths
        self.irreps_out = o3.Irreps(out)
        self.weight_numel = w_off
        # plain Python facts for the fast paths of ``convolve`` (no Irreps objects in forward, which
        # also keeps torch.compile's guards away from e3nn's Irrep tuples)
        self.scalar_input = len(self.irreps_in) == 1 and self.irreps_in[0].ir.l == 0 and all(p[2] == 0 for p in paths)
        self.scalar_output = all(p[5] == 0 for p in paths)
        self.in_mul = int(self.irreps_in[0].mul) if len(self.irreps_in) else 0

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x``: (E, irreps_in.dim) features of the neighbours, ``sh``: (E, irreps_sh.dim), ``weight``:
        (E, weight_numel) -> (E, irreps_out.dim)."""
        E = x.shape[0]
        # split once (one concatenation in backward) instead of slicing per path (one zero-filled
        # full-size gradient per slice in backward)
        xs = torch.split(x, self.in_dims, dim=1) if len(self.in_dims) > 1 else (x,)
        ys = torch.split(sh, self.sh_dims, dim=1)
        ws = torch.split(weight, [p[1] for p in self.paths], dim=1)
        outs = []
        for k, (i1, mul, l1, i2, l2, l3, wo) in enumerate(self.paths):
            xi = xs[i1].reshape(E, mul, 2 * l1 + 1)
            y = ys[i2]
            w = ws[k]
            if l1 == 0:  # C_{0 j k} = delta_jk / sqrt(2 l2 + 1) -> scaled by sqrt(2 l3 + 1) = 1
                out = (w * xi[:, :, 0]).unsqueeze(-1) * y.unsqueeze(1)
            elif l3 == 0:  # C_{i j 0} = delta_ij / sqrt(2 l1 + 1): a dot product
                out = (w * (xi * y.unsqueeze(1)).sum(-1) * (1.0 / math.sqrt(2 * l1 + 1))).unsqueeze(-1)
            else:
                cg = self._cg[k].to(device=y.device, dtype=y.dtype)
                yc = torch.einsum("ej,ijk->eik", y, cg)  # (E, 2l1+1, 2l3+1), once per edge
                out = torch.bmm(xi, yc) * w.unsqueeze(-1)
            outs.append(out.reshape(E, mul * (2 * l3 + 1)))
        return torch.cat(outs, dim=1)


class PaddedEdges:
    """Edges grouped per node and padded to the largest group: ``flat[e] = group[e] * K + slot``.

    Lets a sum over a node's edges of outer/inner products run as one batched matrix product
    (``torch.bmm`` over nodes) instead of materialising an (E, channels x (2l+1)) message tensor.
    """

    def __init__(self, group: torch.Tensor, num_nodes: int) -> None:
        E = group.shape[0]
        counts = torch.bincount(group, minlength=num_nodes)
        self.K = max(int(counts.max()) if E else 0, 1)
        self.num_nodes = num_nodes
        order = torch.argsort(group, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(group)
        slot[order] = torch.arange(E, device=group.device) - starts[group[order]]
        self.flat = group * self.K + slot

    def pad(self, values: torch.Tensor) -> torch.Tensor:
        """(E, D) -> (N, K, D), zeros where a node has fewer than K edges."""
        out = values.new_zeros((self.num_nodes * self.K, values.shape[1]))
        out = out.index_copy(0, self.flat, values)
        return out.view(self.num_nodes, self.K, values.shape[1])

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """(N, K, D) -> (E, D)."""
        return padded.reshape(self.num_nodes * self.K, -1).index_select(0, self.flat)


def _scalar_input(tp: ChannelwiseTensorProduct) -> bool:
    return tp.scalar_input


def _scalar_output(tp: ChannelwiseTensorProduct) -> bool:
    return tp.scalar_output


def convolve(
    tp: ChannelwiseTensorProduct,
    x: torch.Tensor,
    sh: torch.Tensor,
    weight: torch.Tensor,
    centre: torch.Tensor,
    neighbour: torch.Tensor,
    by_centre: Optional[PaddedEdges],
    by_neighbour: Optional[PaddedEdges],
    num_centres: Optional[int] = None,
) -> torch.Tensor:
    """``sum_{e: centre(e)=i} tp(x[neighbour(e)], sh[e], weight[e])`` for every centre i: (num_centres, irreps_out.dim).

    ``num_centres`` (default ``x.shape[0]``) is the number of output rows; it differs from the rows
    of ``x`` when a block of centres is evaluated on its own (:mod:`sciml.potentials.chunked`).
    A case whose padding is ``None`` falls back to per-edge messages (same numbers).

    Same numbers as gathering, applying ``tp`` per edge and ``index_add``; two common cases avoid
    the (E, irreps_out.dim) message tensor:

    - scalar node features (first layer): the per-edge scalars ``w * x_j`` are padded by centre and
      contracted with the padded ``Y`` by one ``bmm`` per path -> (N, C, 2l+1);
    - scalar outputs (last layer): ``x_j . Y_e`` is computed as ``bmm(Y padded by neighbour, x_j)``,
      so node features are never gathered per edge.
    """
    N, E = x.shape[0], sh.shape[0]
    M = N if num_centres is None else num_centres
    if by_centre is not None and _scalar_input(tp):
        if by_centre.num_nodes != M:
            raise ValueError(f"by_centre pads {by_centre.num_nodes} nodes, expected {M} centres")
        mul = tp.in_mul
        P = len(tp.paths)
        a = weight.view(E, P, mul) * x[neighbour].unsqueeze(1)  # (E, P, C)
        A = by_centre.pad(a.reshape(E, P * mul)).transpose(1, 2)  # (N, P*C, K)
        Y = by_centre.pad(sh)  # (N, K, dim_sh)
        ys = torch.split(Y, tp.sh_dims, dim=2)
        As = torch.split(A, mul, dim=1)  # not slices: their backward would zero-fill a full-size tensor per path
        outs = []
        for k, (i1, m, l1, i2, l2, l3, wo) in enumerate(tp.paths):
            outs.append(torch.bmm(As[k], ys[i2]).reshape(M, -1))
        return torch.cat(outs, dim=1)
    if by_neighbour is not None and _scalar_output(tp):
        xs = torch.split(x, tp.in_dims, dim=1) if len(tp.in_dims) > 1 else (x,)
        Y = by_neighbour.pad(sh)  # (N, K, dim_sh): the edges that *leave* from each node j
        ys = torch.split(Y, tp.sh_dims, dim=2)
        dots = []
        for k, (i1, m, l1, i2, l2, l3, wo) in enumerate(tp.paths):
            xj = xs[i1].reshape(N, m, 2 * l1 + 1).transpose(1, 2)  # (N, 2l+1, C)
            d = torch.bmm(ys[i2], xj)  # (N, K, C)
            dots.append(d * (1.0 / math.sqrt(2 * l1 + 1)))
        msg = by_neighbour.unpad(torch.cat(dots, dim=2)) * weight  # (E, P*C)
        return torch.zeros((M, msg.shape[1]), dtype=msg.dtype, device=msg.device).index_add(0, centre, msg)
    msg = tp(x[neighbour], sh, weight)
    return torch.zeros((M, msg.shape[1]), dtype=msg.dtype, device=msg.device).index_add(0, centre, msg)
