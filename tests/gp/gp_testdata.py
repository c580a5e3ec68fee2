"""Tiny labelled data sets for the sciml.gp tests."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import molecule

from sciml.atoms import attach_labels


def morse_like(atoms: Atoms) -> tuple[float, np.ndarray]:
    """A smooth analytic reference: sum of Morse terms over all pairs (eV, eV/Å)."""
    pos = atoms.get_positions()
    n = len(atoms)
    e = 0.0
    f = np.zeros((n, 3))
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[i] - pos[j]
            r = np.linalg.norm(d)
            r0 = 1.0 if 1 in (atoms.numbers[i], atoms.numbers[j]) else 1.45
            x = np.exp(-1.5 * (r - r0))
            e += 0.5 * (1 - x) ** 2
            de_dr = 0.5 * 2 * (1 - x) * 1.5 * x
            f[i] -= de_dr * d / r
            f[j] += de_dr * d / r
    return e, f


def distorted_frames(name: str, n: int, amp: float, seed: int, label: bool = True) -> list[Atoms]:
    """``n`` randomly distorted copies of an ASE molecule, labelled with :func:`morse_like`."""
    rng = np.random.default_rng(seed)
    base = molecule(name)
    out = []
    for _ in range(n):
        a = base.copy()
        a.positions = a.positions + amp * rng.normal(size=a.positions.shape)
        if label:
            e, f = morse_like(a)
            a = attach_labels(a, energy=e, forces=f)
        out.append(a)
    return out
