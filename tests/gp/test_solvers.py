"""Solvers: matrix-free products, CG = Cholesky on a small case, the memory-based choice."""
import warnings

import numpy as np
import pytest
import torch

from sciml.gp import GPPotential
from sciml.gp.descriptors import Geometry, Permutations
from sciml.gp.kernel_products import PermutedTraining, kernel_times
from sciml.gp.kernels import assemble, mixture_coefficients, squared_distances
from sciml.gp.solvers import CholeskySolver, choose_solver, parse_memory
from sciml.gp.symmetry import bond_graph, permutation_group

from gp_testdata import distorted_frames


def test_matrix_free_product_equals_assembled_covariance():
    """K(x, X) V for several right-hand sides, without forming K, equals the assembled block times V."""
    frames = distorted_frames("CH3CH2OH", 7, 0.05, seed=1, label=False)
    pos = np.stack([a.positions for a in frames])
    P = Permutations(permutation_group(bond_graph(frames[0])), 9)
    w = np.random.default_rng(3).uniform(0.5, 1.5, 36)  # descriptor weights (need not be orbit-constant here)
    gx, gt = Geometry.from_positions(pos[:5], w), Geometry.from_positions(pos[5:], w)
    c = mixture_coefficients(squared_distances(gt, gx, P), torch.tensor([0.3, 1.2]), torch.tensor([0.7, 0.3]),
                             torch.tensor(2.0), "matern52")
    K = assemble(gt, gx, P, *c).reshape(2 * 28, 5 * 28)
    V = torch.as_tensor(np.random.default_rng(0).normal(size=(5 * 28, 3)))
    pt = PermutedTraining(gx, P)
    e, f = kernel_times(gt, c, pt, pt.weights(V))
    ref = (K @ V).reshape(2, 28, 3)
    scale = float(ref.abs().max())
    np.testing.assert_allclose(e.numpy(), ref[:, 0].numpy(), atol=1e-12 * scale)
    np.testing.assert_allclose(f.numpy(), ref[:, 1:].numpy(), atol=1e-12 * scale)


@pytest.fixture(scope="module")
def cg_and_cholesky(ethanol_frames):
    """The same model (same tuning subset, noise raised to 3 meV(/A)) solved both ways; 40 frames, 1,120 outputs."""
    kw = dict(progress=False, laplace=False, min_noise=3e-3, n_tune=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chol = GPPotential(solver="cholesky", **kw).fit(ethanol_frames[:40])
        cg = GPPotential(solver="cg", n_pivots=16, cg_tol=1e-10, **kw).fit(ethanol_frames[:40])
    return chol, cg


def test_cg_predictions_equal_cholesky(cg_and_cholesky, ethanol_frames):
    chol, cg = cg_and_cholesky
    assert chol.solver_ == "cholesky" and cg.solver_ == "cg"
    np.testing.assert_allclose(cg.lengthscales_, chol.lengthscales_, rtol=1e-10)
    info = cg.solver_info_
    assert info["n_pivots"] == 16 and max(info["cg_residuals"]) < 1e-9
    assert 1 < max(info["cg_iterations"]) < 1120  # iterated, and fewer than the size of the system
    assert chol.tuned_noise_[1] < 1e-4 < 1e-3 < chol.force_noise_  # raised to the floor after tuning (then rescaled with s)
    assert abs(cg.force_noise_ / chol.force_noise_ - 1) < 1e-7
    E0, F0, Es0, Fs0 = chol.predict(ethanol_frames[45:55])
    E1, F1, Es1, Fs1 = cg.predict(ethanol_frames[45:55])
    assert abs(cg.signal_std_ / chol.signal_std_ - 1) < 1e-7 and cg.mean_energy_ == chol.mean_energy_
    np.testing.assert_allclose(E1 - cg.mean_energy_, E0 - chol.mean_energy_, atol=1e-6 * np.abs(E0 - chol.mean_energy_).max())
    np.testing.assert_allclose(F1, F0, atol=1e-6 * np.abs(F0).max())
    # CG variances are those of the GP conditioned on the pivot structures only: never below the full-data ones
    assert np.all(Fs1 >= Fs0 * (1 - 1e-9)) and np.all(Es1 >= Es0 * (1 - 1e-9))


def test_solver_choice_follows_the_memory_budget(ethanol_frames):
    assert choose_solver("auto", 1000, 28, 12, parse_memory("12GB")) == "cholesky"   # 6.3 GB factor
    assert choose_solver("auto", 1000, 64, 6, parse_memory("12GB")) == "cg"         # aspirin: 33 GB factor
    assert CholeskySolver.memory(64_000) == 8 * 64_000**2
    with pytest.raises(MemoryError, match="max_memory"):
        choose_solver("cholesky", 1000, 64, 6, parse_memory("12GB"))
    with pytest.raises(ValueError, match="solver"):
        choose_solver("lu", 10, 28, 1, 10**9)
    assert parse_memory("1.5GB") == 1_500_000_000 and parse_memory("2GiB") == 2 * 2**30 and parse_memory(5e8) == 500_000_000
    for bad in ("lots", -1, "GB"):
        with pytest.raises(ValueError, match="max_memory"):
            parse_memory(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = GPPotential(progress=False, laplace=False, max_memory=30 * 28 * 28 * 8 * 30, n_pivots=4,
                         max_iter=5).fit(ethanol_frames[:31])  # the 868-square factor does not fit: CG
    assert gp.solver_ == "cg" and gp.solver_info_["solver"] == "cg"
