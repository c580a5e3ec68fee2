"""Two-body term of the local GP: a sparse GP pair energy per pair of elements (GAP's ``distance_2b``).

Model
-----
Besides the many-body SOAP local energy, every pair of atoms ``(i, j)`` closer than ``cutoff``
contributes ``f_{Z_i Z_j}(r_ij)``: one function of the distance per unordered pair of elements,
each a Gaussian process with the kernel

    k2(r, r') = rho^2 f_c(r) f_c(r') exp(-(r - r')^2 / (2 theta^2)),   f_c(r) = (1 - (r / cutoff)^2)^3,

(zero across pair types; ``f_c`` takes energy, force and curvature smoothly to zero at the cutoff).
Half of each pair energy is assigned to each of its two atoms (``local_rows``), so the total
energy is still a sum of local energies and an atom's local energy includes its bonds.

Sparse representation: the inducing values are ``f_t`` on a uniform grid of distances (spacing
``spacing``, from ``r_min`` to the cutoff) for every pair type, as GAP's uniform sparsification
of its 2b descriptor. With ``theta >= spacing`` (the lower bound used for ``theta``) the Nyström
approximation on that grid is accurate to well below the noise, so the DTC prior correction of
this term is neglected in predictive variances.

Why it is there (measured; see the README): on the seven-element EMT alloy set the SOAP-only
model could not fit even its training forces (~300 meV/Å with 20 frames and every environment
inducing), because the species-resolved power spectra of different compositions are nearly
orthogonal (median normalised overlap 0.26 between environments of one element), so every
environment is far from every other and the ``k(x, u_m)`` basis has no gradient where forces
need one. The pair functions share data across all compositions: a pair term alone gave ~100
meV/Å on validation frames from the same 20 training frames.

Rows (design-matrix columns, one per grid point and pair type) for energies, forces and virials
are analytic (``rows``); they are differentiable in ``theta`` so that the marginal likelihood can
tune it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .soap import Environments, pair_gradient_to_forces_stress

__all__ = ["PairTerm"]


def _fc(r: torch.Tensor, rc: float) -> torch.Tensor:
    x = (r / rc).clamp(max=1.0)
    return (1.0 - x * x) ** 3


def _dfc(r: torch.Tensor, rc: float) -> torch.Tensor:
    x = (r / rc).clamp(max=1.0)
    return -6.0 * x * (1.0 - x * x) ** 2 / rc


class _Pairs:
    """A subset of the pairs of an :class:`Environments` (for :func:`pair_gradient_to_forces_stress`)."""

    def __init__(self, env: Environments, sel: torch.Tensor):
        self.n_atoms, self.n_frames, self.frame = env.n_atoms, env.n_frames, env.frame
        self.centre, self.neighbour, self.d = env.centre[sel], env.neighbour[sel], env.d[sel]


class PairTerm:
    """Grid of inducing distances per unordered pair of elements, and the design rows of the pair energies.

    Parameters
    ----------
    n_species: number of elements (indices ``0 .. n_species-1`` as in :class:`~sciml.gp.soap.Environments`).
    cutoff: pair cutoff (Å). r_min: first grid distance (Å). spacing: grid spacing (Å).

    Example
    -------
    >>> from ase.build import bulk
    >>> from sciml.gp.soap import build_environments
    >>> pt = PairTerm(1, cutoff=4.0, r_min=1.5, spacing=0.25)
    >>> env = build_environments([bulk("Cu", cubic=True)], [29], 4.0)
    >>> E, F, V = pt.rows(env, 0.4)
    >>> E.shape, pt.n_columns
    (torch.Size([1, 10]), 10)
    """

    def __init__(self, n_species: int, cutoff: float, r_min: float, spacing: float = 0.2):
        if not (0 < r_min < cutoff) or spacing <= 0:
            raise ValueError(f"need 0 < r_min < cutoff and spacing > 0, got r_min={r_min}, cutoff={cutoff}, "
                             f"spacing={spacing}")
        self.n_species, self.cutoff, self.r_min, self.spacing = int(n_species), float(cutoff), float(r_min), \
            float(spacing)
        self.grid = torch.arange(self.r_min, self.cutoff - 1e-9, self.spacing, dtype=torch.float64)
        S = self.n_species
        T = -np.ones((S, S), dtype=np.int64)
        k = 0
        for a in range(S):
            for b in range(a, S):
                T[a, b] = T[b, a] = k
                k += 1
        self.types = torch.as_tensor(T)
        self.n_types = k

    @property
    def n_columns(self) -> int:
        return self.n_types * len(self.grid)

    def config(self) -> dict:
        return dict(n_species=self.n_species, cutoff=self.cutoff, r_min=self.r_min, spacing=self.spacing)

    def kernel_uu(self, theta: torch.Tensor | float) -> torch.Tensor:
        """``k2 / rho^2`` between the grid points (block-diagonal over pair types)."""
        g = self.grid
        se = torch.exp(-((g[:, None] - g[None, :]) ** 2) / (2 * theta**2))
        blk = se * _fc(g, self.cutoff)[:, None] * _fc(g, self.cutoff)[None, :]
        return torch.block_diag(*([blk] * self.n_types))

    def _pair_kernel(self, env: Environments, d: torch.Tensor, theta):
        r = torch.linalg.vector_norm(d, dim=1)
        t = self.types[env.species[env.centre], env.species[env.neighbour]]
        diff = r[:, None] - self.grid[None, :]
        se = torch.exp(-diff**2 / (2 * theta**2))
        fg = _fc(self.grid, self.cutoff)[None, :]
        k = 0.5 * se * _fc(r, self.cutoff)[:, None] * fg                   # half of each ordered pair
        return r, t, diff, se, fg, k

    def local_rows(self, env: Environments, d: torch.Tensor, theta) -> torch.Tensor:
        """Per-atom rows ``(n_atoms, n_columns)``: half the pair kernels of its bonds (differentiable in ``d``)."""
        _, t, _, _, _, k = self._pair_kernel(env, d, theta)
        G = len(self.grid)
        cols = t[:, None] * G + torch.arange(G)[None, :]
        out = k.new_zeros((env.n_atoms, self.n_columns))
        return out.index_put((env.centre[:, None].expand_as(cols), cols), k, accumulate=True)

    def rows(self, env: Environments, theta, forces: bool = True):
        """Energy ``(n_frames, n_columns)``, force ``(n_atoms, 3, n_columns)`` (``-d/dr``) and virial
        ``(n_frames, 3, 3, n_columns)`` (``d/d eps``) rows of the pair energies (differentiable in ``theta``)."""
        d = env.d
        r, t, diff, se, fg, k = self._pair_kernel(env, d, theta)
        G, m = len(self.grid), self.n_columns
        fr = env.frame[env.centre]
        E = d.new_zeros((env.n_frames, m))
        F = d.new_zeros((env.n_atoms, 3, m)) if forces else None
        V = d.new_zeros((env.n_frames, 3, 3, m)) if forces else None
        if forces:
            dk = 0.5 * fg * se * (_dfc(r, self.cutoff)[:, None] - _fc(r, self.cutoff)[:, None] * diff / theta**2)
            unit = d / r[:, None]
        for tt in torch.unique(t).tolist():
            sel = torch.nonzero(t == tt).ravel()
            cols = torch.arange(tt * G, (tt + 1) * G)
            E = E.index_add(1, cols, d.new_zeros((env.n_frames, G)).index_add(0, fr[sel], k[sel]))
            if not forces:
                continue
            g = dk[sel].T[:, :, None] * unit[sel][None, :, :]                # (G, P_t, 3) dE/dd
            grad, vir = pair_gradient_to_forces_stress(_Pairs(env, sel), g)
            F = F.index_add(2, cols, -grad.permute(1, 2, 0))
            V = V.index_add(3, cols, vir.permute(1, 2, 3, 0))
        return E, F, V


def min_pair_distance(envs: Sequence[Environments]) -> float:
    """Smallest pair distance in ``envs`` (Å)."""
    return float(min(torch.linalg.vector_norm(e.d, dim=1).min() for e in envs if len(e.d)))
