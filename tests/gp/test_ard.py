"""Per-element-pair (ARD) length-scales of the global GP: ``GPPotential(length_scales="pair")``."""
import math

import numpy as np
import pytest
import torch

from sciml.atoms import attach_labels
from sciml.gp import GPPotential
from sciml.gp.data import interleave_targets
from sciml.gp.descriptors import Geometry, Permutations
from sciml.gp.hyperparameters import EnergyScale, JITTER, noise_vector, param_names, unpack_ard
from sciml.gp.kernels import dense_covariance, group_squared_distances
from sciml.gp.likelihood import kernel_parts, nlml_hessian, profiled_nlml_and_gradient
from sciml.gp.pair_groups import ard_feature_weights, descriptor_groups
from sciml.gp.symmetry import bond_graph, permutation_group

from gp_testdata import distorted_frames
from nlml_reference import ard_rbf_covariance


def _groups_problem(name="CH3OH", n=5, seed=0, amp=0.08):
    frames = distorted_frames(name, n, amp, seed)
    pos = np.stack([a.positions for a in frames])
    E = np.array([a.get_potential_energy() for a in frames])
    F = np.stack([a.get_forces() for a in frames])
    P = Permutations(permutation_group(bond_graph(frames[0])), len(frames[0]))
    g = Geometry.from_positions(pos)
    labels, names = descriptor_groups(frames[0].numbers, P, "pair")
    gt = torch.as_tensor(labels)
    r2 = group_squared_distances(g, g, P, gt, len(names))
    y = torch.as_tensor(interleave_targets(E, F))
    return frames, g, P, y, gt, names, r2, EnergyScale(float(E.mean()), float(E.std()))


def test_descriptor_groups_are_element_pairs_and_unions_of_orbits():
    frames, g, P, y, gt, names, r2, _ = _groups_problem()
    assert sorted(names) == ["C-H", "C-O", "H-H", "H-O"]
    labels = gt.numpy()
    for idx in P.idx.numpy():  # every permutation of identical atoms maps each group onto itself
        np.testing.assert_array_equal(labels[idx], labels)
    # per-group squared distances add up to the full ones
    from sciml.gp.kernels import squared_distances
    torch.testing.assert_close(r2.sum(0), squared_distances(g, g, P))
    with pytest.raises(ValueError, match="length_scales"):
        descriptor_groups(frames[0].numbers, P, "elements")
    shared, shared_names = descriptor_groups(frames[0].numbers, P, "shared")
    assert shared_names == ["all"] and (shared == 0).all()


def test_ard_covariance_matches_brute_force_autograd():
    """The library's rescaled-geometry covariance equals an autograd-through-positions reference."""
    frames, g, P, y, gt, names, r2, _ = _groups_problem(n=3)
    gl = torch.tensor([0.3, 0.5, 0.8, 1.2], dtype=torch.float64)[: len(names)]
    t = torch.cat([torch.log(gl)])
    geo, c, _ = kernel_parts(t, g, "rbf", r2, 1, torch.tensor(0.7, dtype=torch.float64), gt)
    K = dense_covariance(geo, geo, P, *c)
    pos = torch.as_tensor(np.stack([a.positions for a in frames]))
    Kref = ard_rbf_covariance(pos, P.idx, 1.0 / gl[gt], torch.tensor(1.0, dtype=torch.float64),
                              torch.tensor(0.7, dtype=torch.float64))
    torch.testing.assert_close(K, Kref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n_scales", [1, 2])
def test_ard_profiled_gradient_matches_finite_differences(n_scales):
    _, g, P, y, gt, names, r2, _ = _groups_problem()
    G = len(names)
    phi = np.r_[np.log(np.linspace(0.3, 0.7, G)), [math.log(2.0), math.log(30.0)][: 2 * (n_scales - 1)],
                math.log(0.02), math.log(0.06)]
    v0, g0, _, _ = profiled_nlml_and_gradient(phi, g, P, y, "matern52", r2, groups=gt)
    assert g0.shape == phi.shape and np.isfinite(v0)
    for k in range(len(phi)):
        e = np.zeros(len(phi))
        e[k] = 1e-6
        fd = (profiled_nlml_and_gradient(phi + e, g, P, y, "matern52", r2, gradient=False, groups=gt)[0]
              - profiled_nlml_and_gradient(phi - e, g, P, y, "matern52", r2, gradient=False, groups=gt)[0]) / 2e-6
        assert abs(fd - g0[k]) < 1e-5 * max(1.0, abs(fd)), (k, fd, g0[k])
    # equal group length-scales: the isotropic objective (same value and summed gradient)
    phi_eq = np.r_[np.full(G, math.log(0.5)), phi[G:]]
    from sciml.gp.kernels import squared_distances
    v_iso, g_iso, _, _ = profiled_nlml_and_gradient(np.r_[math.log(0.5), phi[G:]], g, P, y, "matern52",
                                                    squared_distances(g, g, P))
    v_eq, g_eq, _, _ = profiled_nlml_and_gradient(phi_eq, g, P, y, "matern52", r2, groups=gt)
    assert abs(v_iso - v_eq) < 1e-8 * abs(v_iso)
    assert abs(g_eq[:G].sum() - g_iso[0]) < 1e-6 * max(1.0, abs(g_iso[0]))


def _reference_nlml(theta, pos, P, gt, y, sc, n_groups):
    """Full NLML (RBF, one component) from the brute-force covariance, differentiable in theta."""
    gl, _, fr, s2, ve, vf, mu = unpack_ard(theta, sc, n_groups)
    n, m = pos.shape[0], 1 + 3 * pos.shape[1]
    K = ard_rbf_covariance(pos, P.idx, 1.0 / gl[gt], torch.tensor(1.0, dtype=torch.float64), s2)
    K = K + torch.diag(noise_vector(n, m, ve, vf) + JITTER * s2 * fr[0])
    L = torch.linalg.cholesky(K)
    mean = torch.nn.functional.pad(mu.reshape(1, 1).expand(n, 1), (0, m - 1)).reshape(-1)
    r = (y - mean)[:, None]
    a = torch.cholesky_solve(r, L)
    return 0.5 * (r * a).sum() + torch.log(torch.diagonal(L)).sum() + 0.5 * n * m * math.log(2 * math.pi)


def test_ard_hessian_matches_brute_force_reference():
    """The Laplace Hessian with group length-scales (forward-mode route) against autograd's Hessian of a
    reference NLML built by differentiating the kernel through the positions."""
    frames, g, P, y, gt, names, r2, sc = _groups_problem(name="H2O", n=4, amp=0.1)
    G = len(names)
    theta = np.r_[np.log([0.35, 0.9][:G]), math.log(0.8), math.log(0.01), math.log(0.05), 0.3]
    H = nlml_hessian(theta, g, P, y, "rbf", sc, r2, groups=gt)
    pos = torch.as_tensor(np.stack([a.positions for a in frames]))
    Ha = torch.autograd.functional.hessian(lambda t: _reference_nlml(t, pos, P, gt, y, sc, G), torch.as_tensor(theta))
    np.testing.assert_allclose(H, Ha.numpy(), rtol=1e-6, atol=1e-7 * np.abs(H).max())


def test_feature_weights_fold_relative_length_scales():
    w, l_ref = ard_feature_weights(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 1]), np.array([0.5, 2.0]))
    assert l_ref == pytest.approx(1.0)
    np.testing.assert_allclose(w, [2.0, 1.0, 1.5])


def _ard_prior_sample(n, group_ls, s, se, sf, mu, seed):
    """Water frames whose energies/forces are one draw from the ARD GP prior (Matérn-5/2) + noise."""
    frames = distorted_frames("H2O", n, 0.12, seed, label=False)
    pos = np.stack([a.positions for a in frames])
    P = Permutations(permutation_group(bond_graph(frames[0])), 3)
    g = Geometry.from_positions(pos)
    labels, names = descriptor_groups(frames[0].numbers, P, "pair")
    assert names == ["H-O", "H-H"]
    gt = torch.as_tensor(labels)
    r2 = group_squared_distances(g, g, P, gt, 2)
    t = torch.log(torch.as_tensor(group_ls, dtype=torch.float64))
    geo, c, _ = kernel_parts(t, g, "matern52", r2, 1, torch.tensor(s**2, dtype=torch.float64), gt)
    K = dense_covariance(geo, geo, P, *c).numpy()
    noise = np.tile(np.r_[se**2, np.full(9, sf**2)], n)
    rng = np.random.default_rng(seed + 100)
    y = (np.linalg.cholesky(K + np.diag(noise) + 1e-12 * np.eye(len(K))) @ rng.normal(size=len(K))).reshape(n, 10)
    return [attach_labels(a, energy=mu + y[k, 0], forces=y[k, 1:].reshape(3, 3)) for k, a in enumerate(frames)]


@pytest.fixture(scope="module")
def recovered():
    truth = dict(ls=(0.35, 1.4), s=0.8, se=0.02, sf=0.05, mu=-2.0)
    frames = _ard_prior_sample(40, truth["ls"], truth["s"], truth["se"], truth["sf"], truth["mu"], seed=5)
    # the estimator is the model the data were drawn from: one Matérn component on plain inverse distances
    gp = GPPotential(standardize=False, length_scales="pair", n_scales=1, descriptor_power=1.0, n_tune=40,
                     progress=False).fit(frames)
    return truth, frames, gp


def test_group_length_scales_recovered_from_ard_prior_samples(recovered):
    """Known truth: H-O and H-H length-scales 0.35 and 1.4 (a factor 4 apart). One sample path of 40
    frames determines each only to a Laplace standard error of ~0.1-0.25 (log scale), so: each
    estimate within 3 standard errors of the truth, the ratio within a factor 1.6 and significantly
    above 1 (3 standard errors), and the ARD optimum beats the nested shared model in marginal
    likelihood by far more than chance (1 extra parameter)."""
    truth, _, gp = recovered
    assert gp.length_scale_groups_ == ["H-O", "H-H"]
    tab = gp.laplace_.table()
    assert gp.laplace_.names[:2] == ["log_lengthscale[H-O]", "log_lengthscale[H-H]"]
    assert gp.laplace_.names == param_names(1, ["H-O", "H-H"])
    assert gp.laplace_.positive_definite
    ses = []
    for name, est, true in zip(gp.length_scale_groups_, gp.group_lengthscales_, truth["ls"]):
        se = tab.loc[f"log_lengthscale[{name}]", "std_err"]
        assert np.isfinite(se) and 0 < se < 0.5, (name, se)
        assert abs(math.log(est) - math.log(true)) < 3 * se, (name, est, true, se)
        ses.append(se)
    log_ratio = math.log(gp.group_lengthscales_[1] / gp.group_lengthscales_[0])
    assert abs(log_ratio - math.log(4.0)) < math.log(1.6), log_ratio
    assert log_ratio > 3 * math.hypot(*ses)
    assert gp.nlml_ < gp.nlml_shared_ - 10.0
    assert abs(math.log(gp.force_noise_ / truth["sf"])) < math.log(1.25)


def test_ard_model_invariant_and_forces_are_gradient():
    """Methanol (5 element-pair groups, 6 permutations of the methyl hydrogens): predictions are
    invariant under rotations and permutations of identical atoms, forces are -dE/dR."""
    frames = distorted_frames("CH3OH", 14, 0.05, 2)
    gp = GPPotential(length_scales="pair", n_tune=10, laplace=False, progress=False).fit(frames[:10])
    assert len(gp.length_scale_groups_) == 4 and len(gp.permutations_) == 6
    assert len(np.unique(gp.group_lengthscales_)) == 4
    from scipy.spatial.transform import Rotation
    a = frames[12]
    E, F, _, _ = gp.predict([a])
    Rm = Rotation.from_euler("zx", [37, 71], degrees=True).as_matrix()
    for perm in gp.permutations_[1:]:
        b = a.copy()
        b.positions = a.positions[perm] @ Rm.T
        E2, F2, _, _ = gp.predict([b])
        assert E2[0] == pytest.approx(E[0], abs=1e-10)
        np.testing.assert_allclose(F2[0], F[0][perm] @ Rm.T, atol=1e-9)
    h = 1e-5
    for k in range(3):
        p, m = a.copy(), a.copy()
        p.positions[1, k] += h
        m.positions[1, k] -= h
        fd = -(gp.predict([p], return_std=False)[0][0] - gp.predict([m], return_std=False)[0][0]) / (2 * h)
        assert abs(fd - F[0][1, k]) < 1e-6 * max(1.0, abs(fd))


def test_ard_save_load_roundtrip(recovered, tmp_path):
    _, frames, gp = recovered
    path = gp.save(tmp_path / "ard.pt")
    gp2 = GPPotential.load(path)
    assert gp2.length_scales == "pair" and gp2.length_scale_groups_ == gp.length_scale_groups_
    np.testing.assert_allclose(gp2.group_lengthscales_, gp.group_lengthscales_)
    for x, y in zip(gp.predict(frames[:5]), gp2.predict(frames[:5])):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-12)
    assert list(gp2.laplace_.table().index) == list(gp.laplace_.table().index)


def test_pair_is_the_default_and_bad_option_is_rejected():
    assert GPPotential().length_scales == "pair"
    frames = distorted_frames("H2O", 4, 0.1, 0)
    with pytest.raises(ValueError, match="length_scales must be one of"):
        GPPotential(length_scales="ard", progress=False).fit(frames)
