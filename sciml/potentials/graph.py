"""ase.Atoms -> batched atomic graph (periodic neighbour list, cell shifts, labels).

The neighbour list comes from `vesin <https://github.com/Luthaf/vesin>`_ (a
cell-list O(N) implementation in C++ with mixed periodic boundary conditions).
It is about 10-50x faster than ``ase.neighborlist.primitive_neighbor_list`` on
the systems we run MD on (see ``workflows/benchmarks/potentials_speed.py``) and gives
exactly the same pairs. ``backend="auto"`` uses vesin (>= 0.4; an older or missing vesin is
an error naming the fix, never a silent switch) and ``backend="ase"`` uses ``ase.neighborlist``. Neighbour lists of training data are built once, when the data
set is converted to graphs, and reused every epoch.

Conventions: an edge ``(i, j, S)`` points from the centre atom ``i`` to its
neighbour ``j``; its vector is ``r_j - r_i + S @ cell`` (Å). Lists are "full"
(both ``i->j`` and ``j->i`` are present).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

try:  # pragma: no branch
    import vesin as _vesin_module
    from vesin import NeighborList as _VesinNeighborList

    HAVE_VESIN = True
    _VESIN_VERSION = tuple(int(x) for x in _vesin_module.__version__.split(".")[:2] if x.isdigit())
except ImportError:  # pragma: no cover - vesin is a declared dependency
    HAVE_VESIN = False
    _VESIN_VERSION = ()

#: vesin before 0.4 takes one bool for all axes and misses pairs along non-periodic axes.
_VESIN_MIN = (0, 4)

MIN_DISTANCE = 0.1  # Å: closer pairs are treated as overlapping atoms (an input error)


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: Sequence[bool],
    cutoff: float,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full neighbour list within ``cutoff`` (Å) with periodic images.

    Returns ``(i, j, S)``: centre indices, neighbour indices and integer cell shifts
    such that the edge vector is ``positions[j] - positions[i] + S @ cell``.

    Example
    -------
    >>> from ase.build import molecule
    >>> a = molecule("H2O")
    >>> i, j, S = neighbor_list(a.positions, a.cell.array, a.pbc, 5.0)
    >>> len(i)
    6
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    cell = np.asarray(cell, dtype=np.float64)
    if backend not in ("auto", "vesin", "ase"):
        raise ValueError(f"backend must be 'auto', 'vesin' or 'ase', got {backend!r}")
    if len(positions) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), np.zeros((0, 3), dtype=np.int64)
    if backend in ("auto", "vesin"):
        _check_vesin()
        box = cell.copy()
        if not pbc.all():
            # vesin needs a box even along non-periodic directions; give it a dummy one there
            for d in range(3):
                if not pbc[d] and not np.any(box[d]):
                    box[d, d] = 1.0
        i, j, S = _vesin(float(cutoff)).compute(
            positions, box, pbc.tolist(), quantities="ijS", copy=True
        )
        S = np.asarray(S, dtype=np.int64)
        S[:, ~pbc] = 0
        return np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), S
    from ase.neighborlist import primitive_neighbor_list

    i, j, S = primitive_neighbor_list("ijS", pbc, cell, positions, float(cutoff), self_interaction=False)
    return i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)


_VESIN_CACHE: dict = {}


def _check_vesin() -> None:
    """The vesin backend is used only when it is installed and correct; never a silent fallback."""
    if not HAVE_VESIN:
        raise ImportError("neighbour-list backend 'vesin' requested but vesin is not installed (pip install 'vesin>=0.4')")
    if _VESIN_VERSION < _VESIN_MIN:
        raise ImportError(
            f"vesin {'.'.join(map(str, _VESIN_VERSION))} is installed but sciml needs vesin >= 0.4 (older versions "
            "treat per-axis periodicity as one bool and miss pairs along non-periodic axes); "
            "pip install -U 'vesin>=0.4', or pass backend='ase'"
        )


def _vesin(cutoff: float):
    """One vesin NeighborList object per cutoff (constructing it costs more than a small search)."""
    nl = _VESIN_CACHE.get(cutoff)
    if nl is None:
        nl = _VESIN_CACHE[cutoff] = _VesinNeighborList(cutoff=cutoff, full_list=True)
    return nl


@dataclass
class AtomicGraph:
    """A batch of atomic structures as one disconnected graph (all tensors).

    Attributes
    ----------
    positions : (N, 3) Å
    species : (N,) index of each atom's element in the model's species list
    edge_index : (2, E) ``[centre i, neighbour j]``
    shifts : (E, 3) integer cell shifts (as floats)
    cell : (B, 3, 3) Å (zeros for non-periodic structures)
    batch : (N,) structure index of each atom
    n_atoms : (B,) atoms per structure
    pbc : (B, 3) bool
    energy, forces, stress, has_stress : optional labels (eV, eV/Å, eV/Å^3 as (B,3,3))
    """

    positions: torch.Tensor
    species: torch.Tensor
    edge_index: torch.Tensor
    shifts: torch.Tensor
    cell: torch.Tensor
    batch: torch.Tensor
    n_atoms: torch.Tensor
    pbc: torch.Tensor
    energy: Optional[torch.Tensor] = None
    forces: Optional[torch.Tensor] = None
    stress: Optional[torch.Tensor] = None
    has_stress: Optional[torch.Tensor] = None
    extra: dict = field(default_factory=dict)

    @property
    def num_graphs(self) -> int:
        return int(self.n_atoms.shape[0])

    def to(self, device=None, dtype=None) -> "AtomicGraph":
        """Move to ``device``; floating tensors are cast to ``dtype`` if given."""
        kw = {}
        for name in ("positions", "species", "edge_index", "shifts", "cell", "batch", "n_atoms", "pbc",
                     "energy", "forces", "stress", "has_stress"):
            t = getattr(self, name)
            if t is None:
                kw[name] = None
            elif t.is_floating_point():
                kw[name] = t.to(device=device, dtype=dtype or t.dtype)
            else:
                kw[name] = t.to(device=device)
        return AtomicGraph(**kw, extra=dict(self.extra))


def check_structure(atoms, index: int | str = 0, species: Optional[Sequence[int]] = None) -> None:
    """Raise ``ValueError`` naming the problem if ``atoms`` cannot be evaluated.

    Checks: empty structure, NaN/inf positions or cell, unknown elements (when
    ``species`` is given), two atoms closer than 0.1 Å (periodic images included).
    """
    n = len(atoms)
    if n == 0:
        raise ValueError(f"structure {index}: empty structure (0 atoms)")
    pos = np.asarray(atoms.positions, dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        bad = np.where(~np.isfinite(pos).all(axis=1))[0]
        raise ValueError(f"structure {index}: NaN/inf positions for atom(s) {bad[:10].tolist()}")
    if not np.all(np.isfinite(atoms.cell.array)):
        raise ValueError(f"structure {index}: NaN/inf in the cell")
    if species is not None:
        known = set(int(z) for z in species)
        unknown = sorted(set(int(z) for z in atoms.numbers) - known)
        if unknown:
            from ase.data import chemical_symbols

            raise ValueError(
                f"structure {index}: unknown element(s) {[chemical_symbols[z] for z in unknown]} for this model "
                f"(model species: {[chemical_symbols[z] for z in sorted(known)]})"
            )
    if atoms.pbc.any() and abs(atoms.cell.volume if atoms.pbc.all() else 1.0) < 1e-12:
        raise ValueError(f"structure {index}: periodic structure with a singular (zero-volume) cell")


def _check_overlap(i: np.ndarray, j: np.ndarray, vec: np.ndarray, index) -> None:
    if len(i) == 0:
        return
    d = np.linalg.norm(vec, axis=1)
    k = int(np.argmin(d))
    if d[k] < MIN_DISTANCE:
        raise ValueError(
            f"structure {index}: overlapping atoms {int(i[k])} and {int(j[k])} "
            f"(distance {d[k]:.3g} Å < {MIN_DISTANCE} Å)"
        )


def atoms_to_graph(
    atoms,
    cutoff: float,
    species: Sequence[int],
    labels: bool = False,
    index: int | str = 0,
    dtype: torch.dtype = torch.float64,
    nl_backend: str = "auto",
) -> AtomicGraph:
    """Convert one ``ase.Atoms`` to an :class:`AtomicGraph` (a batch of one).

    ``species`` is the model's ordered list of atomic numbers. With ``labels=True`` the
    energy/forces (and stress, if present) attached to ``atoms`` (e.g. by a
    SinglePointCalculator) are stored as training targets.

    Example
    -------
    >>> from ase.build import molecule
    >>> g = atoms_to_graph(molecule("H2O"), cutoff=4.0, species=[1, 8])
    >>> g.edge_index.shape
    torch.Size([2, 6])
    """
    check_structure(atoms, index, species)
    z2i = {int(z): k for k, z in enumerate(species)}
    pos = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    i, j, S = neighbor_list(pos, cell, pbc, cutoff, backend=nl_backend)
    _check_overlap(i, j, pos[j] - pos[i] + S @ cell, index)
    n = len(atoms)
    g = AtomicGraph(
        positions=torch.tensor(pos, dtype=dtype),
        species=torch.tensor([z2i[int(z)] for z in atoms.numbers], dtype=torch.long),
        edge_index=torch.from_numpy(np.stack([i, j])),
        shifts=torch.from_numpy(S.astype(np.float64)).to(dtype),
        cell=torch.tensor(cell, dtype=dtype).unsqueeze(0),
        batch=torch.zeros(n, dtype=torch.long),
        n_atoms=torch.tensor([n], dtype=torch.long),
        pbc=torch.tensor(pbc).unsqueeze(0),
    )
    if labels:
        e, f, s = structure_labels(atoms, index)
        g.energy = torch.tensor([e], dtype=dtype)
        g.forces = torch.tensor(f, dtype=dtype)
        if s is not None:
            g.stress = torch.tensor(s, dtype=dtype).unsqueeze(0)
            g.has_stress = torch.tensor([True])
        else:
            g.stress = torch.zeros((1, 3, 3), dtype=dtype)
            g.has_stress = torch.tensor([False])
    return g


def structure_labels(atoms, index: int | str = 0) -> tuple[float, np.ndarray, Optional[np.ndarray]]:
    """Energy (eV), forces ((n,3) eV/Å) and stress ((3,3) eV/Å^3 or None) attached to ``atoms``.

    Raises ``ValueError`` naming the structure when a label is missing, non-finite or
    has the wrong shape.
    """
    n = len(atoms)
    calc = atoms.calc
    results = getattr(calc, "results", None) or {}
    if "energy" in results:
        e = results["energy"]
    elif "energy" in atoms.info:
        e = atoms.info["energy"]
    else:
        raise ValueError(f"structure {index}: no energy label (attach one via a calculator or atoms.info['energy'])")
    if "forces" in results:
        f = results["forces"]
    elif "forces" in atoms.arrays:
        f = atoms.arrays["forces"]
    else:
        raise ValueError(f"structure {index}: no forces label")
    f = np.asarray(f, dtype=np.float64)
    if f.shape != (n, 3):
        raise ValueError(f"structure {index}: forces have shape {f.shape}, expected ({n}, 3)")
    e = float(np.asarray(e, dtype=np.float64))
    if not np.isfinite(e):
        raise ValueError(f"structure {index}: energy label is {e}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"structure {index}: NaN/inf in the forces label")
    s = results.get("stress", atoms.info.get("stress"))
    if s is not None:
        s = np.asarray(s, dtype=np.float64)
        if s.shape == (6,):
            xx, yy, zz, yz, xz, xy = s
            s = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        if s.shape != (3, 3):
            raise ValueError(f"structure {index}: stress has shape {s.shape}, expected (6,) or (3, 3)")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"structure {index}: NaN/inf in the stress label")
        if not atoms.pbc.all():
            s = None
    return e, f, s


def collate(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """Concatenate graphs into one batch (node indices offset, batch vector built)."""
    if len(graphs) == 1:
        return graphs[0]
    offsets = np.cumsum([0] + [int(g.positions.shape[0]) for g in graphs[:-1]])
    out = AtomicGraph(
        positions=torch.cat([g.positions for g in graphs]),
        species=torch.cat([g.species for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        shifts=torch.cat([g.shifts for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        batch=torch.cat([torch.full((int(g.positions.shape[0]),), b, dtype=torch.long) for b, g in enumerate(graphs)]),
        n_atoms=torch.cat([g.n_atoms for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
    )
    if all(g.energy is not None for g in graphs):
        out.energy = torch.cat([g.energy for g in graphs])
        out.forces = torch.cat([g.forces for g in graphs])
        out.stress = torch.cat([g.stress for g in graphs])
        out.has_stress = torch.cat([g.has_stress for g in graphs])
    return out


def frames_to_graphs(
    frames: Sequence, cutoff: float, species: Sequence[int], labels: bool = True, dtype=torch.float64
) -> list[AtomicGraph]:
    """Convert many labelled frames to graphs (neighbour lists computed once, here)."""
    return [atoms_to_graph(a, cutoff, species, labels=labels, index=k, dtype=dtype) for k, a in enumerate(frames)]
