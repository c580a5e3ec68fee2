"""Per-atom committee uncertainty ranks the actual force errors on held-out alloy trajectories."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sciml.potentials import SciMLCalculator, TrainConfig, train_potential
from sciml.potentials.uncertainty import calibration_summary, committee_errors

N_MEMBERS = 3


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    """Three small models (seeds 0-2) trained on 4 trajectories of the bundled alloy set; 2 other trajectories held out."""
    from sciml.datasets import load_alloys

    frames = load_alloys()
    by_traj = {}
    for a in frames:
        by_traj.setdefault(int(a.info["trajectory"]), []).append(a)
    train = [a for t in (0, 1, 2, 3) for a in by_traj[t][::2]]
    valid = [a for a in by_traj[4][::4]]
    test = [a for t in (6, 7) for a in by_traj[t][::4]]
    d = tmp_path_factory.mktemp("committee")
    models = []
    for seed in range(N_MEMBERS):
        cfg = TrainConfig(model=dict(num_channels=8, cutoff=4.0, radial_hidden=16), batch_size=4, max_epochs=30,
                          scheduler="cosine", dtype="float32", stress_weight=0.0, seed=seed, progress=False)
        models.append(train_potential(train, valid, d / f"m{seed}.pt", cfg, resume=False).model)
    return SciMLCalculator(models), test


@pytest.mark.slow
def test_per_atom_force_std_ranks_force_errors_on_held_out_frames(committee):
    """Spearman's rho between the per-atom committee spread |sigma_F| and the per-atom error |dF| must exceed the
    upper 0.1 % point of its null distribution (independent ranks) at this n: both the normal approximation
    z_0.999 / sqrt(n - 1) and the 99.9th percentile of 2,000 random permutations."""
    calc, test = committee
    structures, atoms = committee_errors(calc, test)
    n = len(atoms)
    rho = stats.spearmanr(atoms.force_std_eV_A, atoms.force_error_eV_A).statistic
    rng = np.random.default_rng(0)
    err = atoms.force_error_eV_A.to_numpy()
    null = [stats.spearmanr(rng.permutation(atoms.force_std_eV_A.to_numpy()), err).statistic for _ in range(2000)]
    bound = max(stats.norm.ppf(0.999) / np.sqrt(n - 1), np.quantile(null, 0.999))
    print(f"per-atom Spearman rho = {rho:.3f} (n = {n} atoms), null bound {bound:.3f}")
    assert n > 500 and bound < 0.15
    assert rho > bound and rho > 0.2
    # the calculator exposes the same per-atom spreads the ranking used, and the summary reports that rho
    summary = calibration_summary(structures, atoms)
    assert summary["forces_spearman_std_vs_error"] == pytest.approx(rho, abs=1e-12)
    assert summary["forces_spearman_null_999"] == pytest.approx(stats.norm.ppf(0.999) / np.sqrt(n - 1))
    a = test[0].copy()
    a.calc = calc
    a.get_forces()
    F = np.stack([SciMLCalculator(m).get_forces(a) for m in calc.models])
    np.testing.assert_allclose(calc.results["forces_std"], F.std(0, ddof=1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(calc.results["forces_std"], axis=1),
                               atoms[atoms.structure == 0].force_std_eV_A.to_numpy(), rtol=1e-6)
    E = np.stack([SciMLCalculator(m).get_potential_energies(a) for m in calc.models])
    np.testing.assert_allclose(calc.results["energies_std"], E.std(0, ddof=1), rtol=1e-6, atol=1e-9)
