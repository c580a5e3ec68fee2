"""Local atomic environments and their SOAP power spectrum (torch, exact derivatives by autograd).

What it computes
----------------
Each atom ``i`` of a frame (periodic or not) has an environment: the neighbours ``j`` within
``cutoff`` (all periodic images), seen through the pair vectors ``d_ij = r_j - r_i + S_ij . cell``.
The neighbour density of species channel ``a`` is expanded in radial functions ``g_n`` and real
spherical harmonics ``Y_lm`` (e3nn, "integral" normalisation),

    c_i[a, n, lm] = sum_j W[Z_j, a] g_n(|d_ij|) Y_lm(d_ij / |d_ij|),
    g_n(r) = exp(-(r - r_n)^2 / (2 w^2)) f_c(r),   r_n = n * cutoff / n_max,  w = cutoff / n_max,
    f_c(r) = (1 - (r / cutoff)^2)^3  (r < cutoff; zero value, slope and curvature at the cutoff),

and the rotation-invariant power spectrum is

    p_i[(a n), (b n'), l] = 4 pi / (2 l + 1) sum_m c_i[a, n, lm] c_i[b, n', lm]
                          = sum_{j, k} W[Z_j, a] W[Z_k, b] g_n(r_ij) g_n'(r_ik) P_l(cos theta_jik)

(addition theorem; the second form is what the tests compare against). Only the upper triangle
``(a n) <= (b n')`` is kept, off-diagonal entries times sqrt(2), so that dot products of the
kept vectors equal those of the full symmetric tensors. ``W`` is one-hot in the species
(``species_channels=None``: the standard multi-species SOAP), or a seeded random orthonormal
``S x C`` embedding (``species_channels=C``, "alchemical compression", Willatt, Musil & Ceriotti,
PCCP 20, 29661 (2018)) that keeps the descriptor length fixed as elements are added.
The kernel (:mod:`sciml.gp.sparse`) uses the normalised vector ``x_i = p_i / sqrt(|p_i|^2 + eps)``
(``normalise=True``, as in GAP and FLARE) or the power spectrum itself (``normalise=False``):
normalising removes the overall density of the environment (its coordination and bond lengths
in the mean), which is what the embedding energy of metals (EAM, EMT) depends on.

Derivatives
-----------
The descriptor depends on positions and cell only through the pair vectors, so everything
downstream is differentiated with respect to ``d`` (autograd) and mapped to atoms and strain:
``dE/dr_k = sum_{pairs with neighbour k} dE/dd - sum_{pairs centred on k} dE/dd`` and the
virial ``dE/deps_ab = sum_pairs d_a dE/dd_b`` (stress = virial / volume, ASE sign convention).
:func:`pair_gradient_to_forces_stress` does this mapping. Tests check forces and stress
against finite differences of the energy for periodic triclinic multi-species cells.

Why not featomic or dscribe
---------------------------
Both install here from PyPI wheels (featomic 0.6.7, dscribe 2.1.2). The sparse GP needs the
descriptor Jacobian contracted with one cotangent per inducing point (``M`` vector-Jacobian
products, vectorised with ``torch.func.vmap``) inside torch autograd, for forces and for the
virial; dscribe gives position derivatives but no cell derivatives, and featomic's torch
bindings are built against other torch versions than the one this package pins. The
implementation here is ~150 lines of torch, checked against the addition-theorem form above
(an independent computation with scipy's Legendre polynomials) and by finite differences.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

__all__ = ["SOAPDescriptor", "Environments", "build_environments", "pair_gradient_to_forces_stress",
           "check_frames"]

_EPS = 1e-20


def check_frames(frames: Sequence[Atoms], species: Sequence[int] | None = None, source: str = "frames") -> None:
    """Raise ``ValueError`` naming the frame for NaN/inf positions, a degenerate periodic cell or an unknown element."""
    known = None if species is None else set(int(z) for z in species)
    for k, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise TypeError(f"{source}[{k}] is a {type(a).__name__}, not an ase.Atoms")
        if len(a) == 0:
            raise ValueError(f"{source}[{k}] has no atoms")
        if not np.all(np.isfinite(a.positions)):
            raise ValueError(f"{source}[{k}] has non-finite (NaN or inf) positions")
        if a.pbc.any():
            vol = abs(np.linalg.det(a.cell.array))
            if not np.isfinite(vol) or vol < 1e-6:
                raise ValueError(f"{source}[{k}] is periodic but its cell has zero volume ({vol:.3g} Å^3)")
        if known is not None:
            bad = sorted(set(int(z) for z in a.numbers) - known)
            if bad:
                from ase.data import chemical_symbols

                names = ", ".join(chemical_symbols[z] for z in bad)
                raise ValueError(f"{source}[{k}] contains element(s) {names} that the model was not trained on "
                                 f"(known: {', '.join(chemical_symbols[z] for z in sorted(known))})")


@dataclass
class Environments:
    """The atom-centred environments of a batch of frames (concatenated).

    Attributes: ``numbers`` (n_atoms,) atomic numbers; ``species`` (n_atoms,) index into the
    descriptor's species list; ``frame`` (n_atoms,) frame of each atom; ``n_frames``;
    ``frame_sizes`` (n_frames,); ``centre``/``neighbour`` (n_pairs,) global atom indices;
    ``d`` (n_pairs, 3) pair vectors (Å); ``volumes`` (n_frames,) cell volumes (nan if not periodic).
    """

    numbers: np.ndarray
    species: torch.Tensor
    frame: torch.Tensor
    n_frames: int
    frame_sizes: np.ndarray
    centre: torch.Tensor
    neighbour: torch.Tensor
    d: torch.Tensor
    volumes: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)


def build_environments(frames: Sequence[Atoms], species: Sequence[int], cutoff: float,
                       dtype: torch.dtype = torch.float64) -> Environments:
    """Neighbour lists (ASE, all periodic images within ``cutoff``) of ``frames``, concatenated."""
    from ase.neighborlist import primitive_neighbor_list

    lookup = np.full(119, -1, dtype=np.int64)
    lookup[np.asarray(species, dtype=np.int64)] = np.arange(len(species))
    nums, fr, cen, nbr, dv, sizes, vols = [], [], [], [], [], [], []
    offset = 0
    for k, a in enumerate(frames):
        n = len(a)
        i, j, S = primitive_neighbor_list("ijS", a.pbc, a.cell.array, a.positions, cutoff,
                                          self_interaction=False, use_scaled_positions=False)
        d = a.positions[j] - a.positions[i] + S @ a.cell.array
        nums.append(a.numbers)
        fr.append(np.full(n, k))
        cen.append(i + offset)
        nbr.append(j + offset)
        dv.append(d)
        sizes.append(n)
        vols.append(abs(np.linalg.det(a.cell.array)) if a.pbc.all() else np.nan)
        offset += n
    numbers = np.concatenate(nums)
    sp = lookup[numbers]
    return Environments(
        numbers=numbers, species=torch.as_tensor(sp), frame=torch.as_tensor(np.concatenate(fr)),
        n_frames=len(frames), frame_sizes=np.asarray(sizes), centre=torch.as_tensor(np.concatenate(cen)),
        neighbour=torch.as_tensor(np.concatenate(nbr)), d=torch.as_tensor(np.concatenate(dv), dtype=dtype),
        volumes=np.asarray(vols, dtype=float))


def pair_gradient_to_forces_stress(env: Environments, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Map ``dE/dd`` (``(..., n_pairs, 3)``) to ``dE/dr`` per atom ``(..., n_atoms, 3)`` and the virial
    ``(..., n_frames, 3, 3)`` (``dE/deps``; divide by the volume for ASE's stress)."""
    lead = g.shape[:-2]
    grad = g.new_zeros(lead + (env.n_atoms, 3))
    grad.index_add_(-2, env.neighbour, g)
    grad.index_add_(-2, env.centre, -g)
    vir_pair = env.d[..., :, :, None] * g[..., :, None, :]          # (..., P, 3, 3)
    virial = g.new_zeros(lead + (env.n_frames, 3, 3))
    virial.index_add_(-3, env.frame[env.centre], vir_pair)
    return grad, virial


class SOAPDescriptor:
    """SOAP power spectrum of atom-centred environments (see the module docstring).

    Parameters
    ----------
    species: atomic numbers the descriptor knows (sorted).
    cutoff: radial cutoff (Å). n_max: radial functions. l_max: largest angular momentum.
    species_channels: ``None`` for one channel per element, or ``C`` for a seeded random
        orthonormal embedding of the elements in ``C`` channels.
    normalise: :meth:`features` returns the unit-length power spectrum (``True``) or the power
        spectrum itself (``False``).

    Example
    -------
    >>> from ase.build import bulk
    >>> desc = SOAPDescriptor([13, 29], cutoff=4.5, n_max=4, l_max=3)
    >>> env = build_environments([bulk("Cu", cubic=True)], desc.species, desc.cutoff)
    >>> desc.normalised(env.d, env).shape
    torch.Size([4, 180])
    """

    def __init__(self, species: Sequence[int], cutoff: float = 5.0, n_max: int = 5, l_max: int = 4,
                 species_channels: int | None = None, seed: int = 0, normalise: bool = True):
        self.normalise = bool(normalise)
        self.species = [int(z) for z in species]
        if sorted(set(self.species)) != self.species or not self.species:
            raise ValueError(f"species must be sorted distinct atomic numbers, got {species!r}")
        if not (cutoff > 0):
            raise ValueError(f"cutoff must be positive, got {cutoff!r}")
        if int(n_max) < 1 or int(l_max) < 0:
            raise ValueError(f"n_max must be >= 1 and l_max >= 0, got {n_max!r}, {l_max!r}")
        self.cutoff, self.n_max, self.l_max = float(cutoff), int(n_max), int(l_max)
        S = len(self.species)
        if species_channels is None:
            W = np.eye(S)
        else:
            C = int(species_channels)
            if C < 1:
                raise ValueError(f"species_channels must be positive, got {species_channels!r}")
            q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(max(S, C), max(S, C))))
            W = q[:S, :C] / np.linalg.norm(q[:S, :C], axis=1, keepdims=True)
        self.species_channels = species_channels
        self.seed = seed
        self.W = torch.as_tensor(W, dtype=torch.float64)
        K = self.W.shape[1] * self.n_max
        iu = torch.triu_indices(K, K)
        self._iu = iu
        self._offdiag = torch.where(iu[0] == iu[1], 1.0, math.sqrt(2.0)).to(torch.float64)

    @property
    def size(self) -> int:
        """Length of the descriptor vector."""
        K = self.W.shape[1] * self.n_max
        return K * (K + 1) // 2 * (self.l_max + 1)

    def config(self) -> dict:
        return dict(species=self.species, cutoff=self.cutoff, n_max=self.n_max, l_max=self.l_max,
                    species_channels=self.species_channels, seed=self.seed, normalise=self.normalise)

    def radial(self, r: torch.Tensor) -> torch.Tensor:
        """``g_n(r)``, shape ``(len(r), n_max)``."""
        rc, n = self.cutoff, self.n_max
        centres = torch.arange(n, dtype=r.dtype) * (rc / n)
        w = rc / n
        x = (r / rc).clamp(max=1.0)
        fc = (1.0 - x * x) ** 3
        return torch.exp(-((r[:, None] - centres) ** 2) / (2 * w * w)) * fc[:, None]

    def pair_basis(self, d: torch.Tensor) -> torch.Tensor:
        """``g_n(|d|) Y_lm(d/|d|)`` per pair, shape ``(n_pairs, n_max, (l_max+1)^2)``."""
        from e3nn import o3

        r = torch.linalg.vector_norm(d, dim=-1)
        Y = o3.spherical_harmonics(list(range(self.l_max + 1)), d, normalize=True, normalization="integral")
        return self.radial(r)[:, :, None] * Y[:, None, :]

    def pair_basis_jacobian(self, d: torch.Tensor) -> torch.Tensor:
        """``d(g_n Y_lm)/dd`` per pair, shape ``(n_pairs, n_max, (l_max+1)^2, 3)`` (three forward-mode passes)."""
        cols = []
        for a in range(3):
            t = torch.zeros_like(d)
            t[:, a] = 1.0
            cols.append(torch.func.jvp(self.pair_basis, (d,), (t,))[1])
        return torch.stack(cols, dim=-1)

    def coefficients(self, d: torch.Tensor, env: Environments, basis: torch.Tensor | None = None) -> torch.Tensor:
        """Density coefficients ``c`` (n_atoms, C * n_max, (l_max+1)^2) from pair vectors (differentiable)."""
        b = self.pair_basis(d) if basis is None else basis                      # (P, N, LM)
        w = self.W.to(d.dtype)[env.species[env.neighbour]]                    # (P, C)
        C = w.shape[1]
        t = (w[:, :, None, None] * b[:, None, :, :]).reshape(len(b), C * self.n_max, b.shape[-1])
        return d.new_zeros((env.n_atoms, C * self.n_max, b.shape[-1])).index_add(0, env.centre, t)

    def power_from_coefficients(self, c: torch.Tensor) -> torch.Tensor:
        """Power spectrum (n_envs, size) from density coefficients."""
        parts = []
        off = self._offdiag.to(c.dtype)
        for l in range(self.l_max + 1):
            cl = c[:, :, l * l:(l + 1) * (l + 1)]
            full = torch.einsum("ikm,ijm->ikj", cl, cl) * (4 * math.pi / (2 * l + 1))
            parts.append(full[:, self._iu[0], self._iu[1]] * off)
        return torch.cat(parts, dim=1)

    def power_spectrum(self, d: torch.Tensor, env: Environments) -> torch.Tensor:
        """Power spectrum ``p`` (n_atoms, size) from pair vectors ``d`` (differentiable)."""
        return self.power_from_coefficients(self.coefficients(d, env))

    def cotangent_matrices(self, v: torch.Tensor) -> list[torch.Tensor]:
        """For power-spectrum cotangents ``v`` (..., size): per ``l`` the symmetric ``(..., K, K)`` matrices
        ``T_l`` with ``dp/dc[k, lm] . v = 4 pi / (2l+1) sum_k' T_l[k, k'] c[k', lm]``."""
        K = self.W.shape[1] * self.n_max
        n_tri = K * (K + 1) // 2
        off = self._offdiag.to(v.dtype)
        out = []
        for l in range(self.l_max + 1):
            vl = v[..., l * n_tri:(l + 1) * n_tri] * off
            T = v.new_zeros(v.shape[:-1] + (K, K))
            T[..., self._iu[0], self._iu[1]] = vl
            out.append((T + T.transpose(-1, -2)) * (4 * math.pi / (2 * l + 1)))
        return out

    def normalised(self, d: torch.Tensor, env: Environments) -> torch.Tensor:
        """Unit-length descriptors ``x = p / sqrt(|p|^2 + eps)`` (n_atoms, size)."""
        p = self.power_spectrum(d, env)
        return p / torch.sqrt((p * p).sum(dim=1, keepdim=True) + _EPS)

    def features(self, d: torch.Tensor, env: Environments) -> torch.Tensor:
        """What the kernel compares: :meth:`normalised` if ``normalise``, else :meth:`power_spectrum`."""
        return self.normalised(d, env) if self.normalise else self.power_spectrum(d, env)
