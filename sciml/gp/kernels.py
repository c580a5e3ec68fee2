"""Energy + force (derivative) kernels on molecular descriptors.

A stationary kernel on descriptors ``x(R)`` (Matérn-5/2 or RBF, one length-scale
``l``, signal variance ``s^2``) is written as ``k(x, y) = s^2 g(rho)`` with
``rho = |x - y|^2 / l^2``. With ``d = x_a - Q x_b`` (``Q`` a permutation of the
descriptor entries induced by a permutation of identical atoms), the Jacobians
``J_a = dx/dR`` and ``F = -dE/dR``, the joint covariance blocks are::

    cov(E_a, E_b) = s^2 g
    cov(E_a, F_b) =  c1 v,          v = (Q J_b)^T d
    cov(F_a, E_b) = -c1 u,          u = J_a^T d
    cov(F_a, F_b) =  c2 u v^T - c1 J_a^T Q J_b

with ``c1 = 2 s^2 g'(rho) / l^2`` and ``c2 = -4 s^2 g''(rho) / l^4``.
The permutation-symmetrised kernel averages these over the permutation group
(``k_sym(x, y) = mean_Q k(x, Q y)``), which stays positive definite because
``k`` is invariant under a simultaneous permutation of both arguments.

Everything that depends on the hyperparameters enters through the per-pair
scalars ``(c0, c1, c2)``; the joint covariance is *linear* in them. The two
autograd functions below exploit that: assembling the covariance and its
adjoint (contracting a matrix back onto the scalars) are each other's
derivatives, so first and second derivatives of the marginal likelihood are
exact and no per-permutation ``(28 N)^2`` tensors are kept for backward.

Outputs per structure are interleaved ``[E, F_0x, F_0y, F_0z, F_1x, ...]``
(``1 + 3 n_atoms`` values), like gpytorch's derivative kernels.
"""
from __future__ import annotations

import math

import gpytorch
import numpy as np
import torch

from .descriptors import Geometry, Permutations

__all__ = [
    "KERNELS",
    "squared_distances",
    "group_squared_distances",
    "kernel_coefficients",
    "mixture_coefficients",
    "assemble",
    "contract",
    "dense_covariance",
    "joint_covariance",
    "EnergyForceKernel",
]

KERNELS = ("matern52", "rbf")
_SQRT5 = math.sqrt(5.0)


def squared_distances(ga: Geometry, gb: Geometry, perms: Permutations) -> torch.Tensor:
    """``|x_a - Q x_b|^2`` for every permutation: ``(P, na, nb)`` (no gradient)."""
    na2 = (ga.X**2).sum(1)
    nb2 = (gb.X**2).sum(1)
    out = []
    for idx in perms.idx:
        cross = ga.X @ gb.X[:, idx].T
        out.append((na2[:, None] + nb2[None, :] - 2.0 * cross).clamp_min(0.0))
    return torch.stack(out)


def group_squared_distances(ga: Geometry, gb: Geometry, perms: Permutations, groups: torch.Tensor,
                            n_groups: int) -> torch.Tensor:
    """``|x_a - Q x_b|^2`` restricted to each group of descriptor entries: ``(G, P, na, nb)`` (no gradient).

    ``groups`` is the ``(D,)`` group label of every entry (:mod:`sciml.gp.pair_groups`); groups are unions
    of permutation orbits, so ``(Q x_b)`` restricted to group ``g`` is ``x_b[idx_p]`` restricted to it.
    Summed over ``g`` this is :func:`squared_distances`.
    """
    groups = torch.as_tensor(groups)
    out = torch.empty(n_groups, len(perms), len(ga), len(gb), dtype=torch.float64)
    with torch.no_grad():
        for g in range(n_groups):
            mask = groups == g
            xa = ga.X[:, mask]
            na2 = (xa**2).sum(1)
            for p, idx in enumerate(perms.idx):
                xb = gb.X[:, idx][:, mask]
                out[g, p] = (na2[:, None] + (xb**2).sum(1)[None, :] - 2.0 * xa @ xb.T).clamp_min(0.0)
    return out


def kernel_coefficients(
    r2: torch.Tensor, lengthscale: torch.Tensor, outputscale: torch.Tensor, kind: str = "matern52"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair scalars ``(c0, c1, c2)`` of the joint covariance (averaged over permutations).

    ``r2`` are squared descriptor distances ``(P, na, nb)``; ``lengthscale`` and
    ``outputscale`` (the signal *variance* ``s^2``) are differentiable tensors.
    """
    if kind not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kind!r}")
    n_perm = r2.shape[0]
    l2 = lengthscale**2
    if kind == "rbf":
        g = torch.exp(-0.5 * r2 / l2)
        g1 = -0.5 * g
        g2 = 0.25 * g
    else:
        # r = sqrt(r2) / l with a zero (not NaN) derivative at r2 = 0, where r2 itself depends on ARD
        # length-scales: every derivative of the coefficients there is the r -> 0 limit
        pos = r2 > 0
        r = torch.where(pos, torch.sqrt(torch.where(pos, r2, torch.ones_like(r2))), torch.zeros_like(r2)) / lengthscale
        e = torch.exp(-_SQRT5 * r)
        g = (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * e
        g1 = -(5.0 / 6.0) * (1.0 + _SQRT5 * r) * e
        g2 = (25.0 / 12.0) * e
    s = outputscale / n_perm
    return s * g, (2.0 * s / l2) * g1, (-4.0 * s / (l2 * l2)) * g2


def mixture_coefficients(
    r2: torch.Tensor,
    lengthscales: torch.Tensor,
    fractions: torch.Tensor,
    outputscale: torch.Tensor,
    kind: str = "matern52",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coefficients of a sum of kernels with different length-scales on the same descriptor.

    ``k = s^2 sum_c pi_c g(|x - y|^2 / l_c^2)`` with fractions ``pi`` (summing to 1)
    of the signal variance ``s^2``. The joint covariance is linear in the
    coefficients, so a mixture costs no more to assemble (or differentiate) than a
    single kernel. With one length-scale this is :func:`kernel_coefficients`.
    """
    lengthscales = torch.as_tensor(lengthscales, dtype=torch.float64).reshape(-1)
    fractions = torch.as_tensor(fractions, dtype=torch.float64).reshape(-1)
    if lengthscales.shape != fractions.shape:
        raise ValueError(f"{lengthscales.numel()} length-scales but {fractions.numel()} variance fractions")
    out = None
    for c in range(lengthscales.numel()):
        cc = kernel_coefficients(r2, lengthscales[c], outputscale * fractions[c], kind)
        out = cc if out is None else tuple(a + b for a, b in zip(out, cc))
    return out


def _uv(ga: Geometry, gb: Geometry, perms: Permutations):
    """Per-permutation ``u (P,na,3A,nb)``, ``v^T (P,na,nb,3A)`` and permuted Jacobians ``(P,nb,3A,D)``."""
    na, nb = len(ga), len(gb)
    k, d = ga.Jt.shape[1], ga.Jt.shape[2]
    npm = len(perms)
    xb = gb.X[:, perms.idx].permute(2, 1, 0).reshape(d, npm * nb)  # [d, (p, b)] = X_b[b, idx_p[d]]
    u = ga.p.reshape(na, k, 1, 1) - (ga.Jt.reshape(na * k, d) @ xb).reshape(na, k, npm, nb)
    u = u.permute(2, 0, 1, 3)
    xa = ga.X[:, perms.inv].permute(2, 1, 0).reshape(d, npm * na)
    vt = (gb.Jt.reshape(nb * k, d) @ xa).reshape(nb, k, npm, na) - gb.p.reshape(nb, k, 1, 1)
    vt = vt.permute(2, 3, 0, 1)
    jp = gb.Jt[:, :, perms.idx].permute(2, 0, 1, 3)  # (P, nb, 3A, D)
    return u, vt, jp


def _blocks(ga: Geometry, gb: Geometry, perms: Permutations, c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor):
    """The four blocks ``EE (na, nb)``, ``EF (na, nb, 3A)``, ``FE (na, 3A, nb)``, ``FF (na, 3A, nb, 3A)``.

    The sums over permutations are done as batched matrix products (BLAS), e.g.
    ``sum_p c1[p] J_a^T Q_p J_b = J_a^T (sum_p c1[p] Q_p J_b)``. Differentiable in every input
    (autograd or forward mode) when called with gradients enabled.
    """
    na, nb = len(ga), len(gb)
    k, d = ga.Jt.shape[1], ga.Jt.shape[2]
    npm = len(perms)
    u, vt, jp = _uv(ga, gb, perms)
    ee = c0.sum(0)
    ef = torch.einsum("pab,pabj->abj", c1, vt)
    fe = -torch.einsum("pab,paib->aib", c1, u)
    # H[b, a, (j d)] = sum_p c1[p, a, b] jp[p, b, j, d]
    H = torch.bmm(c1.permute(2, 1, 0), jp.permute(1, 0, 2, 3).reshape(nb, npm, k * d))
    H = H.reshape(nb, na, k, d).permute(1, 3, 0, 2).reshape(na, d, nb * k)  # [a, d, (b j)]
    ff = torch.bmm(ga.Jt, H).reshape(na, k, nb, k)  # [a, i, (b j)]
    del H
    # outer-product term: sum_p c2[p,a,b] u[p,a,i,b] v[p,a,b,j], batched over (a, b)
    cu = (c2[:, :, None, :] * u).permute(1, 3, 2, 0).reshape(na * nb, k, npm)  # [(a b), i, p]
    uv = torch.bmm(cu, vt.permute(1, 2, 0, 3).reshape(na * nb, npm, k)).reshape(na, nb, k, k)
    return ee, ef, fe, ff.neg_().add_(uv.permute(0, 2, 1, 3))  # in place: no third (na, 3A, nb, 3A) buffer


def assemble(
    ga: Geometry,
    gb: Geometry,
    perms: Permutations,
    c0: torch.Tensor,
    c1: torch.Tensor,
    c2: torch.Tensor,
    out: torch.Tensor | None = None,
    accumulate: bool = True,
) -> torch.Tensor:
    """Joint covariance ``(na, M, nb, M)`` from coefficients ``(P, na, nb)``; adds into ``out`` if given.

    With ``accumulate=False`` every entry of ``out`` is overwritten instead (no need to zero it first).
    No gradient (see :func:`dense_covariance` for a differentiable version).
    """
    na, nb, m = len(ga), len(gb), ga.n_outputs
    if out is None:
        out = torch.zeros(na, m, nb, m, dtype=torch.float64)
    with torch.no_grad():
        ee, ef, fe, ff = _blocks(ga, gb, perms, c0.detach(), c1.detach(), c2.detach())
        if accumulate:
            out[:, 0, :, 0] += ee
            out[:, 0, :, 1:] += ef
            out[:, 1:, :, 0] += fe
            out[:, 1:, :, 1:] += ff
        else:
            out[:, 0, :, 0] = ee
            out[:, 0, :, 1:] = ef
            out[:, 1:, :, 0] = fe
            out[:, 1:, :, 1:] = ff
    return out


def dense_covariance(ga: Geometry, gb: Geometry, perms: Permutations, c0: torch.Tensor, c1: torch.Tensor,
                     c2: torch.Tensor) -> torch.Tensor:
    """:func:`assemble` as one differentiable expression, ``(na * M, nb * M)``.

    Differentiable in the coefficients *and* the geometry (autograd and forward mode), for the
    derivatives of the covariance with respect to ARD length-scales, which rescale the
    descriptors (:mod:`sciml.gp.pair_groups`). Keeps autograd's intermediates: meant for
    tuning subsets, not for the full training set.
    """
    na, nb, m = len(ga), len(gb), ga.n_outputs
    ee, ef, fe, ff = _blocks(ga, gb, perms, c0, c1, c2)
    top = torch.cat([ee[:, None, :, None], ef[:, None]], dim=3)  # (na, 1, nb, M)
    bottom = torch.cat([fe[..., None], ff], dim=3)  # (na, 3A, nb, M)
    return torch.cat([top, bottom], dim=1).reshape(na * m, nb * m)


def contract(
    ga: Geometry, gb: Geometry, perms: Permutations, W: torch.Tensor, differentiable: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adjoint of :func:`assemble`: ``g_i[p, a, b] = sum(W * dK / dc_i[p, a, b])``.

    ``sum_i (c_i * g_i).sum()`` equals ``(W * K).sum()``; with ``differentiable=True`` the result keeps
    autograd's graph through the geometry (``W`` is treated as a constant), so the derivative of
    ``tr(W dK)`` with respect to descriptor weights (ARD length-scales) is one backward pass.
    """
    na, nb, m = len(ga), len(gb), ga.n_outputs
    k, d = ga.Jt.shape[1], ga.Jt.shape[2]
    npm = len(perms)
    W = W.reshape(na, m, nb, m)
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        u, vt, jp = _uv(ga, gb, perms)
        wff = W[:, 1:, :, 1:]
        g0 = W[:, 0, :, 0].expand(npm, na, nb).clone()
        g1 = torch.einsum("abj,pabj->pab", W[:, 0, :, 1:], vt) - torch.einsum("aib,paib->pab", W[:, 1:, :, 0], u)
        # T[a, d, (b j)] = sum_i Jt_a[a, i, d] W[a, i, b, j]
        T = torch.bmm(ga.Jt.transpose(1, 2), wff.reshape(na, k, nb * k))
        T = T.reshape(na, d, nb, k).permute(2, 0, 3, 1).reshape(nb, na, k * d)  # [b, a, (j d)]
        g1 -= torch.bmm(T, jp.permute(1, 2, 3, 0).reshape(nb, k * d, npm)).permute(2, 1, 0)
        del T
        # g2[p,a,b] = u[p,a,:,b]^T W[a,:,b,:] v[p,a,b,:]
        ut = u.permute(1, 3, 0, 2).reshape(na * nb, npm, k)  # [(a b), p, i]
        wab = wff.permute(0, 2, 1, 3).reshape(na * nb, k, k)
        y = torch.bmm(ut, wab)  # [(a b), p, j]
        g2 = (y * vt.permute(1, 2, 0, 3).reshape(na * nb, npm, k)).sum(-1).reshape(na, nb, npm).permute(2, 0, 1)
    return g0, g1.contiguous(), g2.contiguous()


class _Assemble(torch.autograd.Function):
    @staticmethod
    def forward(ctx, c0, c1, c2, ga, gb, perms):  # noqa: D102
        ctx.geo = (ga, gb, perms)
        na, nb, m = len(ga), len(gb), ga.n_outputs
        return assemble(ga, gb, perms, c0, c1, c2).reshape(na * m, nb * m)

    @staticmethod
    def backward(ctx, gK):  # noqa: D102
        ga, gb, perms = ctx.geo
        g0, g1, g2 = _Contract.apply(gK, ga, gb, perms)
        return g0, g1, g2, None, None, None


class _Contract(torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, ga, gb, perms):  # noqa: D102
        ctx.geo = (ga, gb, perms)
        return contract(ga, gb, perms, W)

    @staticmethod
    def backward(ctx, g0, g1, g2):  # noqa: D102
        ga, gb, perms = ctx.geo
        return _Assemble.apply(g0, g1, g2, ga, gb, perms), None, None, None


def joint_covariance(
    ga: Geometry,
    gb: Geometry,
    perms: Permutations,
    lengthscale: torch.Tensor | float,
    outputscale: torch.Tensor | float,
    kind: str = "matern52",
    fractions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Joint energy/force covariance matrix ``(na * M, nb * M)``, differentiable in the hyperparameters.

    ``lengthscale`` may hold several length-scales, with ``fractions`` of the
    signal variance ``outputscale`` (see :func:`mixture_coefficients`).

    Example
    -------
    >>> from ase.build import molecule
    >>> g = Geometry.from_positions(molecule("H2O").positions[None])
    >>> K = joint_covariance(g, g, Permutations(None, 3), 1.0, 1.0)
    >>> tuple(K.shape)
    (10, 10)
    """
    ls = torch.as_tensor(lengthscale, dtype=torch.float64)
    os_ = torch.as_tensor(outputscale, dtype=torch.float64)
    r2 = squared_distances(ga, gb, perms)
    if ls.numel() > 1 or fractions is not None:
        if fractions is None:
            raise ValueError("several length-scales need their variance fractions")
        c0, c1, c2 = mixture_coefficients(r2, ls, fractions, os_, kind)
    else:
        c0, c1, c2 = kernel_coefficients(r2, ls.reshape(()), os_, kind)
    return _Assemble.apply(c0, c1, c2, ga, gb, perms)


class EnergyForceKernel(gpytorch.kernels.Kernel):
    """gpytorch kernel giving the joint covariance of energies and forces of one molecule.

    Inputs are flattened Cartesian positions ``(n, 3 * n_atoms)`` in Å; the output
    has ``1 + 3 n_atoms`` rows per input, interleaved ``[E, F_0x, F_0y, ...]``
    (like :class:`gpytorch.kernels.RBFKernelGrad`). The signal variance is left to
    a wrapping :class:`gpytorch.kernels.ScaleKernel`.

    Parameters
    ----------
    n_atoms: atoms per configuration.
    kind: ``"matern52"`` or ``"rbf"``.
    permutations: ``(P, n_atoms)`` atom permutations to symmetrise over (``None``: none).

    Example
    -------
    >>> import gpytorch, torch
    >>> from ase.build import molecule
    >>> k = gpytorch.kernels.ScaleKernel(EnergyForceKernel(n_atoms=3))
    >>> x = torch.tensor(molecule("H2O").positions, dtype=torch.float64).reshape(1, -1)
    >>> tuple(k(x, x).to_dense().shape)
    (10, 10)
    """

    has_lengthscale = True

    def __init__(self, n_atoms: int, kind: str = "matern52", permutations: np.ndarray | None = None, **kwargs):
        if kind not in KERNELS:
            raise ValueError(f"kind must be one of {KERNELS}, got {kind!r}")
        super().__init__(**kwargs)
        self.n_atoms = int(n_atoms)
        self.kind = kind
        self.perms = Permutations(permutations, self.n_atoms)

    def num_outputs_per_input(self, x1: torch.Tensor, x2: torch.Tensor) -> int:  # noqa: D102
        return 1 + 3 * self.n_atoms

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:  # noqa: D102
        if x1.ndim != 2 or x2.ndim != 2:
            raise ValueError("EnergyForceKernel supports (n, 3 * n_atoms) inputs without batch dimensions")
        ga = Geometry.from_positions(x1.detach().double().reshape(len(x1), self.n_atoms, 3))
        gb = Geometry.from_positions(x2.detach().double().reshape(len(x2), self.n_atoms, 3))
        K = joint_covariance(ga, gb, self.perms, self.lengthscale.reshape(()).double(), 1.0, self.kind)
        K = K.to(x1.dtype)
        return K.diagonal() if diag else K
