"""Design rows of the sparse local GP: energies, forces and stress against the inducing environments.

Kernel
------
Between two environments with normalised descriptors ``x``, ``u`` (:mod:`sciml.gp.soap`)
and centre species ``Z_x``, ``Z_u``:

    k(x, u) = sigma^2 k0(x, u),   k0(x, u) = delta(Z_x, Z_u) exp(-sum_d w_d (x_d - u_d)^2 / (2 l^2))

a squared-exponential kernel (positive definite, ``k0(x, x) = 1``). With ``w_d = 1`` it is
``exp((x . u - 1) / l^2)`` on the unit sphere (the length-scale plays the role of SOAP's kernel
exponent); :class:`~sciml.gp.local_gp.LocalGPPotential` uses ``w_d = 1 / (D var_d)``, the inverse
variance of component ``d`` over the training environments (standardised descriptor units):
the informative angular and cross-species components are orders of magnitude smaller than the
radial ``l = 0`` ones, and without the weights the kernel matrix of thermal environments was
numerically singular and the force fit poor. The energy of a frame is the sum of local energies, so its row of the
design matrix against inducing environment ``m`` is ``sum_i k0(x_i, u_m)``; force rows are
``-d/dr`` and stress rows ``(1/V) d/d eps`` of that sum.

How the derivative rows are computed
------------------------------------
With ``x_i = p_i / n_i`` and ``v = w * u_m``, ``dk0_im/dp_i = k0_im / (l^2 n_i) (v_m - w x_i - a_im x_i)``
with ``a_im = x_i . (w u_m) - x_i . (w x_i)``. The power spectrum is quadratic in the density
coefficients and those are sums over pairs of ``W[Z_j] g_n Y_lm(d_ij)``, so for every pair ``p = (i, j)``

    dk0_im/dd_p = k0_im / (l^2 n_i) (Q_pm - RV_p - a_im RX_p),
    Q_pm = J_p^T (dp_i/dc)^T (w u_m),   RV_p = J_p^T (dp_i/dc)^T (w x_i),   RX_p = J_p^T (dp_i/dc)^T x_i

(without normalisation, ``x_i = p_i``: ``n_i = 1`` and ``a_im = 0``)
with ``J_p`` the ``(n_max (l_max+1)^2) x 3`` Jacobian of the pair basis (forward-mode autograd,
once per pair). ``Q`` is a batched matrix product (all inducing points of the centre's species
at once), which is what makes the rows affordable: computing them by one reverse-mode pass per
inducing point was ~30x slower here. The ``l``-independent parts (squared distances, ``a``, ``Q``,
``RV``, ``RX``) are kept in :class:`RawRows`, so that rows for another
length-scale (and their exact derivative with respect to it) cost one pass of elementwise
products: that is how the length-scale is tuned on a subset by the sparse marginal likelihood.
Tests compare the rows with reverse-mode autograd of ``sum_i k0`` and forces/stress with finite
differences.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .soap import Environments, SOAPDescriptor, pair_gradient_to_forces_stress

__all__ = ["EnvBatch", "RawRows", "prepare_batch", "raw_rows", "assemble_rows", "kernel0", "VOIGT"]

#: Voigt order of ASE stress (xx, yy, zz, yz, xz, xy).
VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@dataclass
class EnvBatch:
    """Environments of a batch of frames with descriptor quantities (no autograd graph)."""

    env: Environments
    c: torch.Tensor            # (n_atoms, K, LM) density coefficients
    x: torch.Tensor            # (n_atoms, D) descriptors the kernel compares (normalised or not)
    norm: torch.Tensor         # (n_atoms,) |p| (ones when the descriptor is not normalised)
    basis_jac: torch.Tensor    # (n_pairs, N, LM, 3)
    normalised: bool = True


def prepare_batch(desc: SOAPDescriptor, env: Environments) -> EnvBatch:
    """Descriptors and the pair-basis Jacobian of ``env`` (see the module docstring)."""
    with torch.no_grad():
        c = desc.coefficients(env.d, env)
        p = desc.power_from_coefficients(c)
        if desc.normalise:
            norm = torch.sqrt((p * p).sum(1) + 1e-20)
            x = p / norm[:, None]
        else:
            norm, x = torch.ones(len(p), dtype=p.dtype), p
    bj = desc.pair_basis_jacobian(env.d).detach()
    return EnvBatch(env=env, c=c, x=x, norm=norm, basis_jac=bj, normalised=desc.normalise)


def kernel0(x: torch.Tensor, x_species: torch.Tensor, u: torch.Tensor, u_species: torch.Tensor,
            lengthscale: torch.Tensor | float, weights: torch.Tensor | None = None, zeta: int | None = None
            ) -> torch.Tensor:
    """``k0`` between environments ``x`` (n, D) and ``u`` (m, D) (zero across centre species).

    ``k0 = exp(-sum_d w_d (x_d - u_d)^2 / (2 l^2))``; ``weights=None`` means ``w_d = 1``. With an integer
    ``zeta``: the dot-product kernel ``k0 = (x . u)^zeta`` of GAP and FLARE (``lengthscale`` and
    ``weights`` unused).
    """
    same = x_species[:, None] == u_species[None, :]
    if zeta is not None:
        return torch.where(same, (x @ u.T) ** int(zeta), torch.zeros((), dtype=x.dtype))
    w = torch.ones(x.shape[1], dtype=x.dtype) if weights is None else weights.to(x.dtype)
    sq = (x * x * w).sum(1)[:, None] + (u * u * w).sum(1)[None, :] - 2 * (x * w) @ u.T
    return torch.where(same, torch.exp(-sq / (2 * lengthscale**2)), torch.zeros((), dtype=x.dtype))


def _pair_Z(desc: SOAPDescriptor, batch: EnvBatch, pairs: torch.Tensor) -> torch.Tensor:
    """``Z_p[l, n, k, a] = sum_{m in l} J_p[n, lm, a] c_i[k, lm]`` for pairs ``p = (i, j)``: ``(P, F, 3)``."""
    env = batch.env
    c = batch.c[env.centre[pairs]]                                          # (P, K, LM)
    bj = batch.basis_jac[pairs]                                             # (P, N, LM, 3)
    parts = []
    for l in range(desc.l_max + 1):
        sl = slice(l * l, (l + 1) * (l + 1))
        parts.append(torch.einsum("pnux,pku->pnkx", bj[:, :, sl], c[:, :, sl]))
    return torch.stack(parts, dim=1).reshape(len(pairs), -1, 3)


def _species_T(desc: SOAPDescriptor, T: list[torch.Tensor]) -> torch.Tensor:
    """Cotangent matrices seen from a neighbour of each species: ``(S, ..., F)`` with
    ``F = (l_max+1) n_max K`` (rows ``(a, n)`` of ``T_l`` weighted by ``W[s, a]``)."""
    C, N = desc.W.shape[1], desc.n_max
    parts = []
    for Tl in T:
        Tl = Tl.reshape(Tl.shape[:-2] + (C, N, Tl.shape[-1]))
        parts.append(torch.einsum("sa,...ank->s...nk", desc.W.to(Tl.dtype), Tl))
    out = torch.stack(parts, dim=-3)                                        # (S, ..., L+1, N, K)
    return out.reshape(out.shape[:-3] + (-1,))


@dataclass
class RawRows:
    """Length-scale-independent pieces of the design rows of one batch (see the module docstring).

    Per inducing species block ``b``: ``cols[b]`` (columns of the block), ``envs[b]`` (env indices),
    ``sq[b]`` (n_env_b, m_b) weighted squared distances, ``a[b]`` (n_env_b, m_b) ``x_i . (w u_m) - x_i . (w x_i)``,
    ``pairs[b]`` (pair indices centred on those envs), ``pair_env[b]`` (position of each pair's
    centre in ``envs[b]``), ``Q[b]`` (n_pairs_b, m_b, 3) and ``RV[b]``, ``RX[b]`` (n_pairs_b, 3).
    """

    batch: EnvBatch
    n_inducing: int
    cols: list
    envs: list
    sq: list
    a: list
    pairs: list
    pair_env: list
    Q: list
    RV: list
    RX: list


def raw_rows(desc: SOAPDescriptor, batch: EnvBatch, U: torch.Tensor, U_species: torch.Tensor,
             forces: bool = True, weights: torch.Tensor | None = None, max_block: int = 4_000_000) -> RawRows:
    """The pieces of the design rows of ``batch`` against inducing descriptors ``U`` (m, D).

    ``weights``: the kernel's per-component weights (see :func:`kernel0`). ``max_block`` bounds the
    number of floats of one intermediate (``pairs x 3 x (l_max+1) n_max K``).
    """
    env = batch.env
    dtype = batch.x.dtype
    w = torch.ones(batch.x.shape[1], dtype=dtype) if weights is None else weights.to(dtype)
    out = RawRows(batch, len(U), [], [], [], [], [], [], [], [], [])
    for s in torch.unique(U_species).tolist():
        cols = torch.nonzero(U_species == s).ravel()
        envs = torch.nonzero(env.species == s).ravel()
        if len(envs) == 0:
            continue
        x, Us = batch.x[envs], U[cols]
        vu, vx = Us * w, x * w
        xvx = (x * vx).sum(1)
        out.cols.append(cols)
        out.envs.append(envs)
        out.sq.append(xvx[:, None] + (Us * vu).sum(1)[None, :] - 2 * x @ vu.T)
        # the projection term of d(p/|p|)/dp; zero when the kernel sees p itself
        out.a.append(x @ vu.T - xvx[:, None] if batch.normalised else x.new_zeros((len(x), len(cols))))
        if not forces:
            continue
        pairs = torch.nonzero(env.species[env.centre] == s).ravel()
        local = torch.full((env.n_atoms,), -1, dtype=torch.long)
        local[envs] = torch.arange(len(envs))
        pe = local[env.centre[pairs]]
        ps = env.species[env.neighbour[pairs]]
        Tx = _species_T(desc, desc.cotangent_matrices(x))                    # (S, e, F)
        Tv = _species_T(desc, desc.cotangent_matrices(vx))                   # (S, e, F)
        Tu = _species_T(desc, desc.cotangent_matrices(vu))                   # (S, m, F)
        F = Tu.shape[-1]
        step = max(1, max_block // (3 * F))
        Q = torch.empty((len(pairs), len(cols), 3), dtype=dtype)
        RX = torch.empty((len(pairs), 3), dtype=dtype)
        RV = torch.empty((len(pairs), 3), dtype=dtype)
        for a in range(0, len(pairs), step):
            sl = slice(a, a + step)
            Z = _pair_Z(desc, batch, pairs[sl])                             # (p, F, 3)
            RX[sl] = torch.einsum("pfx,pf->px", Z, Tx[ps[sl], pe[sl]])
            RV[sl] = torch.einsum("pfx,pf->px", Z, Tv[ps[sl], pe[sl]])
            for t in torch.unique(ps[sl]).tolist():
                sel = torch.nonzero(ps[sl] == t).ravel()
                Q[a + sel] = torch.einsum("pfx,mf->pmx", Z[sel], Tu[t])
        out.pairs.append(pairs)
        out.pair_env.append(pe)
        out.Q.append(Q)
        out.RV.append(RV)
        out.RX.append(RX)
    return out


def assemble_rows(raw: RawRows, lengthscale: torch.Tensor | float, forces: bool = True, zeta: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Design rows of ``k0`` at ``lengthscale`` (differentiable in it); with ``zeta`` of the dot-product
    kernel ``(x . u)^zeta`` (``raw`` built without weights, so that ``x . u = 1 - sq / 2``).

    Returns energies ``(n_frames, m)``, forces ``(n_atoms, 3, m)`` (``-d/dr`` of the energy rows) and
    virials ``(n_frames, 3, 3, m)`` (``d/d eps``; stress rows are virial / volume).
    """
    b = raw.batch
    env = b.env
    dtype = b.x.dtype
    m = raw.n_inducing
    E = torch.zeros((env.n_frames, m), dtype=dtype)
    F = torch.zeros((env.n_atoms, 3, m), dtype=dtype) if forces else None
    V = torch.zeros((env.n_frames, 3, 3, m), dtype=dtype) if forces else None
    inv_l2 = 1.0 / lengthscale**2 if zeta is None else None
    for k, cols in enumerate(raw.cols):
        envs = raw.envs[k]
        if zeta is not None:
            c = 1.0 - 0.5 * raw.sq[k]
            kv = c ** int(zeta)
        else:
            kv = torch.exp(-0.5 * raw.sq[k] * inv_l2)                        # (e, m_b)
        Eb = torch.zeros((env.n_frames, len(cols)), dtype=dtype).index_add(0, env.frame[envs], kv)
        E = E + _scatter_cols(Eb, cols, m)
        if not forces:
            continue
        f = (int(zeta) * c ** (int(zeta) - 1) if zeta is not None else kv * inv_l2) / b.norm[envs][:, None]
        pe = raw.pair_env[k]
        g = f[pe][:, :, None] * (raw.Q[k] - raw.RV[k][:, None, :] - raw.a[k][pe][:, :, None] * raw.RX[k][:, None, :])
        sub = _SubEnv(env, raw.pairs[k])
        grad, vir = pair_gradient_to_forces_stress(sub, g.permute(1, 0, 2))              # (m_b, n_atoms, 3)
        F = F + _scatter_cols(-grad.permute(1, 2, 0), cols, m)
        V = V + _scatter_cols(vir.permute(1, 2, 3, 0), cols, m)
    return E, F, V


def _scatter_cols(block: torch.Tensor, cols: torch.Tensor, m: int) -> torch.Tensor:
    return block.new_zeros(block.shape[:-1] + (m,)).index_add(block.dim() - 1, cols, block)


class _SubEnv:
    """The pairs ``pairs`` of an :class:`Environments` (for :func:`pair_gradient_to_forces_stress`)."""

    def __init__(self, env: Environments, pairs: torch.Tensor):
        self.n_atoms, self.n_frames, self.frame = env.n_atoms, env.n_frames, env.frame
        self.centre, self.neighbour, self.d = env.centre[pairs], env.neighbour[pairs], env.d[pairs]


def stress_rows(V: torch.Tensor, volumes: Sequence[float]) -> torch.Tensor:
    """Voigt stress rows ``(n_frames, 6, m)`` from virial rows (symmetrised, divided by the volume)."""
    vol = torch.as_tensor(np.asarray(volumes, dtype=float), dtype=V.dtype)
    sym = 0.5 * (V + V.transpose(1, 2))
    return torch.stack([sym[:, a, b] for a, b in VOIGT], dim=1) / vol[:, None, None]
