"""Symmetry, derivatives and smoothness of the equivariant potential (float64, exact checks)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from sciml.potentials import SciMLCalculator, atoms_to_graph, compute_properties, hessian, vibrational_frequencies
from sciml.potentials.graph import neighbor_list

from potentials_testlib import random_rotation, tiny_model


def _ef(model, atoms, stress=False):
    g = atoms_to_graph(atoms, model.cutoff, model.species)
    out = compute_properties(model, g, stress=stress)
    res = {"energy": float(out["energy"][0].detach()), "forces": out["forces"].detach().numpy()}
    if stress:
        res["stress"] = out["stress"][0].detach().numpy()
    return res


def _ethanol():
    a = molecule("CH3CH2OH")
    a.positions += np.random.default_rng(0).normal(scale=0.1, size=a.positions.shape)
    return a


def _cu(displace=0.08):
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    a.positions += np.random.default_rng(1).normal(scale=displace, size=a.positions.shape)
    return a


def test_energy_invariance_molecule(mol_model):
    a = _ethanol()
    ref = _ef(mol_model, a)
    assert abs(ref["energy"]) > 0.1
    R = random_rotation(3)
    cases = {}
    b = a.copy(); b.positions = a.positions @ R.T; cases["rotation"] = b
    b = a.copy(); b.positions = a.positions * np.array([-1.0, 1.0, 1.0]); cases["reflection"] = b
    b = a.copy(); b.positions = a.positions + np.array([3.3, -7.1, 0.4]); cases["translation"] = b
    # permute same-element atoms: all H among themselves, both C
    perm = np.arange(len(a))
    h = np.where(a.numbers == 1)[0]
    c = np.where(a.numbers == 6)[0]
    perm[h] = h[::-1]
    perm[c] = c[::-1]
    cases["permutation"] = a[perm]
    for name, b in cases.items():
        e = _ef(mol_model, b)["energy"]
        assert abs(e - ref["energy"]) <= 1e-10 * abs(ref["energy"]), name


def test_energy_invariance_periodic(cu_model):
    a = _cu()
    ref = _ef(cu_model, a)["energy"]
    R = random_rotation(5)
    b = a.copy()
    b.set_cell(a.cell.array @ R.T, scale_atoms=False)
    b.positions = a.positions @ R.T
    assert abs(_ef(cu_model, b)["energy"] - ref) <= 1e-10 * abs(ref)
    b = a.copy()
    b.positions = a.positions + np.array([0.7, 1.9, -2.3])  # translation through the cell walls
    b.wrap()
    assert abs(_ef(cu_model, b)["energy"] - ref) <= 1e-10 * abs(ref)
    b = a.copy()
    b.set_cell(-a.cell.array, scale_atoms=False)
    b.positions = -a.positions  # inversion
    assert abs(_ef(cu_model, b)["energy"] - ref) <= 1e-10 * abs(ref)


def test_forces_rotate_with_structure(mol_model):
    a = _ethanol()
    R = random_rotation(11)
    b = a.copy()
    b.positions = a.positions @ R.T
    fa, fb = _ef(mol_model, a)["forces"], _ef(mol_model, b)["forces"]
    assert np.abs(fa).max() > 1e-3
    np.testing.assert_allclose(fb, fa @ R.T, atol=1e-11 * np.abs(fa).max())


def test_forces_match_central_finite_differences(mol_model):
    a = _ethanol()
    F = _ef(mol_model, a)["forces"]
    h = 1e-4
    for i in range(len(a)):
        for k in range(3):
            ap, am = a.copy(), a.copy()
            ap.positions[i, k] += h
            am.positions[i, k] -= h
            fd = -(_ef(mol_model, ap)["energy"] - _ef(mol_model, am)["energy"]) / (2 * h)
            assert abs(fd - F[i, k]) < 1e-7 + 1e-6 * abs(F[i, k]), (i, k, fd, F[i, k])


def test_stress_matches_finite_difference_strain(cu_model):
    a = _cu()
    S = _ef(cu_model, a, stress=True)["stress"]
    assert np.abs(S).max() > 1e-4
    V = a.get_volume()
    h = 1e-5
    for (p, q) in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]:
        eps = np.zeros((3, 3))
        eps[p, q] = eps[q, p] = h if p != q else h
        es = []
        for sgn in (1, -1):
            b = a.copy()
            b.set_cell(a.cell.array @ (np.eye(3) + sgn * eps), scale_atoms=True)
            es.append(_ef(cu_model, b)["energy"])
        dEde = (es[0] - es[1]) / (2 * h)
        if p != q:
            dEde /= 2.0  # symmetric strain moves two components
        assert abs(dEde / V - S[p, q]) < 1e-8 + 1e-6 * abs(S[p, q]), (p, q, dEde / V, S[p, q])
    # ASE calculator returns the same stress in Voigt order
    a.calc = SciMLCalculator(cu_model)
    voigt = a.get_stress()
    np.testing.assert_allclose(voigt, [S[0, 0], S[1, 1], S[2, 2], S[1, 2], S[0, 2], S[0, 1]], atol=1e-14)


def test_stress_sign_convention_compression(cu_model):
    """ASE convention: sigma = (1/V) dE/d(eps); check against the energy slope along isotropic strain."""
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    s = _ef(cu_model, a, stress=True)["stress"]
    b = a.copy()
    b.set_cell(a.cell.array * 1.001, scale_atoms=True)
    dE = _ef(cu_model, b)["energy"] - _ef(cu_model, a)["energy"]
    # dE ~ V * trace(sigma) * 0.001 for a small isotropic expansion
    assert np.sign(dE) == np.sign(np.trace(s))
    assert abs(dE - a.get_volume() * np.trace(s) * 1e-3) < 0.01 * abs(dE)


def test_periodic_supercell_is_extensive(cu_model):
    prim = bulk("Cu", "fcc", a=3.61)  # 1 atom, cell far smaller than the cutoff
    e1 = _ef(cu_model, prim)["energy"]
    for rep in [(2, 2, 2), (3, 1, 2)]:
        sup = prim.repeat(rep)
        n = int(np.prod(rep))
        en = _ef(cu_model, sup)["energy"]
        assert abs(en - n * e1) <= 1e-10 * abs(n * e1), rep


def test_energy_smooth_as_atom_crosses_cutoff(mol_model):
    rc = mol_model.cutoff
    def trimer(d):
        return Atoms("OHC", positions=[[0, 0, 0], [0.97, 0, 0], [0.0, d, 0.0]])
    e_far = _ef(mol_model, trimer(rc + 0.5))["energy"]
    for delta in (1e-2, 1e-3):
        ein, eout = _ef(mol_model, trimer(rc - delta)), _ef(mol_model, trimer(rc + delta))
        assert abs(ein["energy"] - eout["energy"]) < 1e-8
        assert np.abs(ein["forces"] - eout["forces"]).max() < 1e-6
        assert eout["energy"] == pytest.approx(e_far, abs=1e-12)  # beyond the cutoff: no interaction
    # a scan through the cutoff has no jumps: the largest step is like the steps inside
    d = np.linspace(rc - 0.6, rc + 0.2, 81)
    e = np.array([_ef(mol_model, trimer(x))["energy"] for x in d])
    steps = np.abs(np.diff(e))
    i_rc = np.searchsorted(d, rc)
    assert steps[i_rc - 2 : i_rc + 2].max() <= steps[: i_rc - 20].max()


def test_neighbor_list_vesin_matches_ase():
    a = _cu(0.1).repeat((1, 2, 1))
    nl1 = neighbor_list(a.positions, a.cell.array, a.pbc, 4.5, backend="vesin")
    nl2 = neighbor_list(a.positions, a.cell.array, a.pbc, 4.5, backend="ase")
    key = lambda nl: sorted(zip(nl[0].tolist(), nl[1].tolist(), map(tuple, nl[2].tolist())))  # noqa: E731
    assert key(nl1) == key(nl2)
    assert len(nl1[0]) > 100


def test_hessian_matches_finite_difference_and_frequencies(mol_model):
    a = molecule("H2O")
    H = hessian(mol_model, a)
    assert H.shape == (9, 9)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    h = 1e-4
    for col in (0, 4, 8):
        i, k = divmod(col, 3)
        ap, am = a.copy(), a.copy()
        ap.positions[i, k] += h
        am.positions[i, k] -= h
        fd = -(_ef(mol_model, ap)["forces"] - _ef(mol_model, am)["forces"]).reshape(-1) / (2 * h)
        np.testing.assert_allclose(H[:, col], fd, atol=1e-6)
    freqs = vibrational_frequencies(mol_model, a)
    assert freqs.shape == (3,)  # 3N - 6 for a bent triatomic
    allf = vibrational_frequencies(mol_model, a, project=False)
    assert allf.shape == (9,)


def test_float32_option_close_to_float64():
    m64 = tiny_model(seed=4)
    a = _ethanol()
    calc64 = SciMLCalculator(m64)
    calc32 = SciMLCalculator(tiny_model(seed=4), dtype="float32")
    a.calc = calc64
    e64, f64 = a.get_potential_energy(), a.get_forces()
    a.calc = calc32
    e32, f32 = a.get_potential_energy(), a.get_forces()
    assert next(calc32.models[0].parameters()).dtype == torch.float32
    assert abs(e32 - e64) < 1e-4 * max(1.0, abs(e64))
    np.testing.assert_allclose(f32, f64, atol=1e-4)


def test_channelwise_tensor_product_is_equivariant():
    """The custom uvu tensor product commutes with rotations and inversion, all paths incl. l1, l3 > 0."""
    from e3nn import o3

    from sciml.potentials.tensor_product import ChannelwiseTensorProduct

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds Wigner D matrices in the default dtype
    try:
        irr_in = o3.Irreps("3x0e+3x1o+3x2e")
        sh_irr = o3.Irreps.spherical_harmonics(2)
        tp = ChannelwiseTensorProduct(irr_in, sh_irr, {o3.Irrep("0e"), o3.Irrep("1o"), o3.Irrep("2e")})
        tp = tp.double()
        torch.manual_seed(0)
        x = irr_in.randn(5, -1, dtype=torch.float64)
        vec = torch.randn(5, 3, dtype=torch.float64)
        w = torch.randn(5, tp.weight_numel, dtype=torch.float64)
        Y = lambda v: o3.spherical_harmonics(sh_irr, v, True, normalization="component")  # noqa: E731
        out = tp(x, Y(vec), w)
        for R in (o3.rand_matrix(dtype=torch.float64), -torch.eye(3, dtype=torch.float64)):
            rot = tp(x @ irr_in.D_from_matrix(R).T, Y(vec @ R.T), w)
            torch.testing.assert_close(rot, out @ tp.irreps_out.D_from_matrix(R).T, atol=1e-12, rtol=0)
    finally:
        torch.set_default_dtype(old)
    assert any(p[2] > 0 and p[5] > 0 for p in tp.paths)  # the general (einsum) branch is covered


def test_three_layer_lmax3_model_invariant_and_forces_rotate():
    """Deeper/higher-order settings use the general tensor-product paths; symmetry still exact."""
    m = tiny_model(num_layers=3, lmax=3, seed=7)
    a = _ethanol()
    ref = _ef(m, a)
    R = random_rotation(21)
    b = a.copy()
    b.positions = a.positions @ R.T
    rot = _ef(m, b)
    assert abs(rot["energy"] - ref["energy"]) <= 1e-10 * abs(ref["energy"])
    np.testing.assert_allclose(rot["forces"], ref["forces"] @ R.T, atol=1e-10 * np.abs(ref["forces"]).max())


@pytest.mark.parametrize("kind", ["molecule", "periodic", "isolated_atoms"])
def test_padded_convolution_matches_per_edge_messages(kind):
    """The padded batched-matmul convolution gives the per-edge-message numbers (energy, forces, stress)."""
    if kind == "periodic":
        m, a = tiny_model(species=(29,), cutoff=4.5), _cu()
    elif kind == "molecule":
        m, a = tiny_model(), _ethanol()
    else:  # no edges at all
        m, a = tiny_model(), Atoms("OH", positions=[[0, 0, 0], [0, 0, 9.0]])
    periodic = kind == "periodic"
    res = []
    for fused in (True, False):
        m.fused = fused
        res.append(_ef(m, a, stress=periodic))
    m.fused = True
    assert res[0]["energy"] == pytest.approx(res[1]["energy"], rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(res[0]["forces"], res[1]["forces"], atol=1e-12)
    if periodic:
        np.testing.assert_allclose(res[0]["stress"], res[1]["stress"], atol=1e-12)


def _triclinic_alloy():
    """A 4-element cell with a strongly non-orthogonal (triclinic) lattice and thermal noise."""
    rng = np.random.default_rng(7)
    cell = np.array([[7.3, 0.0, 0.0], [2.1, 6.8, 0.0], [-1.4, 1.7, 7.9]])
    frac = np.array([[i, j, k] for i in (0, 0.5) for j in (0, 0.5) for k in (0, 0.5)])
    frac = np.concatenate([frac, frac + 0.25]) % 1.0
    a = Atoms(numbers=rng.choice([13, 29, 46, 79], size=len(frac)), scaled_positions=frac, cell=cell, pbc=True)
    a.positions += rng.normal(scale=0.1, size=a.positions.shape)
    return a


def test_stress_matches_finite_difference_strain_triclinic_multi_element():
    """sigma = (1/V) dE/d(eps) for every component, checked against central differences of the energy
    of a strained (positions and cell) 4-element triclinic cell."""
    m = tiny_model(species=(13, 29, 46, 79), cutoff=4.5, seed=3)
    a = _triclinic_alloy()
    assert len(set(a.numbers)) == 4 and abs(a.cell.angles() - 90).max() > 10
    S = _ef(m, a, stress=True)["stress"]
    assert np.abs(S).max() > 1e-4 and np.abs(S[0, 1]) > 1e-6  # shear stress present
    _assert_stress_is_strain_derivative(m, a, S, [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)])
    np.testing.assert_allclose(S, S.T, atol=1e-14)


def _assert_stress_is_strain_derivative(model, atoms, S, components, h=1e-5):
    """``S[p, q] = (1/V) dE/d(eps_pq)`` by central differences of the energy under symmetric strain."""
    V = atoms.get_volume()
    for (p, q) in components:
        eps = np.zeros((3, 3))
        eps[p, q] = eps[q, p] = h
        es = []
        for sgn in (1, -1):
            b = atoms.copy()
            b.set_cell(atoms.cell.array @ (np.eye(3) + sgn * eps), scale_atoms=True)
            es.append(_ef(model, b)["energy"])
        dEde = (es[0] - es[1]) / (2 * h) / (2.0 if p != q else 1.0)
        assert abs(dEde / V - S[p, q]) < 1e-8 + 1e-6 * abs(S[p, q]), (p, q, dEde / V, S[p, q])


@pytest.mark.parametrize("r0, bound", [(1.25, True), (0.95, False)])
def test_diatomic_frequency_equals_harmonic_formula(r0, bound):
    """A diatomic has one vibration, nu = sqrt(k / mu) / (2 pi c), with k = d2E/dr2 (here from central
    differences of the model's energy along the bond) and mu the reduced mass, computed with SI constants;
    where the curvature is negative the mode is imaginary, reported as a negative number."""
    from scipy import constants as C

    m = tiny_model(seed=1)

    def co(r):
        return Atoms("CO", positions=[[0, 0, 0], [0.3 * r, -0.5 * r, np.sqrt(1 - 0.34) * r]])

    a = co(r0)
    h = 1e-3
    e = [_ef(m, co(r0 + d))["energy"] for d in (-h, 0.0, h)]
    k = (e[0] - 2 * e[1] + e[2]) / h**2  # eV/Å^2
    assert (k > 0.1) if bound else (k < -0.1)
    m1, m2 = a.get_masses()
    mu = m1 * m2 / (m1 + m2) * C.atomic_mass
    omega = np.sqrt(abs(k) * C.electron_volt / 1e-20 / mu)  # rad/s
    expected = np.sign(k) * omega / (2 * np.pi * C.c * 100.0)  # cm^-1
    freqs = vibrational_frequencies(m, a)
    assert freqs.shape == (1,)  # 3N - 5 for a linear molecule
    assert freqs[0] == pytest.approx(expected, rel=1e-5)


def test_unprojected_frequencies_match_ase_vibrations(tmp_path):
    """All 3N mass-weighted Hessian modes agree with ase.vibrations (finite differences of the calculator's forces)."""
    from ase.vibrations import Vibrations

    m = tiny_model(seed=6)
    a = molecule("H2O")
    a.calc = SciMLCalculator(m)
    vib = Vibrations(a, name=str(tmp_path / "vib"), delta=1e-4, nfree=4)
    vib.run()
    ref = vib.get_frequencies()  # complex for imaginary modes
    ref = np.sort(np.where(np.abs(ref.imag) > 0, -np.abs(ref.imag), ref.real))
    ours = np.sort(vibrational_frequencies(m, a, project=False))
    big = np.abs(ref) > 100.0  # the soft (translation/rotation) modes are noise in ASE's finite differences
    assert big.sum() >= 3
    np.testing.assert_allclose(ours[big], ref[big], rtol=1e-4)


def test_invariant_lmax0_model_symmetries_forces_and_stress():
    """The l = 0 model (scalar hidden features only; the alloy benchmark's configuration): energy
    invariant under rotation, reflection, translation and permutation; forces = central differences of
    the energy; stress = strain derivative of the energy on a 4-element triclinic cell."""
    m = tiny_model(lmax=0, seed=4)
    assert all(ir.l == 0 for layer in m.layers for _, ir in layer.irreps_out)
    a = _ethanol()
    ref = _ef(m, a)
    assert abs(ref["energy"]) > 0.1 and np.abs(ref["forces"]).max() > 1e-3
    R = random_rotation(8)
    perm = np.arange(len(a))
    h_idx = np.where(a.numbers == 1)[0]
    perm[h_idx] = h_idx[::-1]
    for name, b in {"rotation": None, "reflection": None, "translation": None, "permutation": a[perm]}.items():
        if b is None:
            b = a.copy()
            b.positions = {"rotation": a.positions @ R.T, "reflection": a.positions * np.array([1.0, -1.0, 1.0]),
                           "translation": a.positions + np.array([2.1, -0.3, 5.0])}[name]
        assert abs(_ef(m, b)["energy"] - ref["energy"]) <= 1e-10 * abs(ref["energy"]), name
    b = a.copy()
    b.positions = a.positions @ R.T
    np.testing.assert_allclose(_ef(m, b)["forces"], ref["forces"] @ R.T, atol=1e-11 * np.abs(ref["forces"]).max())
    step = 1e-4
    for i in (0, 3, 8):
        for k in range(3):
            ap, am = a.copy(), a.copy()
            ap.positions[i, k] += step
            am.positions[i, k] -= step
            fd = -(_ef(m, ap)["energy"] - _ef(m, am)["energy"]) / (2 * step)
            assert abs(fd - ref["forces"][i, k]) < 1e-7 + 1e-6 * abs(ref["forces"][i, k]), (i, k)
    mp = tiny_model(species=(13, 29, 46, 79), cutoff=4.5, seed=5, lmax=0)
    c = _triclinic_alloy()
    S = _ef(mp, c, stress=True)["stress"]
    assert np.abs(S).max() > 1e-4
    _assert_stress_is_strain_derivative(mp, c, S, [(0, 0), (1, 2), (0, 1)])
