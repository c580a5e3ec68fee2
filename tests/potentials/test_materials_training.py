"""Training for materials: several elements, cells of different sizes, periodic and molecular frames
in one batch, stress targets, least-squares element energies (bundled alloy subset, float64)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from sciml.metrics import EV_PER_A3_TO_GPA
from sciml.potentials import SciMLCalculator, TrainConfig, evaluate, fit_statistics, train_potential
from sciml.potentials.forces import compute_properties
from sciml.potentials.graph import atoms_to_graph, frames_to_graphs
from sciml.potentials.loss import batch_counts, batch_loss

from potentials_testlib import tiny_model


@pytest.fixture(scope="module")
def alloys():
    from sciml.datasets import load_alloys

    return load_alloys()


def _labelled(atoms, calc=None):
    a = atoms.copy()
    a.calc = calc or EMT()
    res = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
    if a.pbc.all():
        res["stress"] = a.get_stress()
    a.calc = SinglePointCalculator(a, **res)
    return a


def _cu_cluster(seed=0):
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    a.pbc = False
    a.cell = np.zeros((3, 3))
    a.positions += np.random.default_rng(seed).normal(scale=0.05, size=a.positions.shape)
    return _labelled(a)


def test_least_squares_element_energies_recover_known_truth(alloys):
    """Energies that are exactly a sum of per-element constants: E0 recovered, shift 0."""
    frames = alloys[::7]
    species = sorted({int(z) for a in frames for z in a.numbers})
    truth = dict(zip(species, np.linspace(-4.0, -1.0, len(species))))
    synth = []
    for a in frames:
        b = a.copy()
        b.calc = SinglePointCalculator(b, energy=float(sum(truth[int(z)] for z in a.numbers)), forces=a.get_forces())
        synth.append(b)
    m = tiny_model(species=species)
    stats = fit_statistics(m, frames_to_graphs(synth, m.cutoff, species))
    np.testing.assert_allclose(stats["atomic_energies"], [truth[z] for z in species], atol=1e-9)
    assert abs(stats["shift"]) < 1e-10


def test_mixed_batch_loss_equals_sum_of_its_parts(alloys):
    """Periodic alloy cells of different sizes (with stress) and a molecular cluster (no stress) in one batch:
    the batched loss equals the loss formula evaluated structure by structure."""
    frames = [alloys[0], _cu_cluster(), alloys[20], alloys[100]]  # slab, cluster, vacancy, bulk
    assert len({len(a) for a in frames}) == 4 and not frames[1].pbc.any()
    species = sorted({int(z) for a in frames for z in a.numbers})
    m = tiny_model(species=species, cutoff=4.5)
    graphs = frames_to_graphs(frames, m.cutoff, species)
    w = (3.0, 50.0, 700.0)
    loss = float(batch_loss(m, graphs, batch_counts(graphs), w, "cpu", torch.float64).detach())
    e_terms, f_sq, s_sq, n_f, n_s = [], 0.0, 0.0, 0, 0
    for a in frames:
        a2 = a.copy()
        a2.calc = SciMLCalculator(m)
        e_terms.append(((a2.get_potential_energy() - a.get_potential_energy()) / len(a)) ** 2)
        f_sq += float(((a2.get_forces() - a.get_forces()) ** 2).sum())
        n_f += 3 * len(a)
        if a.pbc.all():
            voigt_w = np.array([1, 1, 1, 2, 2, 2])  # a 3x3 sum counts each off-diagonal twice
            s_sq += float((voigt_w * (a2.get_stress() - a.get_stress()) ** 2).sum())
            n_s += 9
    expected = w[0] * np.mean(e_terms) + w[1] * f_sq / n_f + w[2] * s_sq / n_s
    assert loss == pytest.approx(expected, rel=1e-10)
    assert n_s == 27  # three periodic cells carry stress, the cluster none


def test_training_on_mixed_periodic_and_molecular_frames(alloys, tmp_path):
    """Alloy cells and Cu clusters share batches; stress metrics come from the periodic frames only."""
    clusters = [_cu_cluster(seed) for seed in range(4)]
    train = list(alloys[:40:4]) + clusters[:3]
    valid = list(alloys[150:160:3]) + clusters[3:]
    cfg = TrainConfig(model=dict(num_channels=8, cutoff=4.0, radial_hidden=8), batch_size=4, max_epochs=3,
                      stress_weight=1000.0, progress=False)
    res = train_potential(train, valid, tmp_path / "m.pt", cfg, resume=False)
    assert res.history[-1]["valid_loss"] < res.history[0]["valid_loss"]
    m = evaluate(res.model, valid)
    periodic = [a for a in valid if a.pbc.all()]
    calc = SciMLCalculator(res.model)
    ds = []
    for a in periodic:
        b = a.copy()
        b.calc = calc
        ds.append(b.get_stress() - a.get_stress())
    ds = np.array(ds)
    # 6 Voigt components with the off-diagonals counted twice = the 9 Cartesian components
    mae_gpa = EV_PER_A3_TO_GPA * (np.abs(ds[:, :3]).sum() + 2 * np.abs(ds[:, 3:]).sum()) / (9 * len(periodic))
    assert m["stress_mae_GPa"] == pytest.approx(mae_gpa, rel=1e-9)


@pytest.mark.parametrize("pbc", [False, (True, True, False)])
def test_stress_label_on_non_periodic_frame_is_an_error(alloys, tmp_path, pbc):
    bad = alloys[3].copy()
    bad.pbc = pbc
    bad.calc = SinglePointCalculator(bad, energy=alloys[3].get_potential_energy(), forces=alloys[3].get_forces(),
                                     stress=alloys[3].get_stress())
    train = list(alloys[:2]) + [bad]
    with pytest.raises(ValueError, match=r"train_frames\[2\]: stress label on a structure that is not periodic"):
        train_potential(train, alloys[100:102], tmp_path / "m.pt", TrainConfig(progress=False))
    with pytest.raises(ValueError, match=r"frames\[0\]: stress label"):
        evaluate(tiny_model(species=sorted(set(bad.numbers.tolist()))), [bad])


def test_isolated_molecule_without_stress_in_training_set(tmp_path):
    """A non-periodic frame without a stress label is fine next to periodic ones (no error, no stress term)."""
    mol = molecule("H2O")
    mol.calc = SinglePointCalculator(mol, energy=-1.0, forces=np.zeros((3, 3)))
    g = atoms_to_graph(mol, 4.0, [1, 8], labels=True)
    assert not bool(g.has_stress[0])
    out = compute_properties(tiny_model(species=(1, 8)), g, stress=True)
    assert float(out["stress"].abs().max()) == 0.0  # non-periodic: stress reported as zero, never trained on
