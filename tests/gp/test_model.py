import math
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

from sciml.atoms import attach_labels
from sciml.gp import GPCalculator, GPPotential, evaluate
from sciml.gp.data import interleave_targets
from sciml.gp.descriptors import Geometry, Permutations, inverse_distances
from sciml.gp.hyperparameters import EnergyScale, param_names
from sciml.gp.kernels import joint_covariance, squared_distances
from sciml.gp.likelihood import nlml_hessian, profiled_nlml_and_gradient
from sciml.gp.symmetry import bond_graph, permutation_group

from gp_testdata import distorted_frames
from nlml_reference import negative_log_marginal_likelihood


@pytest.fixture(scope="module")
def small_gp(ethanol_frames):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GPPotential(progress=False).fit(ethanol_frames[:12])


def test_fit_attributes_and_trace(small_gp):
    gp = small_gp
    assert gp.n_train_ == 12 and gp.permutations_.shape == (12, 9)
    for name in ("lengthscale_", "signal_std_", "energy_noise_", "force_noise_"):
        assert getattr(gp, name) > 0
    tr = gp.trace_
    assert len(tr) >= 2 and {"nlml", "lengthscale", "force_noise"} <= set(tr.columns)
    assert tr["nlml"].iloc[-1] <= tr["nlml"].iloc[0]
    # default: one length-scale per element pair (ARD), fitted after the shared one (both stages traced)
    assert gp.length_scales == "pair" and gp.length_scale_groups_ == ["C-C", "C-O", "C-H", "H-O", "H-H"]
    assert set(tr["stage"]) == {"isotropic", "ard"} and gp.nlml_ <= gp.nlml_shared_
    assert {f"lengthscale[{g}]" for g in gp.length_scale_groups_} <= set(tr.columns)
    t = gp.laplace_.table()
    # default: two Matérn components (a ratio of length-scales and a variance weight), descriptor r^-1/2
    assert gp.n_scales == 2 and gp.descriptor_power == 0.5 and gp.n_tune == 50
    assert len(gp.lengthscales_) == 2 and gp.lengthscales_[1] > gp.lengthscales_[0]
    assert gp.variance_fractions_.sum() == pytest.approx(1.0)
    assert list(t.index) == param_names(2, gp.length_scale_groups_) == [
        "log_lengthscale[C-C]", "log_lengthscale[C-O]", "log_lengthscale[C-H]", "log_lengthscale[H-O]",
        "log_lengthscale[H-H]", "log_lengthscale_ratio_2", "log_weight_2", "log_signal_std", "log_energy_noise",
        "log_force_noise", "mean_energy"]
    assert "Laplace" in gp.laplace_.summary()
    assert gp.lengthscale_ == pytest.approx(float(np.exp(np.log(gp.group_lengthscales_).mean())))


def test_two_scale_mixture_fit(ethanol_frames):
    """n_scales=2: ordered length-scales, variance fractions summing to 1, names of the packed parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(n_scales=2, length_scales="shared", progress=False).fit(ethanol_frames[:10])
    assert list(gp.laplace_.table().index) == param_names(2) == [
        "log_lengthscale", "log_lengthscale_ratio_2", "log_weight_2", "log_signal_std", "log_energy_noise",
        "log_force_noise", "mean_energy"]
    assert gp.lengthscales_.shape == (2,) and gp.lengthscales_[0] <= gp.lengthscales_[1]
    assert gp.lengthscale_ == gp.lengthscales_[0] and abs(gp.variance_fractions_.sum() - 1) < 1e-12
    assert {"lengthscale_2", "variance_fraction_2"} <= set(gp.trace_.columns)
    E, F, Es, Fs = gp.predict(ethanol_frames[50:52])
    assert F.shape == (2, 9, 3) and np.all(Fs > 0)
    assert "Laplace" in gp.laplace_.summary()


def _fd_forces(gp, R, eps):
    """Fourth-order central differences of the predicted energy."""
    fd = np.zeros(R.size)

    def energy(shift):
        return gp.predict_positions((R + shift.reshape(R.shape))[None], return_std=False)[0][0]

    for k in range(R.size):
        d = np.zeros(R.size)
        d[k] = eps
        fd[k] = -(8 * (energy(d) - energy(-d)) - (energy(2 * d) - energy(-2 * d))) / (12 * eps)
    return fd


def test_predicted_forces_are_minus_gradient_of_predicted_energy(small_gp, ethanol_frames):
    R = ethanol_frames[40].get_positions()
    # a well-conditioned model (noise >= 1e-3 signal std): the identity holds to 1e-6 relative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(noise_floor=1e-3, progress=False, laplace=False).fit(ethanol_frames[:12])
    _, F, _, _ = gp.predict_positions(R[None], return_std=False)
    np.testing.assert_allclose(F[0].ravel(), _fd_forces(gp, R, 1e-3), atol=1e-6 * max(1.0, np.abs(F).max()))
    # the default model interpolates noiseless labels (noise ~1e-7 eV/A, weights |alpha| ~1e5): the predicted
    # energy carries ~1e-9 eV round-off, so differences need a larger step; still 1e-5 relative
    _, F, _, _ = small_gp.predict_positions(R[None], return_std=False)
    np.testing.assert_allclose(F[0].ravel(), _fd_forces(small_gp, R, 1e-2), atol=1e-5 * max(1.0, np.abs(F).max()))


def _problem(n=6, seed=0):
    frames = distorted_frames("CH3CH2OH", n, 0.05, seed)
    pos = np.stack([a.positions for a in frames])
    E = np.array([a.get_potential_energy() for a in frames])
    F = np.stack([a.get_forces() for a in frames])
    P = Permutations(permutation_group(bond_graph(frames[0])), 9)
    g = Geometry.from_positions(pos)
    return g, P, torch.as_tensor(interleave_targets(E, F)), EnergyScale(float(E.mean()), float(E.std())), squared_distances(g, g, P)


@pytest.mark.parametrize("kind", ["matern52", "rbf"])
def test_marginal_likelihood_gradient_matches_finite_differences(kind):
    g, P, y, sc, r2 = _problem()
    theta = torch.tensor([math.log(0.4), math.log(0.8), math.log(0.01), math.log(0.05), 0.3], dtype=torch.float64,
                         requires_grad=True)
    val = negative_log_marginal_likelihood(theta, g, P, y, kind, sc)
    (grad,) = torch.autograd.grad(val, theta)
    eps = 1e-6
    for k in range(5):
        e = torch.zeros(5, dtype=torch.float64)
        e[k] = eps
        with torch.no_grad():
            fd = (negative_log_marginal_likelihood(theta + e, g, P, y, kind, sc)
                  - negative_log_marginal_likelihood(theta - e, g, P, y, kind, sc)) / (2 * eps)
        assert abs(float(fd) - float(grad[k])) < 1e-5 * max(1.0, abs(float(fd))), (k, float(fd), float(grad[k]))
    # the profiled objective the optimiser uses: value and trace-formula gradient
    phi = np.array([math.log(0.4), math.log(0.02), math.log(0.06)])
    v0, g0, _, _ = profiled_nlml_and_gradient(phi, g, P, y, kind, r2)
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1e-6
        fd = (profiled_nlml_and_gradient(phi + e, g, P, y, kind, r2, gradient=False)[0]
              - profiled_nlml_and_gradient(phi - e, g, P, y, kind, r2, gradient=False)[0]) / 2e-6
        assert abs(fd - g0[k]) < 1e-5 * max(1.0, abs(fd)), (k, fd, g0[k])


def test_two_scale_profiled_gradient_matches_finite_differences():
    """Mixture of a short and a long length-scale: the optimiser's gradient is exact."""
    g, P, y, sc, r2 = _problem()
    phi = np.array([math.log(0.3), math.log(2.0), math.log(50.0), math.log(0.02), math.log(0.06)])
    _, g0, _, _ = profiled_nlml_and_gradient(phi, g, P, y, "matern52", r2)
    assert g0.shape == (5,)
    for k in range(5):
        e = np.zeros(5)
        e[k] = 1e-6
        fd = (profiled_nlml_and_gradient(phi + e, g, P, y, "matern52", r2, gradient=False)[0]
              - profiled_nlml_and_gradient(phi - e, g, P, y, "matern52", r2, gradient=False)[0]) / 2e-6
        assert abs(fd - g0[k]) < 1e-5 * max(1.0, abs(fd)), (k, fd, g0[k])


@pytest.mark.parametrize("n_scales", [1, 2])
def test_hessian_matches_autograd(n_scales):
    g, P, y, sc, r2 = _problem(n=4)
    kern = [math.log(0.4)] if n_scales == 1 else [math.log(0.4), math.log(1.5), math.log(20.0)]
    theta = np.array(kern + [math.log(0.8), math.log(0.01), math.log(0.05), 0.3])
    H = nlml_hessian(theta, g, P, y, "matern52", sc, r2)
    Ha = torch.autograd.functional.hessian(
        lambda t: negative_log_marginal_likelihood(t, g, P, y, "matern52", sc), torch.as_tensor(theta))
    np.testing.assert_allclose(H, Ha.numpy(), rtol=1e-7, atol=1e-7 * np.abs(H).max())


def _prior_sample(n, theta, seed, kind="matern52"):
    """Frames of water whose energies/forces are one draw from the GP prior (+ noise)."""
    frames = distorted_frames("H2O", n, 0.12, seed, label=False)
    pos = np.stack([a.positions for a in frames])
    P = Permutations(permutation_group(bond_graph(frames[0])), 3)
    g = Geometry.from_positions(pos)
    ls, s, se, sf, mu = theta
    K = joint_covariance(g, g, P, ls, s**2, kind).numpy()
    noise = np.tile(np.r_[se**2, np.full(9, sf**2)], n)
    rng = np.random.default_rng(seed + 100)
    L = np.linalg.cholesky(K + np.diag(noise) + 1e-12 * np.eye(len(K)))
    y = L @ rng.normal(size=len(K))
    y = y.reshape(n, 10)
    return [attach_labels(a, energy=mu + y[k, 0], forces=y[k, 1:].reshape(3, 3)) for k, a in enumerate(frames)]


def test_hyperparameters_recovered_from_gp_prior_samples():
    """Tolerance: every log-hyperparameter within 3 Laplace standard errors of the truth, and the
    well-determined ones (length-scale, force noise: 360 force labels) within 25%. One sample path
    determines the signal std and the energy noise (40 labels) only loosely (standard errors ~0.1-0.3)."""
    truth = (0.5, 0.8, 0.02, 0.05, -2.0)  # lengthscale, signal std, energy noise, force noise, mean
    frames = _prior_sample(40, truth, seed=3)
    gp = GPPotential(standardize=False, n_scales=1, descriptor_power=1.0, length_scales="shared", n_tune=40,
                     progress=False).fit(frames)
    est = dict(log_lengthscale=gp.lengthscale_, log_signal_std=gp.signal_std_, log_energy_noise=gp.energy_noise_,
               log_force_noise=gp.force_noise_)
    se = gp.laplace_.table()["std_err"]
    assert gp.laplace_.positive_definite
    for (name, value), true in zip(est.items(), truth[:4]):
        err = abs(math.log(value) - math.log(true))
        assert err < 3 * se[name] + 1e-3, (name, value, true, se[name])
        if name in ("log_lengthscale", "log_force_noise"):
            assert err < math.log(1.25), (name, value, true)


def test_coverage_of_95_percent_interval_on_held_out_data():
    """Well-specified case (GP prior data): held-out force coverage must lie in [0.90, 0.99]."""
    truth = (0.5, 0.8, 0.02, 0.05, -2.0)
    frames = _prior_sample(70, truth, seed=5)
    gp = GPPotential(standardize=False, n_scales=1, descriptor_power=1.0, progress=False).fit(frames[:40])
    m = evaluate(gp, frames[40:])
    assert 0.90 <= m["forces_coverage_95"] <= 0.99, m


def test_coverage_on_reference_data_is_reported(small_gp, ethanol_frames):
    m = evaluate(small_gp, ethanol_frames[40:60])
    assert m["n_structures"] == 20 and m["n_structures_std"] == 20
    # a misspecified but honest model: not grossly over-confident
    assert 0.8 <= m["forces_coverage_95"] <= 1.0, m
    assert m["forces_mae_meV_per_A"] < m["forces_std_mean_meV_per_A"] * 2


def test_invariance_under_rotation_and_permutation(small_gp, ethanol_frames):
    gp = small_gp
    a = ethanol_frames[45]
    R = a.get_positions()
    E, F, Es, Fs = gp.predict([a])
    rot = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0]
    E2, F2, Es2, _ = gp.predict_positions((R @ rot.T + 1.5)[None])
    assert abs(E2[0] - E[0]) < 1e-8 and abs(Es2[0] - Es[0]) < 1e-8
    np.testing.assert_allclose(F2[0], F[0] @ rot.T, atol=1e-7)
    perm = np.array([0, 1, 2, 3, 5, 4, 7, 8, 6])  # swap the CH2 hydrogens, cycle the CH3 ones
    assert any((perm == p).all() for p in gp.permutations_)
    E3, F3, Es3, _ = gp.predict_positions(R[perm][None])
    assert abs(E3[0] - E[0]) < 1e-8 and abs(Es3[0] - Es[0]) < 1e-8
    np.testing.assert_allclose(F3[0], F[0][perm], atol=1e-7)


def test_save_load_roundtrip(small_gp, ethanol_frames, tmp_path):
    path = small_gp.save(tmp_path / "gp.pt")
    gp2 = GPPotential.load(path)
    a = small_gp.predict(ethanol_frames[50:53])
    b = gp2.predict(ethanol_frames[50:53])  # the factor is rebuilt on this first uncertainty prediction
    for x, y in zip(a[:2], b[:2]):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    for x, y in zip(a[2:], b[2:]):
        np.testing.assert_allclose(x, y, rtol=1e-8)
    for name in ("lengthscales_", "signal_std_", "force_noise_", "mean_energy_", "std_scale_", "converged_"):
        assert np.all(getattr(gp2, name) == getattr(small_gp, name)), name
    with pytest.raises(ValueError, match="does not exist"):
        GPPotential.load(tmp_path / "missing.pt")


def test_calculator_results(small_gp, ethanol_frames):
    a = ethanol_frames[55].copy()
    a.calc = GPCalculator(small_gp)
    E = a.get_potential_energy()
    F = a.get_forces()
    Ep, Fp, _, Fs = small_gp.predict([a], include_noise=False)
    assert abs(E - Ep[0]) < 1e-10
    np.testing.assert_allclose(F, Fp[0])
    np.testing.assert_allclose(a.calc.results["forces_std"], Fs[0])
    assert a.calc.results["energy_std"] > 0


def test_descriptor_power_model_forces_save_load(ethanol_frames, tmp_path):
    """A non-default descriptor exponent is used consistently: forces = -grad E, save/load, old files = p 1."""
    R = ethanol_frames[40].get_positions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(descriptor_power=2.0, noise_floor=1e-3, progress=False, laplace=False).fit(ethanol_frames[:8])
        ref = GPPotential(descriptor_power=1.0, noise_floor=1e-3, progress=False, laplace=False).fit(ethanol_frames[:8])
    x2, _ = inverse_distances(np.stack([a.positions for a in ethanol_frames[:8]]), jacobian=False, power=2.0)
    np.testing.assert_allclose(gp._geo.X.numpy(), x2.numpy() * gp.feature_weights_, rtol=1e-12)
    E, F, _, _ = gp.predict_positions(R[None], return_std=False)
    np.testing.assert_allclose(F[0].ravel(), _fd_forces(gp, R, 1e-3), atol=1e-6 * max(1.0, np.abs(F).max()))
    assert not np.allclose(F, ref.predict_positions(R[None], return_std=False)[1], rtol=1e-4)
    path = gp.save(tmp_path / "p2.pt")
    gp2 = GPPotential.load(path)
    assert gp2.descriptor_power == 2.0
    np.testing.assert_allclose(gp2.predict_positions(R[None], return_std=False)[1], F, rtol=1e-10, atol=1e-12)
    state = torch.load(ref.save(tmp_path / "p1.pt"), weights_only=True)
    del state["params"]["descriptor_power"]  # a file written before the option existed
    torch.save(state, tmp_path / "old.pt")
    old = GPPotential.load(tmp_path / "old.pt")
    assert old.descriptor_power == 1.0
    np.testing.assert_allclose(old.predict_positions(R[None], return_std=False)[1],
                               ref.predict_positions(R[None], return_std=False)[1], rtol=1e-10, atol=1e-12)
    for bad in (0, -0.5, float("nan"), "1", True):
        with pytest.raises(ValueError, match="descriptor_power"):
            GPPotential(descriptor_power=bad, progress=False).fit(ethanol_frames[:4])


def test_bad_inputs(ethanol_frames):
    gp = GPPotential(progress=False)
    frames = [a.copy() for a in ethanol_frames[:5]]
    for k, a in enumerate(ethanol_frames[:5]):
        frames[k] = attach_labels(a, energy=a.get_potential_energy(), forces=a.get_forces())
    short = frames[2][:8]
    short = attach_labels(short, energy=1.0, forces=np.zeros((8, 3)))
    with pytest.raises(ValueError, match="frame 2 has 8 atoms"):
        gp.fit(frames[:2] + [short] + frames[3:])
    swapped = frames[3].copy()
    swapped.numbers = swapped.numbers[[2, 1, 0, 3, 4, 5, 6, 7, 8]]
    swapped = attach_labels(swapped, energy=1.0, forces=np.zeros((9, 3)))
    with pytest.raises(ValueError, match="frame 3 has element order"):
        gp.fit(frames[:3] + [swapped])
    nan = frames[1].copy()
    nan.positions[4, 0] = np.nan
    nan = attach_labels(nan, energy=1.0, forces=np.zeros((9, 3)))
    with pytest.raises(ValueError, match="frame 1.*non-finite"):
        gp.fit([frames[0], nan, frames[2]])
    with pytest.raises(ValueError, match="at least 2"):
        gp.fit(frames[:1])
    with pytest.raises(ValueError, match="no configurations"):
        gp.fit([])
    with pytest.raises(TypeError, match="frame 1"):
        gp.fit([frames[0], "not atoms"])
    with pytest.raises(ValueError, match="kernel"):
        GPPotential(kernel="linear").fit(frames)
    with pytest.raises(RuntimeError, match="not fitted"):
        gp.predict(frames[:1])


def test_duplicate_configurations_do_not_crash(ethanol_frames):
    frames = list(ethanol_frames[:6]) + [ethanol_frames[0], ethanol_frames[0], ethanol_frames[3]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(progress=False, max_iter=15).fit(frames)
    E, F, Es, Fs = gp.predict(ethanol_frames[20:22])
    assert np.all(np.isfinite(E)) and np.all(np.isfinite(F)) and np.all(Fs > 0)


def test_sklearn_style_params():
    gp = GPPotential(kernel="rbf", n_tune=30)
    assert gp.get_params()["kernel"] == "rbf"
    assert gp.set_params(n_tune=10) is gp and gp.n_tune == 10
    with pytest.raises(ValueError, match="unknown parameter"):
        gp.set_params(foo=1)
    assert "GPPotential(" in repr(gp)


@pytest.mark.parametrize("threads", [1, 2])
def test_in_place_cholesky_both_backends(threads):
    """scipy/OpenBLAS (one thread) and torch/LAPACK (several) give the same in-place factor."""
    from sciml.gp.solvers import cholesky_in_place as _cholesky_in_place

    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 40))
    K = A @ A.T + 300 * np.eye(300)
    ref = np.linalg.cholesky(K)
    work = K.copy()
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert _cholesky_in_place(work) == 0
    finally:
        torch.set_num_threads(old)
    np.testing.assert_allclose(np.tril(work), ref, rtol=1e-12, atol=1e-12)
    bad = -np.eye(5)
    assert _cholesky_in_place(bad) != 0


def test_laplace_flat_direction_is_reported_not_hidden():
    """A flat NLML direction (e.g. the energy noise of noiseless labels) gets no standard error; the
    identified parameters get standard errors from the rest of the Hessian."""
    from sciml.gp.laplace import LaplaceResult

    H = np.diag([4.0, 25.0, -1e-3, 100.0, 1.0])
    H[0, 1] = H[1, 0] = 2.0
    lap = LaplaceResult(np.zeros(5), H, 1.0, 0.0, [])
    assert not lap.positive_definite and lap.unidentified == ["log_energy_noise"]
    keep = [0, 1, 3, 4]
    ref = np.sqrt(np.diag(np.linalg.inv(H[np.ix_(keep, keep)])))
    np.testing.assert_allclose(lap.bse[keep], ref)
    assert np.isnan(lap.bse[2]) and "not determined" in lap.summary()
    ok = LaplaceResult(np.zeros(5), np.diag([1.0, 2, 3, 4, 5]), 1.0, 0.0, [])
    assert ok.positive_definite and ok.unidentified == [] and np.allclose(ok.bse, 1 / np.sqrt([1, 2, 3, 4, 5]))


def test_calibrate_gives_nominal_coverage_on_new_held_out_data(ethanol_frames):
    """Variance scaling fitted on one held-out set brings the 95% coverage on another set near 0.95."""
    from sciml.datasets import load_pes

    frames = load_pes("ethanol_gfn2_500K", index="100:400")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(progress=False, laplace=False).fit(frames[:40])
    before = evaluate(gp, frames[200:300])["forces_coverage_95"]
    out = gp.calibrate(frames[100:200])
    assert set(out) == {"energy", "forces", "energy_coverage_before", "forces_coverage_before"}
    after = evaluate(gp, frames[200:300])["forces_coverage_95"]
    assert 0.92 <= after <= 0.975, (before, after, out)
    assert abs(after - 0.95) <= max(abs(before - 0.95), 0.025)
    with pytest.raises(ValueError, match="training configurations"):
        gp.calibrate(frames[:30])
    with pytest.raises(ValueError, match="coverage"):
        gp.calibrate(frames[100:200], coverage=1.5)


def test_fast_posterior_mean_equals_covariance_times_weights(small_gp, ethanol_frames):
    """The O(N P D) mean (used for MD) is the same as K(x, X) alpha from the assembled covariance block."""
    from sciml.gp.kernels import assemble

    gp = small_gp
    pos = np.stack([a.get_positions() for a in ethanol_frames[40:45]])
    g = Geometry.from_positions(pos, gp.feature_weights_, gp.descriptor_power)  # with ARD, the weights the kernel sees
    Ks = assemble(g, gp._geo, gp._perms, *gp._coeffs(g, gp._geo)).reshape(5 * 28, -1)
    ref = (Ks @ torch.from_numpy(gp.alpha_)).reshape(5, 28).numpy()
    E, F, _, _ = gp.predict_positions(pos, return_std=False)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(E - gp.mean_energy_, ref[:, 0], atol=1e-9 * scale)
    np.testing.assert_allclose(F.reshape(5, 27), ref[:, 1:], atol=1e-9 * scale)


def test_adam_reports_convergence_honestly(ethanol_frames):
    """Adam stopped after 2 steps has not converged (and says so); given enough steps it meets its criterion
    and reaches the L-BFGS optimum of the same NLML to within its resolution."""
    kw = dict(progress=False, laplace=False, n_tune=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = GPPotential(optimizer="adam", max_iter=2, **kw).fit(ethanol_frames[:8])
        long = GPPotential(optimizer="adam", max_iter=400, **kw).fit(ethanol_frames[:8])
        ref = GPPotential(optimizer="lbfgs", **kw).fit(ethanol_frames[:8])
    assert short.converged_ is False and "max_iter=2" in short.optimizer_message_
    # max_iter applies to each stage: the shared length-scale, then one per element pair (the default)
    assert len(short.trace_) == 4 and list(short.trace_["stage"]) == ["isotropic"] * 2 + ["ard"] * 2
    assert long.converged_ is True and "adam:" in long.optimizer_message_ and len(long.trace_) < 400
    assert long.nlml_ <= short.nlml_
    assert abs(long.nlml_ - ref.nlml_) < 2.0, (long.nlml_, ref.nlml_)


def test_calculator_without_uncertainty_and_from_a_file(small_gp, ethanol_frames, tmp_path):
    a = ethanol_frames[56].copy()
    a.calc = GPCalculator(small_gp, uncertainty=False)
    E, F = a.get_potential_energy(), a.get_forces()
    Ep, Fp, _, _ = small_gp.predict([a], return_std=False)
    assert abs(E - Ep[0]) < 1e-10 and np.allclose(F, Fp[0])
    assert "energy_std" not in a.calc.results and "forces_std" not in a.calc.results
    path = small_gp.save(tmp_path / "gp.pt")
    b = ethanol_frames[56].copy()
    b.calc = GPCalculator(str(path))  # loaded by its format key
    assert abs(b.get_potential_energy() - E) < 1e-10
    assert b.calc.results["forces_std"].shape == (9, 3) and b.calc.results["energy_std"] > 0


def test_model_file_dispatch_and_errors(small_gp, tmp_path):
    from sciml.gp import load_model
    from sciml.gp.model_file import FORMAT

    path = small_gp.save(tmp_path / "gp.pt")
    assert FORMAT == "sciml.gp.GPPotential/2" and isinstance(load_model(path), GPPotential)
    torch.save({"format": "sciml.gp.LocalGPPotential/1"}, tmp_path / "local.pt")
    import importlib.util

    if importlib.util.find_spec("sciml.gp.local_gp") is None:  # before the local GP lands: a clear error
        with pytest.raises(ValueError, match="LocalGPPotential.*not available"):
            load_model(tmp_path / "local.pt")
    torch.save({"format": "somebody.else/1"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="known GP model kinds"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("not a model")
    with pytest.raises(ValueError, match="not a sciml GP model file"):
        GPCalculator(tmp_path / "junk.pt")


def test_saved_file_holds_what_prediction_needs(small_gp, ethanol_frames, tmp_path):
    """Without the factor the file is O(N M) (not O((N M)^2)); the factor comes back only on request."""
    small = small_gp.save(tmp_path / "small.pt")
    big = small_gp.save(tmp_path / "big.pt", store_factor=True)
    n_obs = small_gp.n_train_ * 28
    assert small.stat().st_size < 40_000 + 8 * small_gp.n_train_ * (4 * 9 + 1) * 2
    assert big.stat().st_size >= 8 * n_obs**2
    a, b = GPPotential.load(small), GPPotential.load(big)
    assert a._solver is None and b._solver is not None
    ref = small_gp.predict(ethanol_frames[50:52])
    for x, y in zip(b.predict(ethanol_frames[50:52]), ref):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


def test_bad_prediction_and_training_inputs_name_frame_and_cause(small_gp, ethanol_frames):
    from ase.build import molecule

    odd = ethanol_frames[3].copy()
    odd.numbers[8] = 7  # an N where the model's molecule has an H
    with pytest.raises(ValueError, match=r"prediction frames: frame 1 contains element\(s\) \['N'\]"):
        small_gp.predict([ethanol_frames[2], odd])
    with pytest.raises(ValueError, match=r"frame 0 contains element\(s\) \['S'\]"):
        small_gp.predict([molecule("CH3SH")])
    nan = ethanol_frames[4].copy()
    nan.positions[2, 1] = np.nan
    with pytest.raises(ValueError, match="prediction frames: frame 2: non-finite"):
        small_gp.predict([ethanol_frames[2], ethanol_frames[3], nan])
    with pytest.raises(ValueError, match="frame 1 has non-finite"):
        small_gp.predict_positions(np.stack([ethanol_frames[2].positions, nan.positions]))
    no_forces = ethanol_frames[5].copy()
    no_forces.calc = None
    from sciml.atoms import attach_labels

    no_forces = attach_labels(no_forces, energy=-300.0)
    with pytest.raises(ValueError, match="training frames: frame 2: missing forces"):
        GPPotential(progress=False).fit([ethanol_frames[0], ethanol_frames[1], no_forces])
