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
these paths (see the notes in ``workflows/bench_potentials_sciml.py``).

Feature layout follows e3nn: an irrep block ``mul x l`` is stored as ``(mul, 2l+1)`` flattened.
"""
from __future__ import annotations

import math

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
        in_slices = self.irreps_in.slices()
        sh_slices = self.irreps_sh.slices()
        for i1, (mul, ir1) in enumerate(self.irreps_in):
            for i2, (mul2, ir2) in enumerate(self.irreps_sh):
                if mul2 != 1:
                    raise ValueError("irreps_sh must have multiplicity 1 per irrep")
                for ir3 in ir1 * ir2:
                    if ir3 not in wanted:
                        continue
                    l1, l2, l3 = ir1.l, ir2.l, ir3.l
                    paths.append((in_slices[i1].start, in_slices[i1].stop, mul, l1,
                                  sh_slices[i2].start, sh_slices[i2].stop, l2, l3, w_off))
                    out.append((mul, ir3))
                    w_off += mul
                    # kept in float64 (not a buffer, so .float()/.double() never round it) and cast in forward
                    self._cg.append(o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1))
        self.paths = paths
        self.irreps_out = o3.Irreps(out)
        self.weight_numel = w_off

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x``: (E, irreps_in.dim) features of the neighbours, ``sh``: (E, irreps_sh.dim), ``weight``:
        (E, weight_numel) -> (E, irreps_out.dim)."""
        E = x.shape[0]
        outs = []
        for k, (a, b, mul, l1, sa, sb, l2, l3, wo) in enumerate(self.paths):
            xi = x[:, a:b].reshape(E, mul, 2 * l1 + 1)
            y = sh[:, sa:sb]
            w = weight[:, wo : wo + mul]
            if l1 == 0:  # C_{0 j k} = delta_jk / sqrt(2 l2 + 1) -> scaled by sqrt(2 l3 + 1) = 1
                out = (w * xi[:, :, 0]).unsqueeze(-1) * y.unsqueeze(1)
            elif l3 == 0:  # C_{i j 0} = delta_ij / sqrt(2 l1 + 1): a dot product
                out = (w * (xi * y.unsqueeze(1)).sum(-1) * (1.0 / math.sqrt(2 * l1 + 1))).unsqueeze(-1)
            else:
                cg = self._cg[k].to(device=y.device, dtype=y.dtype)
                yc = torch.einsum("ej,ijk->eik", y, cg)  # (E, 2l1+1, 2l3+1), once per edge
                out = torch.bmm(xi, yc) * w.unsqueeze(-1)
            outs.append(out.reshape(E, -1))
        return torch.cat(outs, dim=1)
