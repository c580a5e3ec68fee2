"""Two-body term of the local GP: rows vs autograd and finite differences; known-truth pair potential."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.atoms import attach_labels, frame_labels
from sciml.gp import LocalGPPotential
from sciml.gp.pair_term import PairTerm
from sciml.gp.soap import build_environments, pair_gradient_to_forces_stress
from sciml.gp.sparse_features import stress_rows

from local_testdata import triclinic_alloy

SPECIES = [28, 29, 79]


def test_pair_rows_are_sums_and_exact_derivatives_of_the_local_rows():
    pt = PairTerm(len(SPECIES), cutoff=4.0, r_min=1.4, spacing=0.3)
    frames = [triclinic_alloy(1), triclinic_alloy(2)]
    env = build_environments(frames, SPECIES, 4.0)
    theta = 0.45
    E, F, V = pt.rows(env, theta)
    d = env.d.clone().requires_grad_(True)
    L = pt.local_rows(env, d, theta)                                   # (n_atoms, m)
    E_ref = torch.zeros_like(E).index_add(0, env.frame, L)
    np.testing.assert_allclose(E.numpy(), E_ref.detach().numpy(), rtol=1e-12, atol=1e-14)
    for m in (0, 5, pt.n_columns // 2, pt.n_columns - 3):
        g, = torch.autograd.grad(E_ref[:, m].sum(), d, retain_graph=True)
        grad, vir = pair_gradient_to_forces_stress(env, g)
        np.testing.assert_allclose(F[:, :, m].numpy(), -grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(V[..., m].numpy(), vir.numpy(), atol=1e-12)
    # stress rows against finite differences of the energy rows under strain
    atoms = frames[0]
    S = stress_rows(V[:1], [atoms.get_volume()]).numpy()[0]
    h = 1e-5
    for v, (a, b) in ((0, (0, 0)), (3, (1, 2)), (5, (0, 1))):          # Voigt index, strain component
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a == b else h / 2
        ap, am = atoms.copy(), atoms.copy()
        ap.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        am.set_cell(atoms.cell.array @ (np.eye(3) - eps), scale_atoms=True)
        Ep = pt.rows(build_environments([ap], SPECIES, 4.0), theta, forces=False)[0].numpy()[0]
        Em = pt.rows(build_environments([am], SPECIES, 4.0), theta, forces=False)[0].numpy()[0]
        np.testing.assert_allclose(S[v], (Ep - Em) / (2 * h) / atoms.get_volume(), rtol=1e-5, atol=1e-9)
    # the kernel block of the grid is positive definite
    assert torch.linalg.eigvalsh(pt.kernel_uu(theta)).min() > -1e-12


# ---------------------------------------------------------------- known truth: a pair potential
_R0 = {(28, 28): 2.45, (29, 29): 2.55, (79, 79): 2.85, (28, 29): 2.50, (28, 79): 2.65, (29, 79): 2.70}
_DEPTH = {(28, 28): 0.45, (29, 29): 0.35, (79, 79): 0.40, (28, 29): 0.38, (28, 79): 0.30, (29, 79): 0.33}
_RC = 4.5


def _morse_labels(atoms):
    """Energy, forces, stress of a smooth species-dependent Morse pair potential (exact autograd)."""
    env = build_environments([atoms], SPECIES, _RC)
    d = env.d.clone().requires_grad_(True)
    r = torch.linalg.vector_norm(d, dim=1)
    zi, zj = env.numbers[env.centre.numpy()], env.numbers[env.neighbour.numpy()]
    key = [tuple(sorted((int(a), int(b)))) for a, b in zip(zi, zj)]
    r0 = torch.tensor([_R0[k] for k in key], dtype=r.dtype)
    D = torch.tensor([_DEPTH[k] for k in key], dtype=r.dtype)
    x = (r / _RC).clamp(max=1.0)
    e = D * (torch.exp(-2 * 1.6 * (r - r0)) - 2 * torch.exp(-1.6 * (r - r0))) * (1 - x * x) ** 3
    E = 0.5 * e.sum()
    g, = torch.autograd.grad(E, d)
    grad, vir = pair_gradient_to_forces_stress(env, g)
    s = 0.5 * (vir[0] + vir[0].T).numpy() / atoms.get_volume()
    stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    return attach_labels(atoms, energy=float(E), forces=-grad.numpy(), stress=stress)


def test_local_gp_learns_a_species_dependent_pair_potential():
    """Known truth: labels from a three-element Morse potential. The fitted GP must reproduce the forces
    of unseen frames to a few per cent of their mean size. The SOAP-only model of the first version
    (``pair_term=False``) fails this: 64 % of the mean |F| here (0.8 % with the pair term), 50-100 %
    on the seven-element EMT alloys."""
    train = [_morse_labels(triclinic_alloy(100 + k, rattle=0.15)) for k in range(8)]
    test = [_morse_labels(triclinic_alloy(200 + k, rattle=0.15)) for k in range(4)]
    gp = LocalGPPotential(cutoff=_RC, n_max=4, l_max=2, n_sparse=120, n_tune=4, n_sparse_tune=60,
                          progress=False, max_iter=60).fit(train)
    p = gp.predict(test)
    ref = np.concatenate([frame_labels(a)["forces"] for a in test])
    err = np.abs(np.concatenate(p.forces) - ref).mean() / np.abs(ref).mean()
    assert err < 0.03, err
    e_err = np.abs(p.energy - [frame_labels(a)["energy"] for a in test]) / [len(a) for a in test]
    assert e_err.max() < 5e-3
    # the training forces are reproduced to about the fitted noise
    pt = gp.predict(train)
    ref_t = np.concatenate([frame_labels(a)["forces"] for a in train])
    assert np.abs(np.concatenate(pt.forces) - ref_t).mean() < max(3 * gp.noise_["forces"], 0.02 * np.abs(ref_t).mean())
