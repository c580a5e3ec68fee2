"""SOAP power spectrum and the sparse design rows: independent reference, invariance, exact derivatives."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import eval_legendre

from sciml.gp.soap import SOAPDescriptor, build_environments, pair_gradient_to_forces_stress
from sciml.gp.sparse_features import assemble_rows, kernel0, prepare_batch, raw_rows, stress_rows

from local_testdata import triclinic_alloy

SPECIES = [28, 29, 79]


def _brute_power_spectrum(desc: SOAPDescriptor, atoms, i: int) -> np.ndarray:
    """Addition-theorem form: sum_{j,k} W W g_n g_n' P_l(cos theta_jik), from ASE's neighbour list."""
    from ase.neighborlist import neighbor_list

    I, J, D = neighbor_list("ijD", atoms, desc.cutoff)
    sel = I == i
    D, J = D[sel], J[sel]
    r = np.linalg.norm(D, axis=1)
    g = desc.radial(torch.as_tensor(r)).numpy()                                      # (p, N)
    W = desc.W.numpy()[[SPECIES.index(int(z)) for z in atoms.numbers[J]]]             # (p, C)
    a = (W[:, :, None] * g[:, None, :]).reshape(len(r), -1)                          # (p, K)
    cos = np.clip((D @ D.T) / np.outer(r, r), -1, 1)
    K = a.shape[1]
    iu = np.triu_indices(K)
    out = []
    for l in range(desc.l_max + 1):
        full = a.T @ eval_legendre(l, cos) @ a
        w = np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))
        out.append(full[iu] * w)
    return np.concatenate(out)


@pytest.mark.parametrize("channels", [None, 2])
def test_power_spectrum_matches_addition_theorem(channels):
    atoms = triclinic_alloy(1)
    desc = SOAPDescriptor(SPECIES, cutoff=4.0, n_max=3, l_max=3, species_channels=channels)
    env = build_environments([atoms], desc.species, desc.cutoff)
    p = desc.power_spectrum(env.d, env).numpy()
    for i in (0, 3, 5):
        np.testing.assert_allclose(p[i], _brute_power_spectrum(desc, atoms, i), rtol=1e-7, atol=1e-10)  # e3nn tabulates its constants to ~1e-8


def test_descriptor_rotation_and_permutation_invariant():
    from scipy.spatial.transform import Rotation

    atoms = triclinic_alloy(2)
    desc = SOAPDescriptor(SPECIES, cutoff=4.0, n_max=3, l_max=4)
    env = build_environments([atoms], desc.species, desc.cutoff)
    x = desc.normalised(env.d, env).numpy()
    R = Rotation.random(random_state=3).as_matrix()
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ R.T)
    rot.positions = atoms.positions @ R.T
    env_r = build_environments([rot], desc.species, desc.cutoff)
    np.testing.assert_allclose(desc.normalised(env_r.d, env_r).numpy(), x, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(atoms))
    env_p = build_environments([atoms[perm]], desc.species, desc.cutoff)
    np.testing.assert_allclose(desc.normalised(env_p.d, env_p).numpy(), x[perm], atol=1e-10)


def _frames():
    a = triclinic_alloy(3)
    b = triclinic_alloy(4)
    return [a, b]


@pytest.mark.parametrize("weighted,zeta,normalise", [(False, None, True), (True, None, True), (False, 2, True),
                                                     (False, 3, True), (True, None, False), (False, None, False)])
def test_design_rows_match_reverse_mode_autograd(weighted, zeta, normalise):
    desc = SOAPDescriptor(SPECIES, cutoff=4.0, n_max=3, l_max=3, normalise=normalise)
    w = torch.as_tensor(np.random.default_rng(5).uniform(0.1, 3.0, desc.size)) if weighted else None
    if not normalise:                       # raw power spectra: unit-scale weights so that k0 is not ~0
        x0 = desc.features(build_environments(_frames(), desc.species, desc.cutoff).d,
                           build_environments(_frames(), desc.species, desc.cutoff))
        w = (1.0 if w is None else w) / (desc.size * x0.var(0).clamp(min=1e-12))
    frames = _frames()
    env = build_environments(frames, desc.species, desc.cutoff)
    batch = prepare_batch(desc, env)
    idx = torch.tensor([0, 1, 2, 4, 6, 7])
    U, Us = batch.x[idx], env.species[idx]
    ell = 0.3 if normalise else 1.0
    E, F, V = assemble_rows(raw_rows(desc, batch, U, Us, weights=w, max_block=2000), ell, zeta=zeta)  # chunked
    d = env.d.clone().requires_grad_(True)
    k = kernel0(desc.features(d, env), env.species, U, Us, ell, w, zeta)
    if not normalise:
        np.testing.assert_allclose(batch.x.numpy(), desc.power_spectrum(env.d, env).numpy(), rtol=1e-12)
        assert int(((k > 1e-3) & (k < 0.999)).sum()) >= 5     # rows that depend on the geometry
    E_ref = torch.zeros(env.n_frames, len(U), dtype=k.dtype).index_add(0, env.frame, k)
    np.testing.assert_allclose(E.numpy(), E_ref.detach().numpy(), rtol=1e-12)
    for m in range(len(U)):
        g, = torch.autograd.grad(E_ref[:, m].sum(), d, retain_graph=True)
        grad, vir = pair_gradient_to_forces_stress(env, g)
        np.testing.assert_allclose(F[:, :, m].numpy(), -grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(V[..., m].numpy(), vir.numpy(), atol=1e-12)


def _energy_rows(desc, frames, U, Us, ell):
    env = build_environments(frames, desc.species, desc.cutoff)
    x = desc.normalised(env.d, env)
    k = kernel0(x, env.species, U, Us, ell)
    return torch.zeros(env.n_frames, len(U), dtype=k.dtype).index_add(0, env.frame, k).numpy()


def test_design_rows_forces_and_stress_vs_finite_differences():
    desc = SOAPDescriptor(SPECIES, cutoff=4.0, n_max=3, l_max=3)
    atoms = triclinic_alloy(5)
    env = build_environments([atoms], desc.species, desc.cutoff)
    batch = prepare_batch(desc, env)
    idx = torch.tensor([0, 2, 5])
    U, Us = batch.x[idx], env.species[idx]
    ell = 0.4
    _, F, V = assemble_rows(raw_rows(desc, batch, U, Us), ell)
    S = stress_rows(V, [atoms.get_volume()]).numpy()[0]                # (6, m)
    h = 1e-5
    for atom, comp in ((0, 0), (3, 2), (5, 1)):
        ap, am = atoms.copy(), atoms.copy()
        ap.positions[atom, comp] += h
        am.positions[atom, comp] -= h
        fd = -(_energy_rows(desc, [ap], U, Us, ell) - _energy_rows(desc, [am], U, Us, ell))[0] / (2 * h)
        np.testing.assert_allclose(F[atom, comp].numpy(), fd, rtol=1e-6, atol=1e-8)
    for v, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a == b else h / 2
        ap, am = atoms.copy(), atoms.copy()
        ap.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        am.set_cell(atoms.cell.array @ (np.eye(3) - eps), scale_atoms=True)
        fd = (_energy_rows(desc, [ap], U, Us, ell) - _energy_rows(desc, [am], U, Us, ell))[0] / (2 * h)
        fd = fd / atoms.get_volume()
        np.testing.assert_allclose(S[v], fd, rtol=1e-5, atol=1e-9)


def test_isolated_atom_has_zero_descriptor_without_nan():
    from ase import Atoms

    desc = SOAPDescriptor([29], cutoff=3.0, n_max=2, l_max=1)
    env = build_environments([Atoms("Cu2", positions=[[0, 0, 0], [10, 0, 0]])], desc.species, desc.cutoff)
    x = desc.normalised(env.d, env)
    assert torch.isfinite(x).all() and float(x.abs().max()) == 0.0
