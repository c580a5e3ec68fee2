"""Predictions and error metrics of a potential on labelled frames (keys of :mod:`sciml.metrics`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..metrics import ErrorAccumulator, metrics_from_sums
from .distributed import DistInfo, all_reduce_
from .forces import compute_properties
from .graph import AtomicGraph, collate, frames_to_graphs
from .model import EquivariantPotential


def check_stress_labels(frames: Sequence, name: str = "frames") -> None:
    """Raise ``ValueError`` naming the frame when a stress label sits on a structure that is not fully periodic.

    Stress is the strain derivative of the energy per cell volume, defined only for a cell
    periodic in all three directions; such a label would otherwise be silently ignored.
    """
    for k, a in enumerate(frames):
        results = getattr(getattr(a, "calc", None), "results", None) or {}
        has = "stress" in results or "stress" in a.info
        if has and not bool(np.all(a.pbc)):
            raise ValueError(
                f"{name}[{k}]: stress label on a structure that is not periodic in all three directions "
                f"(pbc={a.pbc.tolist()}); stress needs a 3D-periodic cell: remove the label or make the cell periodic"
            )


def predict_graphs(
    model: EquivariantPotential, graphs: Sequence[AtomicGraph], batch_size: int = 16, stress: bool = False
) -> list[dict[str, np.ndarray]]:
    """Predictions (energy, forces, optional stress) for each graph, as numpy arrays (eV, eV/Å, eV/Å^3).

    Example
    -------
    >>> pred = predict_graphs(model, frames_to_graphs(test, model.cutoff, model.species))  # doctest: +SKIP
    >>> pred[0]["energy"], pred[0]["forces"].shape  # doctest: +SKIP
    """
    p = next(model.parameters())
    out = []
    for k in range(0, len(graphs), batch_size):
        chunk = list(graphs[k : k + batch_size])
        g = collate(chunk).to(p.device, p.dtype)
        want_stress = stress and bool(g.pbc.all(dim=1).any())
        res = compute_properties(model, g, forces=True, stress=want_stress)
        offs = np.cumsum([0] + [int(c.n_atoms[0]) for c in chunk])
        for b in range(len(chunk)):
            d = {
                "energy": float(res["energy"][b].detach()),
                "forces": res["forces"][offs[b] : offs[b + 1]].detach().cpu().numpy(),
            }
            if want_stress:
                d["stress"] = res["stress"][b].detach().cpu().numpy()
            out.append(d)
    return out


def error_sums(model, graphs: Sequence[AtomicGraph], dist_info: DistInfo, batch_size: int) -> torch.Tensor:
    """Sums of errors (:data:`sciml.metrics.SUM_FIELDS`) on this rank's share of ``graphs``, all-reduced."""
    mine = [g for k, g in enumerate(graphs) if k % dist_info.world == dist_info.rank]
    p = next(model.parameters())
    sums = ErrorAccumulator()
    for k in range(0, len(mine), batch_size):
        g = collate(mine[k : k + batch_size]).to(p.device, p.dtype)
        want_stress = bool(g.has_stress.any())
        res = compute_properties(model, g, forces=True, stress=want_stress)
        dE = (res["energy"].detach() - g.energy).double().cpu().numpy()
        dF = (res["forces"].detach() - g.forces).double().cpu().numpy()
        dS = None
        if want_stress:
            m = g.has_stress.cpu()
            dS = (res["stress"].detach().double().cpu() - g.stress.double().cpu())[m].numpy()
        sums.add(dE, g.n_atoms.cpu().numpy(), dF, dS)
    acc = torch.from_numpy(sums.sums.copy())
    all_reduce_(acc, dist_info)
    return acc


def metrics_with_loss(acc: torch.Tensor, weights: tuple[float, float, float]) -> dict:
    """Metrics (:func:`sciml.metrics.metrics_from_sums`) plus the loss of :mod:`sciml.potentials.loss`."""
    a = acc.tolist()
    m = metrics_from_sums(a)
    ns = max(a[0], 1)
    loss = weights[0] * a[5] / ns + weights[1] * a[7] / max(a[8], 1)
    if a[11] > 0:
        loss += weights[2] * a[10] / a[11]
    m["loss"] = loss
    return m


def evaluate(model: EquivariantPotential, frames: Sequence, batch_size: int = 16) -> dict:
    """Error metrics of ``model`` on labelled ``frames`` (meV, meV/atom, meV/Å; stress GPa).

    Keys follow :mod:`sciml.metrics` (``energy_mae_meV``, ``energy_mae_meV_per_atom``,
    ``forces_mae_meV_per_A``, ``stress_mae_GPa``, ...); stress keys appear when some frames are
    periodic with a stress label.

    Example
    -------
    >>> evaluate(load_model("model.pt"), read_frames("test.extxyz"))["forces_mae_meV_per_A"]  # doctest: +SKIP
    """
    check_stress_labels(frames)
    graphs = frames_to_graphs(frames, model.cutoff, model.species, labels=True, dtype=model.dtype)
    acc = error_sums(model, graphs, DistInfo(), batch_size)
    m = metrics_with_loss(acc, (1.0, 1.0, 1.0))
    m.pop("loss")
    return m
