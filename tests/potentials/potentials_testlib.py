"""Helpers shared by the potentials tests."""
from __future__ import annotations

import numpy as np
import torch

from sciml.potentials import EquivariantPotential, ModelConfig


def tiny_model(species=(1, 6, 8), seed=0, **kw) -> EquivariantPotential:
    """A small random model whose outputs are O(1) (so invariance checks are meaningful)."""
    torch.manual_seed(seed)
    cfg = dict(species=list(species), cutoff=4.0, num_channels=8, num_layers=2, lmax=2, num_basis=6,
               radial_hidden=16, readout_hidden=8)
    cfg.update(kw)
    m = EquivariantPotential(ModelConfig(**cfg)).double()
    with torch.no_grad():
        m.avg_num_neighbors.fill_(6.0)
        m.atomic_energies.copy_(torch.linspace(-1.0, -3.0, len(species), dtype=torch.float64))
    m.eval()
    return m


def random_rotation(seed: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.random(random_state=seed).as_matrix()


def random_labelled_graph(atoms, model, rng):
    """The graph of ``atoms`` with random energy/force/stress labels (for loss and gradient comparisons)."""
    from sciml.potentials import atoms_to_graph

    g = atoms_to_graph(atoms, model.cutoff, model.species)
    g.energy = torch.tensor([-3.0 * len(atoms)], dtype=torch.float64)
    g.forces = torch.tensor(rng.normal(size=(len(atoms), 3)))
    g.stress = torch.tensor(rng.normal(scale=0.01, size=(1, 3, 3)))
    g.has_stress = torch.tensor([True])
    return g
