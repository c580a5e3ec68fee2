"""Small periodic multi-species EMT frames for the local-GP tests (triclinic cells, three elements)."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from sciml.atoms import attach_labels


def triclinic_alloy(seed: int, repeat=(2, 2, 2), rattle: float = 0.12) -> Atoms:
    """A sheared fcc Cu cell with Au and Ni substituted, rattled (unlabelled)."""
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.6).repeat(repeat)
    cell = a.cell.array @ (np.eye(3) + rng.uniform(-0.06, 0.06, (3, 3)))
    a.set_cell(cell, scale_atoms=True)
    z = a.numbers.copy()
    z[rng.permutation(len(a))[: max(1, len(a) // 3)]] = 79
    z[rng.permutation(len(a))[: max(1, len(a) // 4)]] = 28
    a.numbers = z
    a.positions += rng.normal(scale=rattle, size=a.positions.shape)
    return a


def labelled(frames: list[Atoms]) -> list[Atoms]:
    """Frames with EMT energy, forces and stress."""
    out = []
    for a in frames:
        b = a.copy()
        b.calc = EMT()
        out.append(attach_labels(a, energy=b.get_potential_energy(), forces=b.get_forces(), stress=b.get_stress()))
    return out


def alloy_set(n: int, seed: int = 0, repeat=(2, 2, 1)) -> list[Atoms]:
    """``n`` labelled triclinic alloy frames."""
    return labelled([triclinic_alloy(seed + k, repeat) for k in range(n)])
