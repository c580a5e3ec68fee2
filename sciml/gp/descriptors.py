"""Rotation- and translation-invariant molecular descriptors with analytic Jacobians.

The descriptor is the vector of inverse pairwise distances to a power ``p``,
``x_k = |r_i - r_j|^-p`` over all atom pairs ``i < j`` (``p = 1``: the sGDML/GDML
descriptor). Its Jacobian with respect to the Cartesian positions is analytic::

    d x_k / d r_i = -p (r_i - r_j) / |r_i - r_j|^(p+2),   d x_k / d r_j = +p (r_i - r_j) / |r_i - r_j|^(p+2)

Positions are in Å, descriptors in Å^-p. Everything here works on batches of
structures with the same atom count (one molecule, many configurations).
:class:`Geometry` holds the descriptors and Jacobians of a set of configurations (optionally
with fixed per-entry weights), :class:`Permutations` the descriptor index arrays of a group of
permutations of identical atoms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["pair_indices", "inverse_distances", "descriptor_permutation", "Geometry", "Permutations"]


def pair_indices(n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Atom indices ``(i, j)`` with ``i < j`` in the descriptor order (row-major upper triangle).

    Example
    -------
    >>> i, j = pair_indices(3)
    >>> list(zip(i.tolist(), j.tolist()))
    [(0, 1), (0, 2), (1, 2)]
    """
    if n_atoms < 2:
        raise ValueError(f"a molecular descriptor needs at least 2 atoms, got n_atoms={n_atoms}")
    i, j = np.triu_indices(n_atoms, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def inverse_distances(
    positions: np.ndarray | torch.Tensor, jacobian: bool = True, power: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverse pairwise distances (to the power ``power``, ``|r_ij|^-power``) and their analytic Jacobian.

    Parameters
    ----------
    positions:
        ``(n_structures, n_atoms, 3)`` or ``(n_atoms, 3)`` Cartesian positions in Å.
    jacobian:
        Also return ``dx/dR`` of shape ``(n_structures, D, 3 * n_atoms)``
        (columns ordered atom-major: ``3 * atom + xyz``).
    power:
        Exponent ``p > 0`` of the descriptor ``|r_ij|^-p`` (1: plain inverse distances).

    Returns
    -------
    x:
        ``(n_structures, D)`` descriptors in Å^-p with ``D = n_atoms (n_atoms - 1) / 2``.
    jac:
        The Jacobian, or ``None``.

    Example
    -------
    >>> import numpy as np
    >>> x, J = inverse_distances(np.array([[0.0, 0, 0], [2.0, 0, 0]]))
    >>> float(x[0, 0]), J.shape
    (0.5, torch.Size([1, 1, 6]))
    """
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"power must be a finite positive exponent of the inverse distances, got {power!r}")
    pos = torch.as_tensor(positions, dtype=torch.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise ValueError(f"positions must have shape (n_structures, n_atoms, 3), got {tuple(pos.shape)}")
    n, a, _ = pos.shape
    i, j = pair_indices(a)
    ti, tj = torch.as_tensor(i), torch.as_tensor(j)
    diff = pos[:, ti, :] - pos[:, tj, :]  # (n, D, 3)
    dist = diff.norm(dim=-1)
    if not torch.all(torch.isfinite(dist)) or torch.any(dist < 1e-8):
        bad = torch.nonzero(~torch.isfinite(dist) | (dist < 1e-8))[0]
        raise ValueError(
            f"structure {int(bad[0])}: atoms {int(ti[bad[1]])} and {int(tj[bad[1]])} coincide or have "
            "non-finite positions; inverse distances are undefined"
        )
    inv = 1.0 / dist
    x = inv if power == 1.0 else inv**power
    if not jacobian:
        return x, None
    d = diff * (power * x * inv**2)[..., None]  # p (r_i - r_j) / |r_ij|^(p+2)
    D = x.shape[1]
    jac = torch.zeros(n, D, a, 3, dtype=torch.float64)
    rows = torch.arange(D)
    jac[:, rows, ti, :] = -d
    jac[:, rows, tj, :] = d
    return x, jac.reshape(n, D, 3 * a)


def descriptor_permutation(perm: np.ndarray | list[int]) -> np.ndarray:
    """Index array ``idx`` such that ``x(R[perm]) == x(R)[idx]`` for inverse distances.

    ``perm`` is an atom permutation: the permuted structure has atom ``k`` at the
    position of atom ``perm[k]``.

    Example
    -------
    >>> descriptor_permutation([1, 0, 2]).tolist()  # swap atoms 0 and 1 of a triatomic
    [0, 2, 1]
    """
    perm = np.asarray(perm, dtype=np.int64)
    a = len(perm)
    if sorted(perm.tolist()) != list(range(a)):
        raise ValueError(f"perm must be a permutation of range({a}), got {perm.tolist()}")
    i, j = pair_indices(a)
    index = -np.ones((a, a), dtype=np.int64)
    index[i, j] = np.arange(len(i))
    index[j, i] = np.arange(len(i))
    return index[perm[i], perm[j]]


@dataclass
class Geometry:
    """Descriptors and Jacobians of a set of configurations of one molecule.

    Descriptor entries may be rescaled by fixed weights ``w`` (``x -> w x``,
    ``J -> w J``); weights constant on the orbits of the permutation group keep
    the symmetrised kernel exactly invariant.

    Attributes
    ----------
    X: ``(n, D)`` descriptors. Jt: ``(n, 3A, D)`` transposed Jacobians.
    p: ``(n, 3A)`` the products ``J^T x``.
    """

    X: torch.Tensor
    Jt: torch.Tensor
    p: torch.Tensor

    @classmethod
    def from_positions(
        cls, positions: np.ndarray | torch.Tensor, weights: np.ndarray | torch.Tensor | None = None,
        power: float = 1.0,
    ) -> "Geometry":
        """Build from ``(n, n_atoms, 3)`` positions in Å; ``weights`` rescale the descriptor entries;
        ``power``: exponent of the inverse distances (see :func:`inverse_distances`)."""
        x, jac = inverse_distances(positions, jacobian=True, power=power)
        jt = jac.transpose(1, 2).contiguous()
        if weights is not None:
            w = torch.as_tensor(weights, dtype=torch.float64)
            x, jt = x * w, jt * w
        return cls(X=x, Jt=jt, p=torch.einsum("nkd,nd->nk", jt, x))

    def rescaled(self, weights: torch.Tensor) -> "Geometry":
        """The same configurations with descriptor entries multiplied by ``weights`` (``(D,)``).

        Differentiable in ``weights`` (ARD length-scales enter the kernel this way).
        """
        x, jt = self.X * weights, self.Jt * weights
        return Geometry(X=x, Jt=jt, p=torch.einsum("nkd,nd->nk", jt, x))

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, sl: slice | torch.Tensor | np.ndarray) -> "Geometry":
        return Geometry(self.X[sl], self.Jt[sl], self.p[sl])

    @property
    def n_outputs(self) -> int:
        """Outputs per structure: ``1 + 3 n_atoms``."""
        return 1 + self.Jt.shape[1]


class Permutations:
    """Descriptor index arrays for a group of atom permutations (identity first)."""

    def __init__(self, atom_perms: np.ndarray | None, n_atoms: int):
        if atom_perms is None:
            atom_perms = np.arange(n_atoms)[None]
        atom_perms = np.asarray(atom_perms, dtype=np.int64)
        if atom_perms.ndim != 2 or atom_perms.shape[1] != n_atoms:
            raise ValueError(f"permutations must have shape (n_perms, {n_atoms}), got {atom_perms.shape}")
        self.atom_perms = atom_perms
        idx = np.stack([descriptor_permutation(p) for p in atom_perms])
        self.idx = torch.as_tensor(idx)
        self.inv = torch.as_tensor(np.argsort(idx, axis=1))

    def __len__(self) -> int:
        return len(self.atom_perms)
