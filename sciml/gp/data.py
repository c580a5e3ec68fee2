"""Training and prediction data of one molecule: validated frames -> position and label arrays.

Every configuration must list the same atoms in the same order (the global GP models one
molecule). Errors name the offending frame and the cause: wrong atom count or element order, a
periodic cell, non-finite positions, overlapping atoms, missing or non-finite labels.
Targets are interleaved per structure as ``[E, F_0x, F_0y, F_0z, F_1x, ...]`` (``1 + 3 n_atoms``
values), the order of the joint covariance in :mod:`sciml.gp.kernels`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from ..atoms import frame_labels, validate_frames

__all__ = ["frames_to_arrays", "interleave_targets", "energy_selector", "shared_configurations"]


def _check_same_molecule(frames: list, ref: np.ndarray, source: str) -> None:
    ref_formula = "".join(Atoms(numbers=ref).get_chemical_symbols())
    known = set(int(z) for z in ref)
    for k, a in enumerate(frames):
        if a.pbc.any():
            raise ValueError(f"{source}: frame {k} is periodic; the global GP models isolated molecules "
                             "(use sciml.gp.LocalGPPotential for periodic cells)")
        unknown = sorted(set(a.get_chemical_symbols()[i] for i, z in enumerate(a.numbers) if int(z) not in known))
        if unknown:
            raise ValueError(f"{source}: frame {k} contains element(s) {unknown} that the model's molecule "
                             f"{ref_formula} does not have")
        if len(a) != len(ref):
            raise ValueError(f"{source}: frame {k} has {len(a)} atoms but the model's molecule has {len(ref)}")
        if not np.array_equal(a.numbers, ref):
            raise ValueError(
                f"{source}: frame {k} has element order {''.join(a.get_chemical_symbols())}, "
                f"expected {ref_formula} (all configurations must list the same atoms in the same order)"
            )


def frames_to_arrays(
    frames: Sequence[Atoms] | Atoms, labels: bool, numbers: np.ndarray | None = None, source: str = "frames"
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate configurations of one molecule and stack positions (Å) and, with ``labels``, energies and forces.

    ``numbers``: the model's atomic numbers (default: those of the first frame). Returns
    ``positions (n, n_atoms, 3)``, ``energies (n,)`` in eV and ``forces (n, n_atoms, 3)`` in eV/Å
    (``None, None`` without ``labels``).

    Example
    -------
    >>> from ase.build import molecule
    >>> pos, _, _ = frames_to_arrays([molecule("H2O")], labels=False)
    >>> pos.shape
    (1, 3, 3)
    """
    if isinstance(frames, Atoms):
        frames = [frames]
    frames = list(frames)
    if len(frames) == 0:
        raise ValueError(f"{source}: no configurations given")
    for k, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise TypeError(f"{source}: frame {k} is a {type(a).__name__}, expected ase.Atoms")
    ref = frames[0].numbers if numbers is None else np.asarray(numbers)
    _check_same_molecule(frames, ref, source)
    if len(ref) < 2:
        raise ValueError(f"{source}: molecules need at least 2 atoms, got {len(ref)}")
    validate_frames(frames, require=("energy", "forces") if labels else (), source=source, min_distance=1e-3)
    pos = np.stack([a.get_positions() for a in frames]).astype(np.float64)
    if not labels:
        return pos, None, None
    lab = [frame_labels(a) for a in frames]
    return pos, np.array([d["energy"] for d in lab], dtype=np.float64), np.stack([d["forces"] for d in lab])


def interleave_targets(energies: np.ndarray, forces: np.ndarray) -> np.ndarray:
    """Interleave ``[E, F_0x, F_0y, ...]`` per structure into one vector of ``n (1 + 3 n_atoms)`` values."""
    n = len(energies)
    return np.concatenate([np.asarray(energies)[:, None], np.asarray(forces).reshape(n, -1)], axis=1).reshape(-1)


def energy_selector(n: int, n_outputs: int) -> np.ndarray:
    """``e``: 1 at the energy entries of the interleaved target vector, 0 at the forces."""
    e = np.zeros((n, n_outputs))
    e[:, 0] = 1.0
    return e.reshape(-1)


def shared_configurations(positions: np.ndarray, reference: np.ndarray, decimals: int = 8) -> list[int]:
    """Indices of ``positions`` (``(n, n_atoms, 3)``) that equal a configuration of ``reference`` (to 1e-8 Å).

    Example
    -------
    >>> x = np.zeros((2, 3, 3)); x[1, 0, 0] = 1.0
    >>> shared_configurations(x, x[1:])
    [1]
    """
    keys = {np.round(p, decimals).tobytes() for p in np.asarray(reference, dtype=np.float64)}
    return [k for k, p in enumerate(np.asarray(positions, dtype=np.float64)) if np.round(p, decimals).tobytes() in keys]
