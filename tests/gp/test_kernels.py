import gpytorch
import numpy as np
import pytest
import torch
from ase.build import molecule

from sciml.gp.descriptors import Geometry, Permutations
from sciml.gp.kernels import EnergyForceKernel, assemble, contract, joint_covariance
from sciml.gp.kernels import squared_distances
from sciml.gp.symmetry import bond_graph, permutation_group


@pytest.fixture(scope="module")
def setup():
    m = molecule("CH3CH2OH")
    rng = np.random.default_rng(0)
    R = m.positions[None] + 0.08 * rng.normal(size=(3, 9, 3))
    P = Permutations(permutation_group(bond_graph(m)), 9)
    return R, P


def _k(Ra, Rb, P, kind):
    ga, gb = Geometry.from_positions(Ra[None]), Geometry.from_positions(Rb[None])
    return joint_covariance(ga, gb, P, 0.6, 1.7, kind).numpy()


@pytest.mark.parametrize("kind", ["matern52", "rbf"])
def test_blocks_match_finite_differences_of_energy_kernel(setup, kind):
    """cov(E,F) = -dk/dR_b, cov(F,E) = -dk/dR_a, cov(F,F) = d2k/dR_a dR_b (F = -dE/dR)."""
    R, P = setup
    Ra, Rb = R[0], R[1]
    K = _k(Ra, Rb, P, kind)
    eps = 1e-5
    ef, fe, ff = np.zeros(27), np.zeros(27), np.zeros((27, 27))
    for k in range(27):
        d = np.zeros(27)
        d[k] = eps
        d = d.reshape(9, 3)
        ef[k] = -(_k(Ra, Rb + d, P, kind)[0, 0] - _k(Ra, Rb - d, P, kind)[0, 0]) / (2 * eps)
        fe[k] = -(_k(Ra + d, Rb, P, kind)[0, 0] - _k(Ra - d, Rb, P, kind)[0, 0]) / (2 * eps)
        # d/dR_b of cov(F_a, E_b) = -cov(F_a, F_b)
        ff[:, k] = -(_k(Ra, Rb + d, P, kind)[1:, 0] - _k(Ra, Rb - d, P, kind)[1:, 0]) / (2 * eps)
    scale = np.abs(K).max()
    np.testing.assert_allclose(K[0, 1:], ef, atol=1e-7 * scale)
    np.testing.assert_allclose(K[1:, 0], fe, atol=1e-7 * scale)
    np.testing.assert_allclose(K[1:, 1:], ff, atol=1e-6 * scale)


@pytest.mark.parametrize("kind", ["matern52", "rbf"])
def test_joint_covariance_symmetric_psd_and_invariant(setup, kind):
    R, P = setup
    g = Geometry.from_positions(R)
    K = joint_covariance(g, g, P, 0.6, 1.7, kind)
    assert torch.allclose(K, K.T, atol=1e-12)
    assert torch.linalg.eigvalsh(K).min() > -1e-9 * K.abs().max()
    # permuting identical atoms of one structure leaves its energy covariance unchanged
    perm = P.atom_perms[5]
    g2 = Geometry.from_positions(R[:, perm])
    K2 = joint_covariance(g2, g, P, 0.6, 1.7, kind).reshape(3, 28, 3, 28)
    np.testing.assert_allclose(K2[:, 0, :, 0].numpy(), K.reshape(3, 28, 3, 28)[:, 0, :, 0].numpy(), atol=1e-12)


def test_contract_is_adjoint_of_assemble(setup):
    R, P = setup
    ga, gb = Geometry.from_positions(R[:2]), Geometry.from_positions(R[1:])
    r2 = squared_distances(ga, gb, P)
    gen = torch.Generator().manual_seed(0)
    c = [torch.randn(r2.shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    W = torch.randn(2 * 28, 2 * 28, generator=gen, dtype=torch.float64)
    lhs = (assemble(ga, gb, P, *c).reshape(-1) * W.reshape(-1)).sum()
    rhs = sum((gi * ci).sum() for gi, ci in zip(contract(ga, gb, P, W), c))
    assert abs(float(lhs - rhs)) < 1e-9 * abs(float(lhs))


def test_gpytorch_kernel_matches_and_differentiates(setup):
    R, P = setup
    k = gpytorch.kernels.ScaleKernel(EnergyForceKernel(n_atoms=9, kind="matern52", permutations=P.atom_perms))
    k.double()
    k.base_kernel.lengthscale = 0.6
    k.outputscale = 1.7
    x = torch.as_tensor(R.reshape(3, 27))
    K = k(x, x).to_dense()
    g = Geometry.from_positions(R)
    ls, os_ = float(k.base_kernel.lengthscale.detach()), float(k.outputscale.detach())  # as stored after the constraint transform
    assert abs(ls - 0.6) < 1e-6 and abs(os_ - 1.7) < 1e-6
    ref = joint_covariance(g, g, P, ls, os_).numpy()
    np.testing.assert_allclose(K.detach().numpy(), ref, rtol=1e-10, atol=1e-12)
    K.sum().backward()
    assert k.base_kernel.raw_lengthscale.grad is not None and torch.isfinite(k.base_kernel.raw_lengthscale.grad).all()


def test_assemble_overwrite_equals_accumulate_into_zeros(setup):
    """accumulate=False overwrites every entry (the big solve skips zeroing its buffer)."""
    from sciml.gp.kernels import assemble, kernel_coefficients

    R, P = setup
    g = Geometry.from_positions(R)
    r2 = squared_distances(g, g, P)
    c = kernel_coefficients(r2, torch.tensor(0.7, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64))
    ref = assemble(g, g, P, *c)
    buf = torch.full_like(ref, float("nan"))
    assemble(g, g, P, *c, out=buf, accumulate=False)
    assert torch.equal(buf, ref)
