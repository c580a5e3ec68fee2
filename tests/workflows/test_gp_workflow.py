"""gp_active_learning workflow end to end on demo settings (and an idempotent re-run)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from sciml.workflows.engine import run_workflow

torch.set_num_threads(1)


def test_gp_active_learning_demo(tmp_path):
    from sciml.workflows import gp_active_learning as wf

    cfg = wf.demo_config()
    jobs = wf.plan(cfg)
    assert [j.name for j in jobs] == ["seed_00"]
    out = tmp_path / "gpal"
    run_workflow("gp_active_learning", cfg, out=out, executor="local")
    for f in ("metrics.json", "report.md", "learning_curve.csv", "learning_curve.png"):
        assert (out / f).exists(), f
    m = json.loads((out / "metrics.json").read_text())
    curve = pd.read_csv(out / "learning_curve.csv")
    assert curve["n_train"].iloc[0] == cfg.n_initial
    assert curve["n_train"].is_monotonic_increasing and curve["n_train"].iloc[-1] > cfg.n_initial
    assert m["reference_calls_mean"] <= cfg.max_reference_calls
    job = out / "jobs" / "seed_00"
    assert (job / "dataset.extxyz").exists() and (job / "model.pt").exists()
    # the reported final errors and coverage, recomputed independently from the saved final model on the same
    # held-out frames (the job's split: a seeded permutation of the data set, the last n_test frames)
    import numpy as np
    from scipy.stats import norm

    from sciml.datasets import load_pes
    from sciml.gp import GPPotential

    frames = load_pes(cfg.dataset)
    perm = np.random.default_rng(0).permutation(len(frames))
    test = [frames[int(k)] for k in perm[len(frames) - cfg.n_test:]]
    model = GPPotential.load(job / "model.pt")
    _, F, _, Fs = model.predict(test, return_std=True, include_noise=True)
    err = np.abs(F - np.stack([a.get_forces() for a in test]))
    assert abs(m["final_forces_mae_meV_per_A"] - 1000 * err.mean()) < 1e-6
    assert abs(m["final_forces_coverage_95"] - float(np.mean(err <= norm.ppf(0.975) * Fs))) < 1e-12
    run_workflow("gp_active_learning", cfg, out=out, executor="local")  # skips the finished job
    assert json.loads((out / "metrics.json").read_text()) == m


@pytest.mark.slow
def test_gp_active_learning_onthefly_on_a_metal(tmp_path):
    """mode: onthefly -- local GP learnt during EMT MD of a bundled alloy trajectory."""
    from sciml.workflows import gp_active_learning as wf

    cfg = wf.onthefly_demo_config()
    out = tmp_path / "otf"
    run_workflow("gp_active_learning", cfg, out=out, executor="local")
    curve = pd.read_csv(out / "learning_curve.csv")
    m = json.loads((out / "metrics.json").read_text())
    assert len(curve) >= 1 and curve["n_train"].is_monotonic_increasing
    assert m["reference_calls_mean"] <= cfg.max_reference_calls
    job = out / "jobs" / "seed_00"
    log = pd.read_csv(job / "md_log.csv")
    labels = pd.read_csv(job / "labels.csv")
    assert len(log) == cfg.otf_steps and log["labelled"].sum() == len(labels)
    assert (labels["max_local_std"] > labels["threshold"]).all()
    assert (labels["n_sparse"].diff().dropna() > 0).all()      # each label adds inducing environments
    assert (job / "model.pt").exists() and (job / "dataset.extxyz").exists()
