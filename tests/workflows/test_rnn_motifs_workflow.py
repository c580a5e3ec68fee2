"""rnn_motifs workflow: one job per seed, report compares motifs before vs after training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sciml.motifs import RNNClassifier, make_splice_dataset
from sciml.motifs.calibration import expected_calibration_error
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
    assert m["n_seeds"] == 3
    assert set(m["z_before_mean"]) == set(m["z_after_mean"]) and "030T" in m["p_ttest"]
    for f in ("report.md", "motif_changes.csv", "z_profiles.png", "reliability.png", "calibration.csv",
              "jobs/seed_0/result.json", "jobs/seed_0/snapshots/init.pt", "jobs/seed_0/model.pt"):
        assert (tmp_path / f).exists(), f
    # the reported accuracy is that of the saved (calibrated) networks on the regenerated test windows,
    # and the networks learned the task: above the majority-class rate of the test windows
    ds = make_splice_dataset(cfg.n_train + cfg.n_valid + cfg.n_test, length=cfg.length,
                             decoy_fraction=cfg.decoy_fraction, seed=cfg.data_seed)
    _, _, test = ds.split(cfg.n_train, cfg.n_valid, seed=cfg.data_seed)
    accs, eces = [], []
    for s in cfg.seeds:
        res = json.loads((tmp_path / "jobs" / f"seed_{s}" / "result.json").read_text())
        clf = RNNClassifier.load(tmp_path / "jobs" / f"seed_{s}" / "model.pt")
        assert res["accuracy"] == clf.score(test)
        assert res["calibration"]["accuracy_test_before"] == res["accuracy"]  # temperature: same predictions
        assert res["calibration"]["ece_test_after"] == pytest.approx(
            expected_calibration_error(test.labels, clf.predict_proba(test)))
        accs.append(res["accuracy"])
        eces.append(res["calibration"]["ece_test_after"])
    majority = np.bincount(test.labels).max() / len(test)
    assert m["accuracy_mean"] == pytest.approx(np.mean(accs)) and m["accuracy_min"] == min(accs)
    assert m["accuracy_mean"] > majority + 0.05 and min(accs) > majority, (accs, majority)
    assert m["ece_test_after_mean"] == pytest.approx(np.mean(eces))
    assert "ECE" in (tmp_path / "report.md").read_text() and "reliability.png" in (tmp_path / "report.md").read_text()
    again = run_workflow("rnn_motifs", cfg, out=tmp_path, executor="local")
    assert sorted(again.skipped) == ["seed_0", "seed_1", "seed_2"]
