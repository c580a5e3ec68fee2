"""potential_md and ensemble workflows end to end on tiny settings (and idempotent re-runs)."""
from __future__ import annotations

import json
import math

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
    from sciml.workflows import ensemble

    cfg = ensemble.demo_config()
    jobs = ensemble.plan(cfg)
    assert [j.name for j in jobs] == ["model_00", "model_01", "model_02"]
    assert len({j.kwargs["seed"] for j in jobs}) == 3
    run_workflow("ensemble", cfg, out=tmp_path / "ens", executor="local")
    out = tmp_path / "ens"
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_models"] == 3 and m["n_structures"] == cfg.n_test
    assert m["forces_std_mean_meV_per_A"] > 0
    assert -1 <= m["forces_spearman_std_vs_error"] <= 1
    assert 0 <= m["forces_coverage_68"] <= m["forces_coverage_95"] <= 1
    # the committee mean is at least as good as the average member (convexity of |.| on average)
    assert m["forces_mae_meV_per_A"] <= m["member_forces_mae_meV_per_A_mean"] + 1e-9
    for f in ("report.md", "uncertainty.png", "members.csv", "uncertainty_atoms.csv"):
        assert (out / f).exists(), f
