"""ASE calculator for sciml potentials (single model or committee with uncertainty)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .forces import compute_properties
from .graph import AtomicGraph, _check_overlap, check_structure, neighbor_list
from .model import EquivariantPotential, load_model

ModelLike = Union[str, Path, EquivariantPotential]


class SciMLCalculator(Calculator):
    """ASE calculator backed by one or several (committee) :class:`EquivariantPotential` models.

    Parameters
    ----------
    model : a model file path, a model object, or a list of them (a committee). With several
        models ``results`` hold the committee mean plus ``energy_std`` (eV), ``forces_std``
        ((N,3) eV/Å) and, for periodic cells, ``stress_std``.
    device : "cpu", "cuda" or None (CUDA when available).
    dtype : "float64" / "float32" / None (as stored in the file; objects are used as given).

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
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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
                    from .._runtime import resolve_device
                    from .model import _DTYPES

                    if isinstance(dtype, str) and dtype not in _DTYPES:
                        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
                    m = m.to(device=resolve_device(device) if device else None,
                             dtype=_DTYPES[dtype] if isinstance(dtype, str) else dtype)
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
        self._z2i = np.full(max(self.species) + 1, -1, dtype=np.int64)
        self._z2i[self.species] = np.arange(len(self.species))

    def _graph(self, atoms) -> AtomicGraph:
        check_structure(atoms, "atoms", self.species)
        pos = np.asarray(atoms.positions, dtype=np.float64)
        cell = np.asarray(atoms.cell.array, dtype=np.float64)
        pbc = np.asarray(atoms.pbc, dtype=bool)
        i, j, S = neighbor_list(pos, cell, pbc, self.cutoff)
        _check_overlap(i, j, pos[j] - pos[i] + S @ cell, "atoms")
        dev, dt = self._device, self._dtype
        n = len(atoms)
        return AtomicGraph(
            positions=torch.as_tensor(pos, dtype=dt, device=dev),
            species=torch.as_tensor(self._z2i[atoms.numbers], device=dev),
            edge_index=torch.as_tensor(np.stack([i, j]), device=dev),
            shifts=torch.as_tensor(S, dtype=dt, device=dev),
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
            out = compute_properties(m, g, forces=True, stress=periodic)
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
