"""Neighbour lists: vesin agrees with ASE for molecules, mixed-periodic and periodic cells; no silent fallback."""
import numpy as np
import pytest
from ase.build import bulk, fcc111, molecule

import sciml.potentials.graph as graph
from sciml.potentials.graph import neighbor_list


def _pairs(nl):
    return sorted(zip(nl[0].tolist(), nl[1].tolist(), map(tuple, nl[2].tolist())))


def _cases():
    m = molecule("CH3CH2OH")
    m.positions -= m.positions.mean(0) + 3.0                    # negative coordinates, no cell
    yield "molecule", m.positions, np.zeros((3, 3)), [False, False, False], 4.0
    s = fcc111("Cu", (3, 3, 4), vacuum=5.0)
    s.positions[:, 2] -= 12.0                                    # slab below the origin along its open axis
    yield "slab", s.positions, s.cell.array, [True, True, False], 5.0
    w = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 1, 1))
    w.positions[:, 1:] -= 5.0                                    # wire: periodic along x only, no box along y, z
    cell = w.cell.array.copy()
    cell[1:] = 0.0
    yield "wire", w.positions, cell, [True, False, False], 4.0
    b = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    b.rattle(0.1, seed=1)
    yield "bulk", b.positions, b.cell.array, [True, True, True], 5.0
    t = bulk("CuAu", "rocksalt", a=5.2).repeat((2, 2, 2))     # triclinic (fcc primitive) cell, two species
    t.rattle(0.05, seed=2)
    yield "triclinic", t.positions, t.cell.array, [True, True, True], 6.0


@pytest.mark.parametrize("name,pos,cell,pbc,rc", list(_cases()), ids=[c[0] for c in _cases()])
def test_vesin_gives_exactly_the_ase_pairs(name, pos, cell, pbc, rc):
    ref = neighbor_list(pos, cell, pbc, rc, backend="ase")
    got = neighbor_list(pos, cell, pbc, rc, backend="vesin")
    assert len(ref[0]) > 0
    assert _pairs(got) == _pairs(ref)
    d = np.linalg.norm(pos[got[1]] - pos[got[0]] + got[2] @ cell, axis=1)
    assert d.max() < rc and d.min() > 0.5                      # genuine neighbours, no spurious images
    assert _pairs(neighbor_list(pos, cell, pbc, rc)) == _pairs(ref)   # "auto" is vesin


def test_requested_backend_never_falls_back(monkeypatch):
    pos, cell, pbc = np.zeros((2, 3)), np.zeros((3, 3)), [False] * 3
    pos[1, 0] = 1.0
    monkeypatch.setattr(graph, "HAVE_VESIN", False)
    with pytest.raises(ImportError, match="backend 'vesin' requested but vesin is not installed"):
        neighbor_list(pos, cell, pbc, 2.0, backend="vesin")
    with pytest.raises(ImportError, match="vesin is not installed"):
        neighbor_list(pos, cell, pbc, 2.0)
    assert len(neighbor_list(pos, cell, pbc, 2.0, backend="ase")[0]) == 2
    monkeypatch.setattr(graph, "HAVE_VESIN", True)
    monkeypatch.setattr(graph, "_VESIN_VERSION", (0, 3))
    with pytest.raises(ImportError, match="vesin 0.3 is installed but sciml needs vesin >= 0.4"):
        neighbor_list(pos, cell, pbc, 2.0)
    with pytest.raises(ValueError, match="backend must be"):
        neighbor_list(pos, cell, pbc, 2.0, backend="fast")


def test_installed_vesin_meets_the_declared_floor():
    from importlib.metadata import requires

    floor = [r for r in requires("sciml") if r.startswith("vesin")]
    assert floor == ["vesin>=0.4"]
    assert graph._VESIN_VERSION >= graph._VESIN_MIN
