"""Training loss on energies per atom, forces and stress (ASE units), with global normalisation.

For a (global) batch of ``B`` structures, ``N_f`` force components and ``N_s`` stress components
of fully periodic structures that carry a stress label::

    L = w_E * sum_b ((E_b - E*_b) / n_b)^2 / B          (eV/atom)^2
      + w_F * sum_{i,k} (F_ik - F*_ik)^2 / N_f          (eV/Å)^2
      + w_S * sum_{b periodic} sum_{kl} (s_bkl - s*_bkl)^2 / N_s   (eV/Å^3)^2

``(w_E, w_F, w_S)`` are ``TrainConfig.energy_weight``, ``forces_weight`` and ``stress_weight``.
Periodic and non-periodic structures can share a batch: the stress term only sums over the
structures with a stress label. Under data parallelism each process passes the *global* counts,
so the summed gradients equal those of one process with the whole batch.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .forces import compute_properties
from .graph import AtomicGraph, collate


def batch_counts(graphs: Sequence[AtomicGraph]) -> tuple[int, int, int]:
    """``(structures, force components, stress components)`` of a batch, the loss normalisers."""
    return (
        len(graphs),
        sum(3 * int(g.n_atoms[0]) for g in graphs),
        sum(9 * int(g.has_stress[0]) for g in graphs),
    )


def batch_loss(
    model: torch.nn.Module,
    graphs: Sequence[AtomicGraph],
    counts: tuple[int, int, int],
    weights: tuple[float, float, float],
    device: torch.device | str,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Loss of ``graphs`` (this process's share of a batch) normalised by the global ``counts``.

    Example
    -------
    >>> loss = batch_loss(model, graphs, batch_counts(graphs), (1.0, 100.0, 10.0), "cpu", torch.float64)  # doctest: +SKIP
    >>> loss.backward()  # doctest: +SKIP
    """
    n_struct, n_force, n_stress = counts
    g = collate(list(graphs)).to(device, dtype)
    want_stress = bool(g.has_stress.any()) and weights[2] > 0 and n_stress > 0
    res = compute_properties(model, g, forces=True, stress=want_stress, create_graph=True)
    dE = (res["energy"] - g.energy) / g.n_atoms.to(dtype)
    loss = weights[0] * (dE**2).sum() / n_struct
    loss = loss + weights[1] * ((res["forces"] - g.forces) ** 2).sum() / n_force
    if want_stress:
        m = g.has_stress
        loss = loss + weights[2] * ((res["stress"][m] - g.stress[m]) ** 2).sum() / n_stress
    return loss
