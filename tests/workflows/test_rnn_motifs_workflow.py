"""rnn_motifs workflow: one job per seed, report compares motifs before vs after training."""
from __future__ import annotations

import json

import torch

from sciml.workflows import rnn_motifs
from sciml.workflows.engine import Job, run_workflow

torch.set_num_threads(1)


def test_plan_is_one_json_able_job_per_seed():
    cfg = rnn_motifs.Config(seeds=[3, 5, 7])
    jobs = rnn_motifs.plan(cfg)
    assert [j.name for j in jobs] == ["seed_3", "seed_5", "seed_7"]
    assert all(isinstance(j, Job) and j.fn.__module__ == "sciml.motifs.study" for j in jobs)
    json.dumps([j.kwargs for j in jobs])
    assert jobs[1].kwargs["seed"] == 5 and "seeds" not in jobs[1].kwargs


def test_demo_runs_end_to_end(tmp_path):
    cfg = rnn_motifs.demo_config()
    cfg.n_random = 10
    res = run_workflow("rnn_motifs", cfg, out=tmp_path, executor="local")
    assert res.ok, res.summary()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_seeds"] == 3 and 0 <= m["accuracy_mean"] <= 1
    assert set(m["z_before_mean"]) == set(m["z_after_mean"]) and "030T" in m["p_ttest"]
    for f in ("report.md", "motif_changes.csv", "z_profiles.png", "jobs/seed_0/result.json",
              "jobs/seed_0/snapshots/init.pt"):
        assert (tmp_path / f).exists(), f
    again = run_workflow("rnn_motifs", cfg, out=tmp_path, executor="local")
    assert sorted(again.skipped) == ["seed_0", "seed_1", "seed_2"]
