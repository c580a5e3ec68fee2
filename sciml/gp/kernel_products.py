"""Matrix-free products with the joint energy/force covariance: ``K(x, X) V`` without forming ``K``.

With ``d_bp = x - Q_p x_b`` (``Q_p`` the permutation ``p`` of the descriptor entries) and per-pair
coefficients ``(c0, c1, c2)`` (:mod:`sciml.gp.kernels`), the product of the covariance between
rows ``t`` and training structures ``b`` with a vector ``v = [v_E, v_F]`` per structure is::

    w_bp = Q_p J_b^T v_F,b                                   (once per v: O(N P D))
    s_tbp = d_tbp . w_bp
    E_t   = sum_bp c0 v_E,b + c1 s_tbp
    F_t   = J_t^T sum_bp [(c2 s_tbp - c1 v_E,b) d_tbp - c1 w_bp]

— the same numbers as the assembled block ``K(x_t, X) v``, at ``O(P D)`` per pair instead of
``O(P D M^2)`` (``M = 1 + 3 n_atoms``). Every sum over ``(p, b)`` is one matrix product (BLAS).
The posterior mean (``v = alpha``, what MD calls) and the conjugate-gradient solver (``v`` the
search directions, several right-hand sides at once) both use it; the 1,000-frame aspirin
covariance (64,000 square, 33 GB if formed) is multiplied in ~1-2 s this way.
"""
from __future__ import annotations

import torch

from .descriptors import Geometry, Permutations

__all__ = ["PermutedTraining", "kernel_times"]


class PermutedTraining:
    """Training descriptors under every permutation, ``XQ[p, b] = Q_p x_b`` (``(P, N, D)``), and weights per ``v``."""

    def __init__(self, geo: Geometry, perms: Permutations):
        self.geo = geo
        self.idx = perms.idx
        self.XQ = geo.X[:, perms.idx].permute(1, 0, 2).contiguous()

    def weights(self, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(WQ (P, N, D, k), xw (P, N, k), vE (N, k))`` for ``V`` of shape ``(N, M, k)`` or ``(N * M, k)``."""
        geo = self.geo
        n, m = len(geo), geo.n_outputs
        V = V.reshape(n, m, -1)
        y = torch.einsum("nid,nik->ndk", geo.Jt, V[:, 1:])  # J_b^T v_F,b
        WQ = y[:, self.idx].permute(1, 0, 2, 3).contiguous()  # (P, N, D, k)
        xw = torch.einsum("pnd,pndk->pnk", self.XQ, WQ)
        return WQ, xw, V[:, 0].contiguous()


def kernel_times(
    gt: Geometry, coeffs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], train: PermutedTraining,
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``K(x_t, X) V``: energies ``(nt, k)`` and forces ``(nt, 3 n_atoms, k)``.

    ``coeffs`` are the per-pair coefficients ``(P, nt, N)`` of rows ``gt`` against the training
    set, ``weights`` from :meth:`PermutedTraining.weights`.
    """
    c0, c1, c2 = coeffs
    WQ, xw, vE = weights
    XQ = train.XQ
    s = torch.einsum("td,pndk->ptnk", gt.X, WQ) - xw[:, None]
    e = torch.einsum("ptn,nk->tk", c0, vE) + torch.einsum("ptn,ptnk->tk", c1, s)
    coef = c2[..., None] * s
    coef -= c1[..., None] * vE[None, None]
    del s
    g = (gt.X[:, :, None] * coef.sum((0, 2))[:, None, :] - torch.einsum("ptnk,pnd->tdk", coef, XQ)
         - torch.einsum("ptn,pndk->tdk", c1, WQ))
    return e, torch.einsum("tid,tdk->tik", gt.Jt, g)
