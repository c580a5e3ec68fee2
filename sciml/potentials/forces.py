"""Energy -> forces (-dE/dR), stress (strain derivative), exact Hessian and vibrational frequencies.

Stress follows ASE: ``sigma = (1/V) dE/d(eps)`` for a symmetric strain ``eps`` applied to
positions and cell (``r -> r (1 + eps)``, ``cell -> cell (1 + eps)``), in eV/Å^3; a
compressed crystal has negative stress. Only fully periodic structures get a stress.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .chunked import chunked_properties
from .graph import AtomicGraph, atoms_to_graph


def compute_properties(
    model: torch.nn.Module,
    graph: AtomicGraph,
    forces: bool = True,
    stress: bool = False,
    create_graph: bool = False,
    max_edges: Optional[int] = None,
) -> dict[str, torch.Tensor]:
    """Evaluate ``model`` on a batch: ``energy`` (B,), ``energies`` (N,), ``forces`` (N,3), ``stress`` (B,3,3).

    ``create_graph=True`` keeps the graph of the derivatives (needed to train on forces).
    ``max_edges``: graphs with more edges are evaluated block by block in bounded memory
    (:func:`sciml.potentials.chunked.chunked_properties`: same numbers, no autograd graph kept;
    ignored with ``create_graph=True``). ``None`` evaluates every graph in one pass.

    Example
    -------
    >>> out = compute_properties(model, graph, stress=True)  # doctest: +SKIP
    >>> out["energy"], out["forces"], out["stress"]  # doctest: +SKIP
    """
    if max_edges is not None and not create_graph and graph.edge_index.shape[1] > max_edges:
        return chunked_properties(model, graph, forces=forces, stress=stress, max_edges=max_edges)
    B = graph.num_graphs
    pos = graph.positions
    cell = graph.cell
    need_grad = forces or stress
    if need_grad:
        pos = pos.detach().requires_grad_(True)
    strain = None
    if stress:
        strain = torch.zeros((B, 3, 3), dtype=pos.dtype, device=pos.device, requires_grad=True)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        pos_in = pos + torch.einsum("ni,nij->nj", pos, sym[graph.batch])
        cell_in = cell + torch.bmm(cell, sym)
    else:
        pos_in, cell_in = pos, cell
    energies = model(pos_in, graph.species, graph.edge_index, graph.shifts, cell_in, graph.batch)
    energy = torch.zeros(B, dtype=energies.dtype, device=energies.device).index_add(0, graph.batch, energies)
    out = {"energy": energy, "energies": energies}
    if need_grad:
        inputs = [pos] + ([strain] if stress else [])
        grads = torch.autograd.grad(
            energy.sum(), inputs, create_graph=create_graph, retain_graph=create_graph, allow_unused=True
        )
        if forces:
            g = grads[0] if grads[0] is not None else torch.zeros_like(pos)
            out["forces"] = -g
        if stress:
            g = grads[1] if grads[1] is not None else torch.zeros_like(strain)
            vol = torch.linalg.det(cell).abs().clamp_min(1e-12)
            periodic = graph.pbc.all(dim=1).to(g.dtype)
            out["stress"] = g / vol[:, None, None] * periodic[:, None, None]
    return out


def hessian(model: torch.nn.Module, atoms, device: Optional[str | torch.device] = None) -> np.ndarray:
    """Exact Hessian ``d^2 E / dR dR`` (3N x 3N, eV/Å^2) by double back-propagation.

    Example
    -------
    >>> H = hessian(model, molecule("H2O"))  # doctest: +SKIP
    >>> H.shape
    (9, 9)
    """
    p = next(model.parameters())
    g = atoms_to_graph(atoms, model.cutoff, model.species, dtype=p.dtype).to(device or p.device)
    pos = g.positions.detach().requires_grad_(True)
    energies = model(pos, g.species, g.edge_index, g.shifts, g.cell, g.batch)
    (grad,) = torch.autograd.grad(energies.sum(), pos, create_graph=True)
    grad = grad.reshape(-1)
    n = grad.numel()
    eye = torch.eye(n, dtype=grad.dtype, device=grad.device)
    try:
        (H,) = torch.autograd.grad(grad, pos, grad_outputs=eye, is_grads_batched=True)
        H = H.reshape(n, n)
    except RuntimeError:  # vmap not supported by some op: row by row
        rows = [torch.autograd.grad(grad[k], pos, retain_graph=True)[0].reshape(-1) for k in range(n)]
        H = torch.stack(rows)
    H = H.detach().cpu().numpy()
    return 0.5 * (H + H.T)


def vibrational_frequencies(model: torch.nn.Module, atoms, project: bool = True) -> np.ndarray:
    """Harmonic vibrational frequencies (cm^-1) from the exact mass-weighted Hessian.

    Imaginary modes are returned as negative numbers. With ``project=True`` the 3 translations
    and 3 rotations (2 for a linear molecule) are projected out and dropped, leaving the
    3N-6 (3N-5) vibrations sorted ascending.

    Example
    -------
    >>> vibrational_frequencies(model, molecule("H2O"))  # doctest: +SKIP
    array([1590., 3650., 3760.])
    """
    from ase import units

    H = hessian(model, atoms)
    m = np.repeat(atoms.get_masses(), 3)
    Hm = H / np.sqrt(np.outer(m, m))
    if project:
        P, n_ext = _external_projector(atoms)
        Hm = P @ Hm @ P
    eig = np.linalg.eigvalsh(Hm)
    # same conversion as ase.vibrations: sqrt(eV/Å^2/amu) -> eV -> cm^-1
    s = units._hbar * 1e10 / np.sqrt(units._e * units._amu)
    freq = s * np.sign(eig) * np.sqrt(np.abs(eig)) / units.invcm
    if project:
        order = np.argsort(np.abs(freq))
        freq = np.sort(freq[order[n_ext:]])
    return freq


def _external_projector(atoms) -> tuple[np.ndarray, int]:
    """Projector removing mass-weighted translations and rotations (Eckart)."""
    m = atoms.get_masses()
    sq = np.sqrt(m)
    x = atoms.positions - atoms.get_center_of_mass()
    n = len(atoms)
    vecs = []
    for k in range(3):
        t = np.zeros((n, 3))
        t[:, k] = sq
        vecs.append(t.reshape(-1))
    for k in range(3):
        axis = np.zeros(3)
        axis[k] = 1.0
        r = np.cross(axis, x) * sq[:, None]
        vecs.append(r.reshape(-1))
    V = np.array(vecs).T
    U, s, _ = np.linalg.svd(V, full_matrices=False)
    U = U[:, s > 1e-6 * s.max()]
    return np.eye(3 * n) - U @ U.T, U.shape[1]
