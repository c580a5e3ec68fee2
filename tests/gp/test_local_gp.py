"""LocalGPPotential: exact derivatives, extensivity, hyperparameter recovery, save/load, calibration, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.atoms import attach_labels, frame_labels
from sciml.gp import LocalGPPotential
from sciml.gp.local_gp import FORMAT, evaluate_local
from sciml.gp.soap import build_environments
from sciml.gp.sparse import JITTER
from sciml.gp.sparse_features import assemble_rows, kernel0, prepare_batch, raw_rows

from local_testdata import alloy_set, triclinic_alloy

SMALL = dict(cutoff=4.0, n_max=3, l_max=2, n_sparse=60, n_tune=6, n_sparse_tune=40, progress=False, max_iter=40)


@pytest.fixture(scope="module")
def fitted():
    frames = alloy_set(10, seed=0, repeat=(2, 2, 2))
    gp = LocalGPPotential(**SMALL).fit(frames)
    return gp, frames


def test_fit_returns_self_with_learned_attributes(fitted):
    gp, frames = fitted
    assert gp.targets_ == ("energy", "forces", "stress")
    assert gp.n_train_ == 10 and gp.n_envs_ == 80 and len(gp.inducing_) == 60
    assert gp.species_ == [28, 29, 79]
    for name in ("lengthscale", "signal_std", "pair_lengthscale", "pair_signal_std", "energy_noise", "forces_noise",
                 "stress_noise"):
        assert np.isfinite(gp.tune_laplace_.table().loc[name, "std_err"]) or name in gp.tune_laplace_.unidentified
    assert set(gp.laplace_.names) == {"signal_std", "pair_signal_std", "energy_noise", "forces_noise", "stress_noise"}
    assert gp.pair_ is not None and gp.pair_lengthscale_ >= gp.pair_.spacing
    assert isinstance(gp.score(frames), float) and gp.score(frames) > 0.5


def test_forces_and_stress_are_exact_derivatives_of_the_predicted_energy(fitted):
    gp, _ = fitted
    atoms = triclinic_alloy(40)
    p = gp.predict([atoms])
    h = 1e-5   # central differences: O(h^2) truncation vs round-off of the interpolating energy
    for i, c in ((0, 0), (3, 1), (6, 2)):
        ap, am = atoms.copy(), atoms.copy()
        ap.positions[i, c] += h
        am.positions[i, c] -= h
        fd = -(gp.predict([ap]).energy[0] - gp.predict([am]).energy[0]) / (2 * h)
        assert p.forces[0][i, c] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    for v, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        eps = np.zeros((3, 3))
        eps[a, b] = eps[b, a] = h if a == b else h / 2
        ap, am = atoms.copy(), atoms.copy()
        ap.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        am.set_cell(atoms.cell.array @ (np.eye(3) - eps), scale_atoms=True)
        fd = (gp.predict([ap]).energy[0] - gp.predict([am]).energy[0]) / (2 * h) / atoms.get_volume()
        assert p.stress[0][v] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    assert np.abs(p.forces[0].sum(0)).max() < 1e-10          # translation invariance


def test_supercell_is_extensive(fitted):
    gp, _ = fitted
    atoms = triclinic_alloy(41)
    big = atoms.repeat((2, 2, 2))
    p1, p8 = gp.predict([atoms], return_std=True), gp.predict([big], return_std=True)
    assert p8.energy[0] == pytest.approx(8 * p1.energy[0], rel=1e-10)
    np.testing.assert_allclose(p8.forces[0][: len(atoms)], p1.forces[0], atol=1e-10)
    np.testing.assert_allclose(p8.stress[0], p1.stress[0], atol=1e-10)
    np.testing.assert_allclose(p8.local_energy_std[0][: len(atoms)], p1.local_energy_std[0], rtol=1e-8)


def test_uncertainty_grows_away_from_the_data(fitted):
    gp, frames = fitted
    near = gp.predict([frames[0]], return_std=True)
    far_atoms = triclinic_alloy(42, rattle=0.45)
    far = gp.predict([far_atoms], return_std=True)
    assert far.local_energy_std[0].mean() > near.local_energy_std[0].mean()
    assert far.forces_std[0].mean() > 1.5 * near.forces_std[0].mean()


def test_save_load_round_trip(fitted, tmp_path):
    gp, frames = fitted
    path = gp.save(tmp_path / "m.pt")
    assert torch.load(path, weights_only=True)["format"] == FORMAT
    gp2 = LocalGPPotential.load(path)
    a, b = gp.predict(frames[:2], return_std=True), gp2.predict(frames[:2], return_std=True)
    np.testing.assert_allclose(a.energy, b.energy, rtol=1e-12)
    np.testing.assert_allclose(a.forces_std[1], b.forces_std[1], rtol=1e-10)
    res = gp2.calculator_results(frames[0])
    assert {"energy", "forces", "stress", "energy_std", "forces_std", "local_energy_std"} <= set(res)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(Exception):
        LocalGPPotential.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not exist"):
        LocalGPPotential.load(tmp_path / "missing.pt")


def test_calibration_refuses_training_frames_and_holds_on_new_frames(fitted):
    import copy

    gp, frames = fitted
    gp = copy.deepcopy(gp)
    with pytest.raises(ValueError, match=r"frames\[1\] is a training frame"):
        gp.calibrate([alloy_set(1, seed=90, repeat=(2, 2, 2))[0], frames[3]])
    valid = alloy_set(20, seed=100, repeat=(2, 2, 2))
    info = gp.calibrate(valid)
    assert info["forces_coverage"] == pytest.approx(0.95, abs=0.01)
    test = alloy_set(20, seed=200, repeat=(2, 2, 2))
    m = evaluate_local(gp, test)
    # unseen frames: calibrated coverage near the nominal level, and nearer than the raw one
    assert 0.8 <= m["forces_coverage_95"] <= 0.99
    assert abs(m["forces_coverage_95"] - 0.95) <= abs(m["forces_coverage_95_raw"] - 0.95) + 0.01
    assert m["calibrated"] and "forces_coverage_95_raw" in m and "stress_mae_GPa" in m


def test_bad_input_names_frame_and_cause(fitted):
    gp, frames = fitted
    ag = frames[0].copy()
    ag.numbers[2] = 47
    with pytest.raises(ValueError, match=r"frames\[1\] contains element\(s\) Ag"):
        gp.predict([frames[0], ag])
    nan = frames[0].copy()
    nan.positions[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"frames\[0\] has non-finite"):
        gp.predict([nan])
    flat = frames[0].copy()
    cell = flat.cell.array.copy()
    cell[2] = cell[0] + cell[1]
    flat.set_cell(cell)
    with pytest.raises(ValueError, match=r"frames\[0\] is periodic but its cell has zero volume"):
        gp.predict([flat])
    no_forces = [attach_labels(a, energy=frame_labels(a)["energy"]) for a in frames[:3]]
    with pytest.raises(ValueError, match=r"frames\[0\] has no forces label"):
        LocalGPPotential(**dict(SMALL, targets=("energy", "forces"))).fit(no_forces)
    with pytest.raises(ValueError, match="n_sparse must be a positive integer"):
        LocalGPPotential(n_sparse=0).fit(frames)


def test_hyperparameters_recovered_from_prior_samples():
    """Labels drawn from the model's own prior (all environments inducing): the fit recovers them."""
    truth = dict(lengthscale=0.8, signal=0.4, energy=0.01, forces=0.03)
    structures = [triclinic_alloy(300 + k, repeat=(2, 2, 1), rattle=0.2) for k in range(40)]
    gp = LocalGPPotential(cutoff=4.0, n_max=3, l_max=2, n_sparse=10_000, n_tune=40, n_sparse_tune=10_000,
                          targets=("energy", "forces"), progress=False, max_iter=200,
                          pair_term=False)     # labels from the SOAP-only prior
    species = sorted(set(int(z) for a in structures for z in a.numbers))
    from sciml.gp.soap import SOAPDescriptor

    desc = SOAPDescriptor(species, gp.cutoff, gp.n_max, gp.l_max)
    env = build_environments(structures, species, gp.cutoff)
    batch = prepare_batch(desc, env)
    X = batch.x.numpy()
    w = torch.as_tensor(1.0 / (X.shape[1] * np.maximum(X.var(0), 1e-3 * np.median(X.var(0)[X.var(0) > 0]))))
    E, F, _ = assemble_rows(raw_rows(desc, batch, batch.x, env.species, weights=w), truth["lengthscale"])
    Phi = torch.cat([E, F.reshape(-1, E.shape[1])]).numpy()
    K0 = kernel0(batch.x, env.species, batch.x, env.species, truth["lengthscale"], w).numpy()
    C = truth["signal"] ** 2 * Phi @ np.linalg.solve(K0 + JITTER * np.eye(len(K0)), Phi.T)
    noise = np.concatenate([truth["energy"] ** 2 * env.frame_sizes, np.full(F.shape[0] * 3, truth["forces"] ** 2)])
    y = np.linalg.cholesky(C + np.diag(noise)) @ np.random.default_rng(7).normal(size=len(C))
    n_f = len(structures)
    forces = y[n_f:].reshape(-1, 3)
    starts = np.concatenate([[0], np.cumsum(env.frame_sizes)])
    frames = [attach_labels(a, energy=y[k], forces=forces[starts[k]:starts[k + 1]]) for k, a in enumerate(structures)]
    gp.fit(frames)
    assert gp.lengthscale_ == pytest.approx(truth["lengthscale"], rel=0.25)
    assert gp.signal_std_ == pytest.approx(truth["signal"], rel=0.3)
    assert gp.noise_["forces"] == pytest.approx(truth["forces"], rel=0.15)
    t = gp.tune_laplace_.table()
    z = (np.log(gp.lengthscale_) - np.log(truth["lengthscale"])) / t.loc["lengthscale", "std_err"]
    assert abs(z) < 4


def test_gp_calculator_runs_the_local_gp_from_its_file(fitted, tmp_path):
    from sciml.gp import GPCalculator

    gp, frames = fitted
    path = gp.save(tmp_path / "local.pt")
    atoms = frames[2].copy()
    atoms.calc = GPCalculator(path)
    p = gp.predict([frames[2]], return_std=True, include_noise=False)
    assert atoms.get_potential_energy() == pytest.approx(p.energy[0], rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), p.forces[0], atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), p.stress[0], atol=1e-12)
    np.testing.assert_allclose(atoms.calc.results["local_energy_std"], p.local_energy_std[0], rtol=1e-10)
    assert atoms.calc.results["forces_std"].shape == (len(atoms), 3) and atoms.calc.results["energy_std"] > 0


def test_dot_product_kernel_fits_and_differentiates(tmp_path):
    frames = alloy_set(6, seed=0, repeat=(2, 2, 2))
    gp = LocalGPPotential(**dict(SMALL, kernel="dot", zeta=2)).fit(frames)
    assert np.isnan(gp.lengthscale_) and gp.tune_laplace_ is None and gp.laplace_ is not None
    atoms = triclinic_alloy(43)
    h = 1e-5
    ap, am = atoms.copy(), atoms.copy()
    ap.positions[2, 1] += h
    am.positions[2, 1] -= h
    fd = -(gp.predict([ap]).energy[0] - gp.predict([am]).energy[0]) / (2 * h)
    assert gp.predict([atoms]).forces[0][2, 1] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    gp2 = LocalGPPotential.load(gp.save(tmp_path / "dot.pt"))
    assert gp2.predict([atoms]).energy[0] == pytest.approx(gp.predict([atoms]).energy[0], rel=1e-12)
    with pytest.raises(ValueError, match="kernel must be"):
        LocalGPPotential(kernel="matern").fit(frames)


def test_unnormalised_radial_descriptor_fits_differentiates_and_round_trips(tmp_path):
    frames = alloy_set(6, seed=1, repeat=(2, 2, 2))
    gp = LocalGPPotential(**dict(SMALL, normalise=False, l_max=0, n_max=4, energy_noise_max=0.01)).fit(frames)
    assert gp.descriptor_.normalise is False and gp.noise_["energy"] <= 0.01 * (1 + 1e-9)
    atoms = triclinic_alloy(44)
    h = 1e-5
    p = gp.predict([atoms])
    for i, c in ((1, 0), (4, 2)):
        ap, am = atoms.copy(), atoms.copy()
        ap.positions[i, c] += h
        am.positions[i, c] -= h
        fd = -(gp.predict([ap]).energy[0] - gp.predict([am]).energy[0]) / (2 * h)
        assert p.forces[0][i, c] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    # the unnormalised descriptor sees the density: compressing the cell by 3 % changes it by more than 5 %
    x = gp.descriptors([atoms])[0]
    small = atoms.copy()
    small.set_cell(atoms.cell.array * 0.97, scale_atoms=True)
    assert np.linalg.norm(gp.descriptors([small])[0] - x) > 0.05 * np.linalg.norm(x)
    gp2 = LocalGPPotential.load(gp.save(tmp_path / "raw.pt"))
    assert gp2.descriptor_.normalise is False
    assert gp2.predict([atoms]).energy[0] == pytest.approx(p.energy[0], rel=1e-12)
    with pytest.raises(ValueError, match="needs normalise=True"):
        LocalGPPotential(kernel="dot", normalise=False).fit(frames)
    with pytest.raises(ValueError, match="energy_noise_max"):
        LocalGPPotential(energy_noise_max=0.0).fit(frames)
