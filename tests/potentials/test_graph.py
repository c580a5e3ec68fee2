"""Neighbour lists and structure checks: clear errors for bad input, device-agnostic graph building."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from potentials_testlib import tiny_model

from sciml.potentials import SciMLCalculator
from sciml.potentials import calculator as calc_mod
from sciml.potentials.graph import device_neighbor_list, neighbor_list

ALLOY = (13, 28, 29, 46)


@pytest.fixture(scope="module")
def model():
    return tiny_model(species=ALLOY)


def _cell(seed=0):
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    a.numbers = rng.choice(ALLOY, size=len(a))
    a.positions += rng.normal(scale=0.1, size=a.positions.shape)
    return a


def _evaluate(model, atoms, **kw):
    atoms = atoms.copy()
    atoms.calc = SciMLCalculator(model, **kw)
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Atoms("AuCu", positions=[[0, 0, 0], [2.5, 0, 0]]), r"unknown element\(s\) \['Au'\]"),
        (lambda: Atoms("Cu2", positions=[[0, 0, 0], [2, 0, 0]], cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True),
         "zero volume"),
        (lambda: Atoms("Cu2", positions=[[0, 0, 0], [2, 0, 0]], cell=[[3, 0, 0], [0, 0, 0], [0, 0, 8]],
                       pbc=[True, True, False]), "zero volume along its periodic directions"),
        # 0.05 Å apart only through the periodic boundary (4.95 Å apart inside the box)
        (lambda: Atoms("Cu2", positions=[[0.0, 1, 1], [4.95, 1, 1]], cell=[5, 5, 5], pbc=True),
         r"overlapping atoms: atom 0 and atom 1 are 0.05 Å apart .*periodic images"),
        (lambda: Atoms("Cu", positions=[[0, 0, 0]], cell=[0.05, 5, 5], pbc=True), "its own periodic image"),
    ],
)
def test_bad_structures_name_the_cause(model, make, match):
    a = make()
    a.calc = SciMLCalculator(model)
    with pytest.raises(ValueError, match=match):
        a.get_potential_energy()


def test_left_handed_cell_is_the_same_lattice(model):
    a = _cell(1)
    b = a.copy()
    b.set_cell(-a.cell.array, scale_atoms=False)  # (-a, -b, -c) spans the same lattice; determinant < 0
    assert np.linalg.det(b.cell.array) < 0
    ea, fa, sa = _evaluate(model, a)
    eb, fb, sb = _evaluate(model, b)
    assert eb == pytest.approx(ea, rel=1e-12)
    np.testing.assert_allclose(fb, fa, atol=1e-12)
    np.testing.assert_allclose(sb, sa, atol=1e-13)


def test_neighbor_list_sorted_and_device_list_identical():
    a = _cell(2)
    a.set_cell(a.cell.array @ (np.eye(3) + 0.05 * np.random.default_rng(0).normal(size=(3, 3))), scale_atoms=True)
    i, j, S, d = neighbor_list(a.positions, a.cell.array, a.pbc, 4.5, distances=True)
    assert np.all(np.diff(i) >= 0)
    ia, ja, Sa = neighbor_list(a.positions, a.cell.array, a.pbc, 4.5, backend="ase")
    assert sorted(zip(i, j, map(tuple, S))) == sorted(zip(ia, ja, map(tuple, Sa)))
    np.testing.assert_allclose(d, np.linalg.norm(a.positions[j] - a.positions[i] + S @ a.cell.array, axis=1))
    ei, St, dt = device_neighbor_list(torch.tensor(a.positions), torch.tensor(a.cell.array), a.pbc, 4.5)
    assert ei.dtype == torch.long and St.dtype == torch.long
    np.testing.assert_array_equal(ei.numpy(), np.stack([i, j]))
    np.testing.assert_array_equal(St.numpy(), S)
    np.testing.assert_allclose(dt.numpy(), d)


def test_vesin_uses_torch_thread_count():
    from sciml.potentials.graph import _vesin

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert _vesin(4.5).n_threads == 1
    finally:
        torch.set_num_threads(old)


def test_device_argument_flows_through(model):
    """``device`` as a string or ``torch.device`` reaches the model, the graph and the neighbour list."""
    a = _cell(3)
    ref = _evaluate(model, a)
    for dev in ("cpu", torch.device("cpu")):
        c = SciMLCalculator(model, device=dev)
        assert next(c.models[0].parameters()).device == torch.device("cpu")
        g = c._graph(a)
        assert {t.device.type for t in (g.positions, g.species, g.edge_index, g.shifts, g.cell, g.batch)} == {"cpu"}
    # the route used on GPUs (neighbour list built from torch tensors on the model's device), run on the CPU
    c = SciMLCalculator(model)
    c.nl_on_device = True
    b = a.copy()
    b.calc = c
    np.testing.assert_allclose(b.get_forces(), ref[1], atol=1e-12)
    assert c.neighbor_list_device == "cpu" and b.get_potential_energy() == pytest.approx(ref[0], rel=1e-12)


def test_device_neighbor_list_failure_falls_back_visibly(model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no CUDA runtime library")

    monkeypatch.setattr(calc_mod, "device_neighbor_list", broken)
    a = _cell(4)
    c = SciMLCalculator(model)
    c.nl_on_device = True
    a.calc = c
    with pytest.warns(RuntimeWarning, match="no CUDA runtime library"):
        e = a.get_potential_energy()
    assert c.neighbor_list_device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert e == pytest.approx(_evaluate(model, a)[0], rel=1e-12)


def test_cuda_request_without_cuda_is_a_clear_error(model):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        SciMLCalculator(model, device="cuda")
