"""ASE calculator for sciml potentials (single model or committee with uncertainty)."""
from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .._runtime import resolve_device
from .chunked import DEFAULT_MAX_EDGES
from .forces import compute_properties
from .graph import AtomicGraph, check_distances, check_structure, device_neighbor_list, neighbor_list
from .model import _DTYPES, EquivariantPotential, load_model

ModelLike = Union[str, Path, EquivariantPotential]


class SciMLCalculator(Calculator):
    """ASE calculator backed by one or several (committee) :class:`EquivariantPotential` models.

    Parameters
    ----------
    model : a model file path, a model object, or a list of them (a committee). With several
        models ``results`` hold the committee mean plus ``energy_std`` (eV), ``forces_std``
        ((N,3) eV/Å) and, for periodic cells, ``stress_std``.
    device : "cpu", "cuda", "cuda:1", a ``torch.device``, or None (CUDA when available). Everything
        runs there, the neighbour list included (vesin's CUDA kernel; if vesin cannot run on the
        device the list is built on the CPU and copied, with a warning, and
        ``neighbor_list_device`` says where it ran).
    dtype : "float64" / "float32" (or a ``torch.dtype``) / None (as stored in the file; objects are
        used as given). ``torch.get_default_dtype()`` is never changed.
    max_edges : structures with more neighbour pairs are evaluated block by block with at most this
        many edges per block (bounded memory, same numbers: :mod:`sciml.potentials.chunked`);
        None evaluates every structure in one pass.

    Properties: ``energy``/``free_energy`` (eV), ``forces`` (eV/Å), ``energies`` (per atom, eV)
    and, for fully periodic cells, ``stress`` (Voigt, eV/Å^3, ASE sign convention).

    Example
    -------
    >>> from ase.build import molecule
    >>> atoms = molecule("CH3CH2OH")
    >>> atoms.calc = SciMLCalculator("model.pt")  # doctest: +SKIP
    >>> atoms.get_forces().shape  # doctest: +SKIP
    (9, 3)
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model: Union[ModelLike, Sequence[ModelLike]],
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[Union[str, torch.dtype]] = None,
        max_edges: Optional[int] = DEFAULT_MAX_EDGES,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if max_edges is not None and (not isinstance(max_edges, int) or max_edges < 1):
            raise ValueError(f"max_edges must be a positive integer or None, got {max_edges!r}")
        self.max_edges = max_edges
        items = list(model) if isinstance(model, (list, tuple)) else [model]
        if not items:
            raise ValueError("SciMLCalculator needs at least one model (got an empty list)")
        models = []
        for m in items:
            if isinstance(m, (str, Path)):
                m = load_model(m, device=device, dtype=dtype)
            elif isinstance(m, EquivariantPotential):
                m = copy.deepcopy(m)  # a private copy: the caller's model is left untouched
                if dtype is not None or device is not None:
                    m = m.to(device=resolve_device(device) if device is not None else None, dtype=_as_dtype(dtype))
            else:
                raise TypeError(f"model must be a path or an EquivariantPotential, got {type(m).__name__}")
            m.eval()
            for p in m.parameters():  # inference only needs d/dpositions: ~5-10% faster without weight grads
                p.requires_grad_(False)
            models.append(m)
        ref = models[0]
        for k, m in enumerate(models[1:], 1):
            if m.species != ref.species or m.cutoff != ref.cutoff:
                raise ValueError(
                    f"committee model {k} has species {m.species} / cutoff {m.cutoff}, "
                    f"model 0 has {ref.species} / {ref.cutoff}: all models must agree"
                )
        self.models = models
        self.species = list(ref.species)
        self.cutoff = float(ref.cutoff)
        p = next(ref.parameters())
        self._device, self._dtype = p.device, p.dtype
        #: build the neighbour list with torch tensors on the model's device (default: off the CPU);
        #: ``neighbor_list_device`` records where the last one was built
        self.nl_on_device = self._device.type != "cpu"
        self.neighbor_list_device: Optional[str] = None
        self._z2i = np.full(max(self.species) + 1, -1, dtype=np.int64)
        self._z2i[self.species] = np.arange(len(self.species))

    def _graph(self, atoms) -> AtomicGraph:
        check_structure(atoms, "atoms", self.species)
        pos = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        dev, dt = self._device, self._dtype
        edge_index = None
        if self.nl_on_device:
            try:
                edge_index, S, d = device_neighbor_list(torch.as_tensor(pos, device=dev), torch.as_tensor(cell),
                                                        pbc, self.cutoff)
                self.neighbor_list_device = str(dev)
            except RuntimeError as exc:  # visible fallback: the list is built on the CPU and copied
                warnings.warn(f"vesin could not build the neighbour list on {dev} ({exc}); building it on the CPU",
                              RuntimeWarning, stacklevel=3)
        if edge_index is None:
            i, j, S, d = neighbor_list(pos, cell, pbc, self.cutoff, distances=True)
            edge_index = torch.from_numpy(np.stack([i, j])).to(dev)
            S = torch.from_numpy(S)
            self.neighbor_list_device = "cpu"
        check_distances(edge_index[0], edge_index[1], d, "atoms")
        n = len(atoms)
        return AtomicGraph(
            positions=torch.as_tensor(pos, dtype=dt, device=dev),
            species=torch.as_tensor(self._z2i[atoms.numbers], device=dev),
            edge_index=edge_index,
            shifts=S.to(device=dev, dtype=dt),
            cell=torch.as_tensor(cell, dtype=dt, device=dev).unsqueeze(0),
            batch=torch.zeros(n, dtype=torch.long, device=dev),
            n_atoms=torch.tensor([n], device=dev),
            pbc=torch.as_tensor(pbc, device=dev).unsqueeze(0),
        )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        g = self._graph(atoms)
        periodic = bool(atoms.pbc.all())
        E, F, EA, S = [], [], [], []
        for m in self.models:
            out = compute_properties(m, g, forces=True, stress=periodic, max_edges=self.max_edges)
            E.append(float(out["energy"][0].detach()))
            F.append(out["forces"].detach().cpu().numpy().astype(np.float64))
            EA.append(out["energies"].detach().cpu().numpy().astype(np.float64))
            if periodic:
                S.append(out["stress"][0].detach().cpu().numpy().astype(np.float64))
        E, F, EA = np.array(E), np.stack(F), np.stack(EA)
        r = {"energy": float(E.mean()), "forces": F.mean(0), "energies": EA.mean(0)}
        r["free_energy"] = r["energy"]
        if periodic:
            s = np.stack(S).mean(0)
            r["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        if len(self.models) > 1:
            r["energy_std"] = float(E.std(ddof=1))
            r["forces_std"] = F.std(0, ddof=1)
            r["energies_std"] = EA.std(0, ddof=1)
            r["committee_energies"] = E
            if periodic:
                ss = np.stack(S).std(0, ddof=1)
                r["stress_std"] = np.array([ss[0, 0], ss[1, 1], ss[2, 2], ss[1, 2], ss[0, 2], ss[0, 1]])
        self.results = r


def _as_dtype(dtype: Optional[Union[str, torch.dtype]]) -> Optional[torch.dtype]:
    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype not in (None, torch.float32, torch.float64):
            raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return _DTYPES[dtype]
