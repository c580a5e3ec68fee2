"""Radial basis (Bessel) and smooth polynomial cutoff envelope.

``BesselBasis``: ``b_n(r) = sqrt(2/r_c) sin(n pi r / r_c) / r`` (n = 1..num_basis), with the
frequencies ``n pi / r_c`` trainable as in NequIP.
``PolynomialCutoff``: the envelope of DimeNet/NequIP,
``u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2)`` with ``x = r/r_c``,
``u(1) = 0`` and its first ``p-1`` derivatives vanish at the cutoff; it is exactly 0 for
``r >= r_c``. Every radial weight of the network is multiplied by ``u``, so energies and
forces are continuous (to order p-1) as an atom enters or leaves the cutoff sphere.
``RadialMLP``: e3nn's ``FullyConnectedNet`` (same parameters, same state_dict) evaluated with its
constant factors folded into the weight matrices and the envelope applied to the last hidden
layer, which saves elementwise passes over (edges x width) tensors in training's double backward.
"""
from __future__ import annotations

import math

import torch
from e3nn.math import normalize2mom
from e3nn.nn import FullyConnectedNet
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


class RadialMLP(FullyConnectedNet):
    """``FullyConnectedNet(hs, act)`` of e3nn with the same parameters and numbers (to float rounding).

    e3nn multiplies every hidden activation by its second-moment constant and by ``var_out ** 0.5``
    and divides every weight by ``sqrt(h_in)``: here these constants are folded into one scale of
    each weight matrix (a (h_in, h_out) product instead of passes over (E, h) tensors). With
    ``envelope`` (E,), the output rows are multiplied by it; when the last layer is linear (the
    default: no output activation) the envelope multiplies the narrower last hidden layer instead,
    since ``(h * u) @ W = (h @ W) * u``.

    Example
    -------
    >>> import torch
    >>> mlp = RadialMLP([8, 16, 16, 24], torch.nn.functional.silu)
    >>> x, u = torch.randn(5, 8), torch.rand(5)
    >>> torch.allclose(mlp(x, u), FullyConnectedNet.forward(mlp, x) * u[:, None], atol=1e-6)
    True
    """

    def forward(self, x: torch.Tensor, envelope: torch.Tensor | None = None) -> torch.Tensor:
        layers = list(self.children())
        carry = 1.0  # constant factor of x not yet applied
        for k, layer in enumerate(layers):
            last = k == len(layers) - 1
            if layer.act is not None:
                c = carry / (layer.h_in * layer.var_in) ** 0.5
            else:
                c = carry / (layer.h_in * layer.var_in / layer.var_out) ** 0.5
            if last and envelope is not None and layer.act is None:
                x = x * envelope.unsqueeze(-1)
                envelope = None
            x = x @ (layer.weight * c)
            carry = 1.0
            if layer.act is not None:
                act = layer.act
                if isinstance(act, normalize2mom):
                    carry = 1.0 if act._is_id else act.cst
                    act = act.f
                x = act(x)
                carry = carry * layer.var_out**0.5
        if carry != 1.0:
            x = x * carry
        if envelope is not None:
            x = x * envelope.unsqueeze(-1)
        return x
