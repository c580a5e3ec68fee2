"""potential_md and ensemble workflows end to end on tiny settings (and idempotent re-runs)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from sciml.workflows.engine import run_workflow

torch.set_num_threads(1)


def test_potential_md_demo_end_to_end(tmp_path):
    from sciml.workflows import potential_md

    cfg = potential_md.demo_config()
    res = run_workflow("potential_md", cfg, out=tmp_path / "pmd", executor="local")
    out = tmp_path / "pmd"
    for f in ("metrics.json", "report.md", "parity.png", "md_temperature.png", "md_nve.csv", "md_langevin.csv",
              "test_errors.csv"):
        assert (out / f).exists(), f
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_frames"] == cfg.n_frames and m["n_test"] == cfg.n_frames - cfg.n_train - cfg.n_valid
    assert math.isfinite(m["test_forces_mae_meV_per_A"]) and m["test_forces_mae_meV_per_A"] > 0
    assert abs(m["nve_drift_eV_per_atom_per_ps"]) < 0.05  # even a 15 s model conserves energy roughly
    assert 100 < m["langevin_mean_temperature_K"] < 600
    assert (out / "jobs" / "potential_md" / "model.pt").exists()
    # idempotent: a second run skips the finished job and rewrites the same report
    res2 = run_workflow("potential_md", cfg, out=out, executor="local")
    assert json.loads((out / "metrics.json").read_text()) == m
    del res, res2


def test_ensemble_demo_committee_uncertainty(tmp_path):
    """The report's numbers recomputed independently: member predictions averaged by hand, Spearman's rho
    from scipy, coverage counted from the per-atom table."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    from sciml.potentials import SciMLCalculator, load_model
    from sciml.workflows import ensemble

    cfg = ensemble.demo_config()
    jobs = ensemble.plan(cfg)
    assert [j.name for j in jobs] == ["model_00", "model_01", "model_02"]
    assert len({j.kwargs["seed"] for j in jobs}) == 3
    run_workflow("ensemble", cfg, out=tmp_path / "ens", executor="local")
    out = tmp_path / "ens"
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_models"] == 3 and m["n_structures"] == cfg.n_test
    for f in ("report.md", "uncertainty.png", "members.csv", "uncertainty_atoms.csv"):
        assert (out / f).exists(), f
    # committee mean and member errors from the three model files, one model at a time
    _, _, test = ensemble._frames(cfg)
    paths = sorted((out / "jobs").glob("model_*/model.pt"))
    assert len(paths) == 3
    preds = []
    for p in paths:
        calc = SciMLCalculator(load_model(p))
        preds.append([calc.get_forces(a.copy()) for a in test])
    ref = [a.get_forces() for a in test]
    member_mae = [1e3 * np.mean(np.concatenate([np.abs(f - r).ravel() for f, r in zip(pr, ref)])) for pr in preds]
    members = pd.read_csv(out / "members.csv")
    np.testing.assert_allclose(sorted(members.forces_mae_meV_per_A), sorted(member_mae), rtol=1e-6)
    mean_f = [np.mean([pr[k] for pr in preds], axis=0) for k in range(len(test))]
    committee_mae = 1e3 * np.mean(np.concatenate([np.abs(f - r).ravel() for f, r in zip(mean_f, ref)]))
    assert m["forces_mae_meV_per_A"] == pytest.approx(committee_mae, rel=1e-6)
    assert m["member_forces_mae_meV_per_A_mean"] == pytest.approx(np.mean(member_mae), rel=1e-6)
    # uncertainty statistics from the per-atom table
    atoms = pd.read_csv(out / "uncertainty_atoms.csv")
    assert len(atoms) == sum(len(a) for a in test)
    rho = stats.spearmanr(atoms.force_std_eV_A, atoms.force_error_eV_A).statistic
    assert m["forces_spearman_std_vs_error"] == pytest.approx(rho, abs=1e-12)
    err = atoms[["err_x", "err_y", "err_z"]].to_numpy().ravel()
    std = atoms[["std_x", "std_y", "std_z"]].to_numpy().ravel()
    assert m["forces_coverage_95"] == pytest.approx(np.mean(np.abs(err) <= 1.959963984540054 * std), abs=1e-12)
    assert m["forces_coverage_68"] == pytest.approx(np.mean(np.abs(err) <= std), abs=1e-12)
    assert m["forces_std_mean_meV_per_A"] == pytest.approx(1e3 * std.mean(), rel=1e-9)
