"""Per-element reference energies (least squares), energy scale/shift and average neighbour count.

Set once from the training set before training (:func:`fit_statistics`) and stored with the model,
so that an untrained network already predicts energies to within the spread of the data:
``E_i = scale * y_i + shift + E0[Z_i]`` with ``y_i`` the network output of atom ``i``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .graph import AtomicGraph
from .model import EquivariantPotential


def fit_statistics(model: EquivariantPotential, graphs: Sequence[AtomicGraph]) -> dict:
    """Set per-element reference energies (least squares), scale, shift and average neighbour count.

    ``E0`` solves ``min ||A E0 - E||`` where ``A[b, s]`` counts atoms of species ``s`` in
    structure ``b`` (minimum-norm solution when the compositions do not determine all E0);
    ``shift`` is the mean remaining energy per atom; ``scale`` the RMS force component.
    Returns the values set (``atomic_energies``, ``shift``, ``scale``, ``avg_num_neighbors``).

    Example
    -------
    >>> stats = fit_statistics(model, frames_to_graphs(train, model.cutoff, model.species))  # doctest: +SKIP
    >>> stats["atomic_energies"]  # eV per element, in model.species order  # doctest: +SKIP
    """
    S = len(model.species)
    A = np.zeros((len(graphs), S))
    E = np.zeros(len(graphs))
    f2, nf, nedge, natom = 0.0, 0, 0, 0
    for b, g in enumerate(graphs):
        A[b] = np.bincount(g.species.numpy(), minlength=S)
        E[b] = float(g.energy[0])
        f2 += float((g.forces.double() ** 2).sum())
        nf += g.forces.numel()
        nedge += g.edge_index.shape[1]
        natom += g.positions.shape[0]
    e0, *_ = np.linalg.lstsq(A, E, rcond=None)
    resid = (E - A @ e0) / A.sum(1)
    shift = float(resid.mean())
    scale = math.sqrt(f2 / max(nf, 1)) if f2 > 0 else float(np.std(resid) or 1.0)
    avg_nn = max(nedge / max(natom, 1), 1.0)
    with torch.no_grad():
        model.atomic_energies.copy_(torch.as_tensor(e0, dtype=model.atomic_energies.dtype))
        model.shift.fill_(shift)
        model.scale.fill_(scale)
        model.avg_num_neighbors.fill_(avg_nn)
    return {"atomic_energies": e0.tolist(), "shift": shift, "scale": scale, "avg_num_neighbors": avg_nn}
