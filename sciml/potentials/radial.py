"""Radial basis (Bessel) and smooth polynomial cutoff envelope.

``BesselBasis``: ``b_n(r) = sqrt(2/r_c) sin(n pi r / r_c) / r`` (n = 1..num_basis), with the
frequencies ``n pi / r_c`` trainable as in NequIP.
``PolynomialCutoff``: the envelope of DimeNet/NequIP,
``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` with ``x = r/r_c``,
``u(1) = 0`` and its first ``p-1`` derivatives vanish at the cutoff; it is exactly 0 for
``r >= r_c``. Every radial weight of the network is multiplied by ``u``, so energies and
forces are continuous (to order p-1) as an atom enters or leaves the cutoff sphere.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class BesselBasis(nn.Module):
    """Bessel radial basis of size ``num_basis`` on ``[0, cutoff]`` (Å)."""

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        if cutoff <= 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        if num_basis < 1:
            raise ValueError(f"num_basis must be >= 1, got {num_basis}")
        self.cutoff = float(cutoff)
        self.prefactor = math.sqrt(2.0 / self.cutoff)
        w = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / self.cutoff
        if trainable:
            self.freq = nn.Parameter(w)
        else:
            self.register_buffer("freq", w)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: (E,) distances -> (E, num_basis)."""
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.freq * r) / r


class PolynomialCutoff(nn.Module):
    """Smooth polynomial envelope, 1 at r=0 and exactly 0 for r >= cutoff."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        if p < 2:
            raise ValueError(f"cutoff polynomial order p must be >= 2, got {p}")
        self.cutoff = float(cutoff)
        self.p = float(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = r / self.cutoff
        out = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        )
        return out * (x < 1.0)
