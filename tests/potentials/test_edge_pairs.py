"""Radial weights once per pair of reverse edges (edge_pairs): correct pairing and unchanged numbers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from sciml.potentials import atoms_to_graph, compute_properties
from sciml.potentials.edge_pairs import edge_pairs
from sciml.potentials.graph import collate
from sciml.potentials.loss import batch_loss

from potentials_testlib import random_labelled_graph, tiny_model


def _small_cell():
    """2 atoms in a cell smaller than the cutoff: every atom sees several images of itself and of the other."""
    a = Atoms("CuAu", scaled_positions=[[0, 0, 0], [0.5, 0.4, 0.6]], cell=[[2.6, 0, 0], [0.8, 2.5, 0], [0.3, 0.5, 2.7]],
              pbc=True)
    a.positions += np.random.default_rng(0).normal(scale=0.05, size=a.positions.shape)
    return a


def _alloy(seed=0, reps=(2, 1, 1)):
    rng = np.random.default_rng(seed)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(reps)
    a.numbers = rng.choice([29, 46, 79], size=len(a))
    a.positions += rng.normal(scale=0.1, size=a.positions.shape)
    return a


@pytest.mark.parametrize("make", [_small_cell, _alloy])
def test_edge_pairs_pair_each_edge_with_its_reverse(make):
    g = atoms_to_graph(make(), 4.5, [29, 46, 79])
    ei, S = g.edge_index, g.shifts
    rep, pair = edge_pairs(ei, S)
    E = ei.shape[1]
    assert rep.shape[0] * 2 == E  # a full list: every pair twice
    assert torch.bincount(pair).eq(2).all()
    r = ei[:, rep[pair]]  # the representative of every edge's pair
    same = (r[0] == ei[0]) & (r[1] == ei[1]) & (S[rep[pair]] == S).all(1)
    rev = (r[0] == ei[1]) & (r[1] == ei[0]) & (S[rep[pair]] == -S).all(1)
    assert (same | rev).all() and same.sum() == rep.shape[0]


def test_edge_pairs_without_reverse_edges():
    ei = torch.tensor([[0, 1, 2], [1, 2, 0]])  # a directed cycle: no edge has its reverse
    rep, pair = edge_pairs(ei, torch.zeros((3, 3)))
    assert sorted(rep[pair].tolist()) == [0, 1, 2]


@pytest.mark.parametrize("make", [_small_cell, _alloy])
def test_pair_radial_gives_the_per_edge_numbers(make):
    m = tiny_model(species=(29, 46, 79), cutoff=4.5)
    g = collate([atoms_to_graph(make(), m.cutoff, m.species), atoms_to_graph(_alloy(1), m.cutoff, m.species)])
    res = []
    for flag in (True, False):
        m.pair_radial = flag
        out = compute_properties(m, g, stress=True)
        res.append({k: out[k].detach() for k in ("energy", "forces", "stress")})
    m.pair_radial = True
    assert res[1]["forces"].abs().max() > 1e-3
    for k in res[0]:
        torch.testing.assert_close(res[0][k], res[1][k], rtol=1e-12, atol=1e-12)


def test_pair_radial_training_gradients_unchanged():
    m = tiny_model(species=(29, 46, 79), cutoff=4.5)
    rng = np.random.default_rng(5)
    graphs = []
    for k in range(2):
        a = _alloy(k + 2)
        graphs.append(random_labelled_graph(a, m, rng))
    counts = (2, sum(3 * int(g.n_atoms[0]) for g in graphs), 18)
    m.train()
    grads = []
    for flag in (True, False):
        m.pair_radial = flag
        m.zero_grad()
        batch_loss(m, graphs, counts, (1.0, 100.0, 10.0), "cpu", torch.float64).backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    m.pair_radial = True
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
