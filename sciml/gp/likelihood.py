"""Exact log marginal likelihood of energies + forces: value, exact gradient, exact Hessian.

The optimiser works on the *profiled* negative log marginal likelihood (NLML)
(:func:`profiled_nlml_and_gradient`): with ``K = s^2 Kt(phi)`` the signal variance ``s^2`` and the
constant mean ``mu`` have closed-form maximisers, so only the length-scales, mixture weights and
the noise-to-signal ratios are searched. The Laplace approximation uses the exact Hessian of the
full NLML in the packed ``theta`` (:func:`nlml_hessian`; names in
:mod:`sciml.gp.hyperparameters`). Both use the linearity of the joint covariance in the per-pair
kernel coefficients (:func:`sciml.gp.kernels.assemble` / :func:`~sciml.gp.kernels.contract`), so no
derivative ever backpropagates through a Cholesky factorisation.

With ARD (``groups``: one length-scale per group of descriptor entries, :mod:`sciml.gp.pair_groups`)
the length-scales rescale the descriptors themselves, so the covariance is no longer linear in
them through the coefficients alone: the gradient adds one backward pass through
:func:`~sciml.gp.kernels.contract` with the geometry differentiable (``tr(W dK)`` is still exact,
no Cholesky is differentiated), and the Hessian takes the covariance derivatives from forward-mode
automatic differentiation of :func:`~sciml.gp.kernels.dense_covariance`.

This module is the *exact* (dense, ``O((N M)^3)``) likelihood used on the tuning subset; it
costs one Cholesky of an ``N M``-square matrix per evaluation (25 ethanol frames: 700 x 700,
~0.04 s with the gradient).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.func import jvp

from .descriptors import Geometry, Permutations
from .hyperparameters import (JITTER, EnergyScale, ard_params, kernel_params, n_kernel_params, noise_vector, unpack,
                              unpack_ard)
from .kernels import assemble, contract, dense_covariance, mixture_coefficients

__all__ = ["profiled_nlml_and_gradient", "nlml_hessian", "kernel_parts"]


def kernel_parts(t: torch.Tensor, geo: Geometry, kind: str, r2: torch.Tensor, n_scales: int, s2: torch.Tensor,
                 groups: torch.Tensor | None = None) -> tuple[Geometry, tuple, torch.Tensor]:
    """Geometry, per-pair coefficients ``(c0, c1, c2)`` and variance fractions for kernel parameters ``t``.

    Without ``groups``: ``t = [log l_1, log r.., log w..]``, ``r2`` the squared distances ``(P, n, n)``
    and the geometry is ``geo``. With ``groups`` (ARD, ``(D,)`` labels): ``t = [log l_1[g].., log r..,
    log w..]``, ``r2`` the per-group squared distances ``(G, P, n, n)``, and the geometry is ``geo``
    with entry ``k`` divided by ``l_1[g(k)]`` (the components then have length-scales ``1, r_2, ...``).
    Differentiable in ``t``; ``s2`` is the signal variance.
    """
    if groups is None:
        ls, fr = kernel_params(t, n_scales)
        return geo, mixture_coefficients(r2, ls, fr, s2, kind), fr
    group_ls, factors, fr = ard_params(t, n_scales, r2.shape[0])
    inv = 1.0 / group_ls
    rho = torch.einsum("g,gpab->pab", inv * inv, r2)
    return geo.rescaled(inv[groups]), mixture_coefficients(rho, factors, fr, s2, kind), fr


def _layout(n_phi: int, r2: torch.Tensor, groups, extra: int) -> tuple[int, int]:
    """``(n_scales, nk)`` of a packed vector with ``n_phi`` entries (``extra`` after the kernel ones)."""
    n_groups = 1 if groups is None else r2.shape[0]
    n_scales = (n_phi - extra - n_groups + 2) // 2
    return n_scales, n_kernel_params(n_scales, n_groups)


def profiled_nlml_and_gradient(
    phi: np.ndarray,
    geo: Geometry,
    perms: Permutations,
    y: torch.Tensor,
    kind: str,
    r2: torch.Tensor,
    jitter: float = JITTER,
    gradient: bool = True,
    groups: torch.Tensor | None = None,
) -> tuple[float, np.ndarray, float, float]:
    """NLML with the signal variance and the constant mean profiled out, and its exact gradient.

    ``phi = [log l_1, log r_2..r_C, log w_2..w_C, log(sigma_E / s_1), log(sigma_F / s_1)]``
    (length-scales ``l_c = l_{c-1} r_c``) where ``s_1^2 = pi_1 s^2`` is the variance of
    the first (shortest) component; with ARD ``groups``, ``log l_1`` is replaced by one entry per
    group and ``r2`` holds the per-group squared distances (see :func:`kernel_parts`). Writing
    ``K = s^2 Kt(phi)``, the maximum-likelihood mean is
    the GLS estimate ``mu = e^T Kt^-1 y / e^T Kt^-1 e`` (``e`` selects energies) and
    ``s^2 = r^T Kt^-1 r / n`` with ``r = y - mu e``; the profiled NLML is
    ``n/2 log s^2 + sum log diag chol(Kt) + n/2 (1 + log 2 pi)``. Its gradient equals
    the full NLML's partial derivatives at ``(s, mu)`` (envelope theorem), computed by
    the trace formula ``0.5 tr((K^-1 - a a^T) dK/dphi)``, ``a = K^-1 r``: ``K`` is
    linear in the per-pair kernel coefficients, so the trace is one
    :func:`~sciml.gp.kernels.contract` of ``W = K^-1 - a a^T`` and autograd through
    the small coefficient arrays (with ARD, also through the contraction's geometry). The cost
    does not depend on the number of components ``C``.

    ``y`` are the interleaved targets (:func:`sciml.gp.data.interleave_targets`), ``r2`` the
    squared descriptor distances (:func:`sciml.gp.kernels.squared_distances`, or
    :func:`~sciml.gp.kernels.group_squared_distances` with ``groups``).
    Returns ``(nlml, gradient, s, mu)``; ``nlml`` is ``inf`` when ``Kt`` is not positive definite.
    """
    n, m = len(geo), geo.n_outputs
    nobs = n * m
    n_scales, nk = _layout(len(phi), r2, groups, 2)
    ph = torch.tensor(np.asarray(phi, dtype=np.float64), requires_grad=True)
    one = torch.tensor(1.0, dtype=torch.float64)
    with torch.no_grad():
        g_k, c, fr = kernel_parts(ph[:nk], geo, kind, r2, n_scales, one, groups)
        # noise variances relative to the first component's variance s^2 pi_1 (with several components the
        # total signal variance can be dominated by a long, smooth component; the noise floor must not be)
        re2, rf2 = fr[0] * (torch.exp(2 * ph[nk]) + jitter), fr[0] * (torch.exp(2 * ph[nk + 1]) + jitter)
        K = assemble(g_k, g_k, perms, *c).reshape(nobs, nobs)
        K.diagonal().add_(noise_vector(n, m, re2, rf2))
        L, info = torch.linalg.cholesky_ex(K)
        del K
        if int(info) != 0:
            return float("inf"), np.full(len(phi), np.nan), float("nan"), float("nan")
        e = torch.zeros(n, m, dtype=torch.float64)
        e[:, 0] = 1.0
        e = e.reshape(-1, 1)
        ye = torch.cholesky_solve(torch.cat([y[:, None], e], 1), L)
        mu = float((e * ye[:, :1]).sum() / (e * ye[:, 1:]).sum())
        r = y[:, None] - mu * e
        kr = ye[:, :1] - mu * ye[:, 1:]  # Kt^-1 r
        s2 = float((r * kr).sum()) / nobs
        logdet = float(torch.log(torch.diagonal(L)).sum())
        value = 0.5 * nobs * math.log(s2) + logdet + 0.5 * nobs * (1.0 + math.log(2 * math.pi))
        if not gradient:
            return value, np.full(len(phi), np.nan), math.sqrt(s2), mu
        W = torch.cholesky_inverse(L)
        del L
        W.sub_(kr @ kr.T, alpha=1.0 / s2)
        W.div_(s2)  # W = K^-1 - a a^T with K = s2 Kt, a = Kt^-1 r / s2
        if groups is None:
            gs = contract(geo, geo, perms, W)
        wd = torch.diagonal(W).reshape(n, m)
        tr_e, tr_f = float(wd[:, 0].sum()), float(wd[:, 1:].sum())
    s2t = torch.tensor(s2, dtype=torch.float64)
    g_k, c, fr = kernel_parts(ph[:nk], geo, kind, r2, n_scales, s2t, groups)
    if groups is not None:  # the contraction depends on the length-scales through the rescaled geometry
        gs = contract(g_k, g_k, perms, W, differentiable=True)
    del W
    re2, rf2 = fr[0] * (torch.exp(2 * ph[nk]) + jitter), fr[0] * (torch.exp(2 * ph[nk + 1]) + jitter)
    surrogate = 0.5 * (sum((gi * ci).sum() for gi, ci in zip(gs, c)) + s2 * (tr_e * re2 + tr_f * rf2))
    (grad,) = torch.autograd.grad(surrogate, ph)
    return value, grad.numpy().copy(), math.sqrt(s2), mu


def _directional(outs: tuple, t: torch.Tensor, i: int, create_graph: bool) -> tuple:
    """``d outs / d t_i`` for tensors ``outs`` of any shape (reverse-over-reverse: ``J u = d(J^T v . u)/dv``)."""
    # scalar products instead of grad_outputs (passing grad_outputs imports torch.fx/sympy: ~0.5 s)
    vs = [torch.zeros_like(o, requires_grad=True) for o in outs]
    (g,) = torch.autograd.grad(sum((o * v).sum() for o, v in zip(outs, vs)), t, create_graph=True, allow_unused=True)
    if g is None:
        return tuple(torch.zeros_like(o) for o in outs)
    res = torch.autograd.grad(g[i], vs, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(o) if r is None else r for o, r in zip(outs, res))


def _coefficient_derivatives(coef, tk: torch.Tensor) -> tuple[list, dict]:
    """First and second derivatives of the per-pair kernel coefficients with respect to the kernel parameters.

    Exact (autograd; no ``torch.func``, whose first use imports ``torch._dynamo``: 1.3 s here).
    Returns ``first[i] = dc/dt_i`` and ``second[i, j] = d2c/dt_i dt_j`` for ``i <= j``.
    """
    nk = len(tk)
    first, second = [], {}
    with torch.enable_grad():
        t = tk.detach().clone().requires_grad_(True)
        c = coef(t)
        for i in range(nk):
            d = _directional(c, t, i, create_graph=True)
            first.append(tuple(x.detach() for x in d))
            for j in range(i, nk):
                second[i, j] = tuple(x.detach() for x in _directional(d, t, j, create_graph=False))
    return first, second


def _trace_of_product(a: torch.Tensor, b: torch.Tensor) -> float:
    """``tr(a b)`` without forming the product."""
    return float((a * b.T).sum())


def _first_derivative_terms(ks, Kk, Kinv, alpha, noise, ve, vf, ie):
    """``A_i = K^-1 K_i`` and ``K_i a`` for the kernel parameters, the signal and the two noises."""
    A = [Kinv @ K_i for K_i in Kk]
    Ka = [K_i @ alpha for K_i in Kk]
    A_s = -2.0 * Kinv * noise[None, :]
    A_s.diagonal().add_(2.0)  # K^-1 (2 ks) = 2 (I - K^-1 diag(noise))
    A.append(A_s)
    Ka.append(2.0 * (ks @ alpha))
    for d in (2.0 * ve * ie, 2.0 * vf * (1.0 - ie)):
        A.append(Kinv * d[None, :])
        Ka.append(d * alpha)
    return A, Ka


def _coefficient_route(tk, geo, perms, kind, r2, n_scales, s2):
    """Signal covariance, ``K_i`` and ``K_ij`` from derivatives of the per-pair coefficients (no ARD)."""
    nobs = len(geo) * geo.n_outputs

    def coef(t):
        return mixture_coefficients(r2, *kernel_params(t, n_scales), s2, kind)

    first, second = _coefficient_derivatives(coef, tk)
    with torch.no_grad():
        ks = assemble(geo, geo, perms, *coef(tk)).reshape(nobs, nobs)
        Kk = [assemble(geo, geo, perms, *first[i]).reshape(nobs, nobs) for i in range(len(tk))]

    def kij(i: int, j: int) -> torch.Tensor:
        return assemble(geo, geo, perms, *second[i, j]).reshape(nobs, nobs)

    return ks, Kk, kij


def _forward_mode_route(tk, geo, perms, kind, r2, n_scales, s2, groups):
    """Signal covariance, ``K_i`` and ``K_ij`` by forward-mode differentiation (``torch.func.jvp``) of
    :func:`~sciml.gp.kernels.dense_covariance`: ARD length-scales rescale the geometry too."""
    def cov(t):
        g, c, _ = kernel_parts(t, geo, kind, r2, n_scales, s2, groups)
        return dense_covariance(g, g, perms, *c)

    basis = torch.eye(len(tk), dtype=torch.float64)
    with torch.no_grad():
        ks = cov(tk)
        Kk = [jvp(cov, (tk,), (basis[i],))[1] for i in range(len(tk))]

    def kij(i: int, j: int) -> torch.Tensor:
        with torch.no_grad():
            return jvp(lambda t: jvp(cov, (t,), (basis[i],))[1], (tk,), (basis[j],))[1]

    return ks, Kk, kij


def nlml_hessian(
    theta: np.ndarray,
    geo: Geometry,
    perms: Permutations,
    y: torch.Tensor,
    kind: str,
    scale: EnergyScale,
    r2: torch.Tensor,
    jitter: float = JITTER,
    groups: torch.Tensor | None = None,
) -> np.ndarray:
    """Exact Hessian of the NLML with respect to the packed hyperparameters ``theta``.

    Uses ``d2 NLML / dtheta_i dtheta_j = a^T K_i K^-1 K_j a - a^T K_ij a / 2
    + tr(K^-1 K_ij) / 2 - tr(K^-1 K_i K^-1 K_j) / 2 + m_i^T K^-1 K_j a + m_j^T K^-1 K_i a
    + m_i^T K^-1 m_j`` (``a = K^-1 (y - m)``), with the covariance derivatives
    ``K_i, K_ij`` assembled from autograd derivatives of the kernel coefficients (with ARD
    ``groups``: forward-mode derivatives of the whole covariance). The signal
    and noise derivatives are cheap (``K_s = 2 (K - noise)``, diagonal noise terms), so the
    dense work is one product ``K^-1 K_i`` per kernel parameter. Agrees with autograd's Hessian
    of the full NLML (tested against a reference implementation in the tests).
    """
    n, m = len(geo), geo.n_outputs
    th = torch.as_tensor(np.asarray(theta, dtype=np.float64))
    n_scales, nk = _layout(len(th), r2, groups, 4)
    npar = nk + 4
    if groups is None:
        _, fr, s2, ve, vf, mu = unpack(th, scale)
        ks, Kk, kij = _coefficient_route(th[:nk].clone(), geo, perms, kind, r2, n_scales, s2)
    else:
        _, _, fr, s2, ve, vf, mu = unpack_ard(th, scale, r2.shape[0])
        ks, Kk, kij = _forward_mode_route(th[:nk].clone(), geo, perms, kind, r2, n_scales, s2, groups)
    with torch.no_grad():
        ks.diagonal().add_(jitter * s2 * fr[0])  # signal part s^2 Kt (+ jitter)
        ie = noise_vector(n, m, 1.0, 0.0)
        noise = ve * ie + vf * (1.0 - ie)
        L = torch.linalg.cholesky(ks + torch.diag(noise))
        Kinv = torch.cholesky_inverse(L)
        alpha = torch.cholesky_solve((y - mu * ie)[:, None], L)[:, 0]
        del L
        A, Ka = _first_derivative_terms(ks, Kk, Kinv, alpha, noise, ve, vf, ie)
        KinvKa = [Kinv @ v for v in Ka]
        m_mean = scale.e_std * ie  # d mean / d theta_mean
        Km = Kinv @ m_mean
        H = np.zeros((npar, npar))
        for i in range(npar - 1):
            for j in range(i, npar - 1):
                # second derivatives K_ij: a^T K_ij a and tr(K^-1 K_ij)
                if j < nk:  # both kernel parameters: assembled
                    Kij = kij(i, j)
                    aKa, tr_ij = float(alpha @ (Kij @ alpha)), float((Kinv * Kij).sum())
                    del Kij
                elif j == nk or i == j:  # (kernel or signal, signal): K_ij = 2 K_i; a noise with itself: 2 K_i
                    aKa, tr_ij = 2.0 * float(alpha @ Ka[i]), 2.0 * float(torch.trace(A[i]))
                else:
                    aKa, tr_ij = 0.0, 0.0
                h = float(Ka[i] @ KinvKa[j]) - 0.5 * _trace_of_product(A[i], A[j]) + 0.5 * tr_ij - 0.5 * aKa
                H[i, j] = H[j, i] = h
            H[i, npar - 1] = H[npar - 1, i] = float(Km @ Ka[i])
        H[npar - 1, npar - 1] = float(m_mean @ Km)
    return H
