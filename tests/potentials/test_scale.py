"""Block-wise (chunked) evaluation: same numbers as one pass; extensivity; isolated atoms; mixed batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from potentials_testlib import tiny_model

from sciml.potentials import SciMLCalculator
from sciml.potentials.chunked import blocks, chunked_properties, sort_edges
from sciml.potentials.forces import compute_properties
from sciml.potentials.graph import atoms_to_graph, collate

ALLOY = (13, 28, 29, 46)  # Al Ni Cu Pd


def _alloy_cell(seed=0, rep=(2, 2, 2), triclinic=True) -> Atoms:
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(rep)
    a.numbers = rng.choice(ALLOY, size=len(a))
    a.positions += rng.normal(scale=0.1, size=a.positions.shape)
    if triclinic:
        a.set_cell(a.cell.array @ (np.eye(3) + 0.04 * rng.normal(size=(3, 3))), scale_atoms=True)
    return a


def _max_abs(a, b) -> float:
    return float((a - b).detach().abs().max())


@pytest.mark.parametrize("kw", [dict(), dict(num_layers=3), dict(num_layers=3, lmax=1), dict(lmax=0),
                                dict(tensor_product="e3nn")])
@pytest.mark.parametrize("max_edges", [1, 37, 500, 10**9])
def test_chunked_equals_one_pass(kw, max_edges):
    m = tiny_model(species=ALLOY, **kw)
    g = atoms_to_graph(_alloy_cell(), m.cutoff, m.species)
    ref = compute_properties(m, g, stress=True)
    out = chunked_properties(m, g, stress=True, max_edges=max_edges)
    assert _max_abs(out["energy"], ref["energy"]) <= 1e-12 * float(ref["energy"].detach().abs().max())
    assert _max_abs(out["energies"], ref["energies"]) <= 1e-12
    assert _max_abs(out["forces"], ref["forces"]) <= 1e-12
    assert _max_abs(out["stress"], ref["stress"]) <= 1e-13
    assert float(ref["forces"].abs().max()) > 1e-3  # the comparison is not between zeros


def test_chunked_without_fused_paths_and_unsorted_edges():
    m = tiny_model(species=ALLOY)
    g = atoms_to_graph(_alloy_cell(seed=3), m.cutoff, m.species)
    ref = compute_properties(m, g, stress=True)
    perm = torch.randperm(g.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = atoms_to_graph(_alloy_cell(seed=3), m.cutoff, m.species)
    shuffled.edge_index, shuffled.shifts = g.edge_index[:, perm], g.shifts[perm]
    assert bool((sort_edges(shuffled).edge_index[0].diff() >= 0).all())
    m.fused = False
    out = chunked_properties(m, shuffled, stress=True, max_edges=64)
    assert _max_abs(out["forces"], ref["forces"]) <= 1e-12
    assert _max_abs(out["stress"], ref["stress"]) <= 1e-13


def test_mixed_batch_of_periodic_and_molecular_frames():
    """A batch mixing a periodic cell and a molecule: each structure as if evaluated alone."""
    m = tiny_model(species=(1, 6, 8, 13, 28, 29, 46))
    cell = _alloy_cell(seed=1)
    mol = molecule("CH3CH2OH")
    g1, g2 = (atoms_to_graph(a, m.cutoff, m.species) for a in (cell, mol))
    batch = collate([g1, g2])
    alone1 = compute_properties(m, g1, stress=True)
    alone2 = compute_properties(m, g2, stress=False)
    for out in (compute_properties(m, batch, stress=True), chunked_properties(m, batch, stress=True, max_edges=50)):
        n1 = len(cell)
        assert _max_abs(out["energy"], torch.cat([alone1["energy"], alone2["energy"]])) <= 1e-10
        assert _max_abs(out["forces"][:n1], alone1["forces"]) <= 1e-12
        assert _max_abs(out["forces"][n1:], alone2["forces"]) <= 1e-12
        assert _max_abs(out["stress"][0], alone1["stress"][0]) <= 1e-13
        assert float(out["stress"][1].abs().max()) == 0.0  # no stress for the molecule


def test_blocks_partition_atoms_and_edges():
    centre = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 2, 4, 4])
    bl = blocks(centre, 6, max_edges=3)
    assert bl[0][0] == 0 and bl[-1][1] == 6
    for (a, b, e0, e1), nxt in zip(bl, bl[1:] + [(6, None, 11, None)]):
        assert b == nxt[0] and e1 == nxt[2]
        assert e1 - e0 <= 3 or b - a == 1  # only a single atom may exceed the budget
        assert bool(((centre[e0:e1] >= a) & (centre[e0:e1] < b)).all())


def test_calculator_block_size_does_not_change_results():
    m = tiny_model(species=ALLOY)
    a = _alloy_cell(seed=2, rep=(2, 2, 3))
    res = []
    for max_edges in (None, 100, 5000):
        b = a.copy()
        b.calc = SciMLCalculator(m, max_edges=max_edges)
        res.append((b.get_potential_energy(), b.get_forces(), b.get_stress(), b.get_potential_energies()))
    for e, f, s, ea in res[1:]:
        assert e == pytest.approx(res[0][0], rel=1e-12)
        np.testing.assert_allclose(f, res[0][1], atol=1e-12)
        np.testing.assert_allclose(s, res[0][2], atol=1e-13)
        np.testing.assert_allclose(ea, res[0][3], atol=1e-12)
    with pytest.raises(ValueError, match="max_edges"):
        SciMLCalculator(m, max_edges=0)


@pytest.mark.parametrize("rep", [(2, 1, 1), (2, 2, 3)])
def test_multi_element_supercell_is_extensive(rep):
    """n x supercell of a 4-element triclinic cell: n x energy, the same forces, stress and per-atom energies."""
    m = tiny_model(species=ALLOY)
    a = _alloy_cell(seed=4, rep=(1, 1, 2))
    calc = SciMLCalculator(m, max_edges=200)  # the supercell goes through the block-wise path
    a.calc = calc
    e1, f1, s1, ea1 = a.get_potential_energy(), a.get_forces(), a.get_stress(), a.get_potential_energies()
    sup = a.repeat(rep)
    sup.calc = calc
    n = int(np.prod(rep))
    assert sup.get_potential_energy() == pytest.approx(n * e1, rel=1e-12)
    np.testing.assert_allclose(sup.get_forces(), np.tile(f1, (n, 1)), atol=1e-11)
    np.testing.assert_allclose(sup.get_stress(), s1, atol=1e-12)
    np.testing.assert_allclose(sup.get_potential_energies(), np.tile(ea1, n), atol=1e-11)


def test_isolated_atom_is_valid_and_has_its_reference_energy():
    """No neighbour inside the cutoff: zero force, and the local energy is the element's isolated-atom energy,
    the limit reached smoothly as a neighbour leaves the cutoff."""
    m = tiny_model(species=ALLOY)
    iso = {}
    for z in ALLOY:
        a = Atoms(numbers=[z], positions=[[0, 0, 0]])
        a.calc = SciMLCalculator(m)
        iso[z] = a.get_potential_energy()
        assert np.all(a.get_forces() == 0.0)
    # an Al atom 9 Å away from a Cu-Ni pair (cutoff 4 Å), in a periodic box too large for images
    a = Atoms("AlCuNi", positions=[[0, 0, 0], [9, 0, 0], [11.2, 0, 0]], cell=[30, 30, 30], pbc=True)
    a.calc = SciMLCalculator(m, max_edges=1)
    ea = a.get_potential_energies()
    assert ea[0] == pytest.approx(iso[13], abs=1e-12)
    np.testing.assert_array_equal(a.get_forces()[0], 0.0)
    assert abs(ea[1] - iso[29]) > 1e-6  # the bonded atoms are not at their reference energy
    # moving the Ni atom out of the Cu atom's cutoff: energies approach the isolated values continuously
    for d in (3.99, 3.9999, 4.0001):
        b = Atoms("CuNi", positions=[[0, 0, 0], [d, 0, 0]])
        b.calc = SciMLCalculator(m)
        gap = abs(b.get_potential_energy() - iso[29] - iso[28])
        assert gap < (1e-3 if d < 3.9999 else 1e-9 if d < 4.0 else 1e-15), (d, gap)
