"""Engine: local execution, output folder, idempotent re-runs, failures and resubmission."""
from __future__ import annotations

import json

import pytest

from sciml.workflows.engine import Job, load_workflow, run_workflow

WF = "toyflows.squares"


def _calls(out, name):
    path = out / "jobs" / name / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_local_run_writes_results_report_and_index(tmp_path):
    out = tmp_path / "run"
    res = run_workflow(WF, {"values": [1, 2, 3], "power": 2, "scale": 0.5}, out)
    assert res.ok, res.summary()
    assert res.metrics == {"n_jobs": 3, "total": 0.5 * (1 + 4 + 9), "label": "squares"}
    assert sorted(res.executed) == ["x1", "x2", "x3"]
    for v in (1, 2, 3):
        assert json.loads((out / "jobs" / f"x{v}" / "result.json").read_text())["y"] == 0.5 * v**2
        assert (out / "jobs" / f"x{v}" / "model.txt").exists()
        assert "computing" in (out / "jobs" / f"x{v}" / "job.log").read_text()
    # copy of the config with defaults, run index, jobs table, log, metrics CSV
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["workflow"] == WF and saved["config"]["scale"] == 0.5 and saved["config"]["fail_values"] == []
    assert saved["executor"]["kind"] == "local"
    index = json.loads((out / "run.json").read_text())
    assert index["ok"] and index["counts"] == {"jobs": 3, "executed": 3, "skipped": 0, "failed": 0}
    assert {j["name"]: j["state"] for j in index["jobs"]} == {"x1": "completed", "x2": "completed", "x3": "completed"}
    assert "report.md" in index["report_files"] and "values.csv" in index["report_files"]
    assert (out / "jobs.csv").read_text().startswith("name,state")
    assert "metric,value" in (out / "metrics.csv").read_text()
    assert "writing the report" in (out / "run.log").read_text()


def test_rerun_is_idempotent_and_new_jobs_only_run(tmp_path):
    out = tmp_path / "run"
    run_workflow(WF, {"values": [1, 2]}, out)
    again = run_workflow(WF, {"values": [1, 2]}, out)
    assert again.ok and again.executed == [] and sorted(again.skipped) == ["x1", "x2"]
    assert _calls(out, "x1") == 1 and _calls(out, "x2") == 1
    assert again.metrics["total"] == 5
    # a larger sweep runs only the new job; changed kwargs re-run the affected jobs
    more = run_workflow(WF, {"values": [1, 2, 4]}, out)
    assert more.executed == ["x4"] and more.metrics["total"] == 21
    lines: list[str] = []
    changed = run_workflow(WF, {"values": [1, 2, 4], "scale": 2.0}, out, echo=lines.append)
    assert sorted(changed.executed) == ["x1", "x2", "x4"] and changed.metrics["total"] == 42
    assert any("settings changed since the last run for 3 job(s)" in ln for ln in lines)
    # a job whose settings changed and whose re-run fails keeps no outdated result
    broken = run_workflow(WF, {"values": [1, 2, 4], "scale": 3.0, "fail_values": [4]}, out)
    assert broken.failed == ["x4"] and not (out / "jobs" / "x4" / "result.json").exists()
    assert run_workflow(WF, {"values": [1, 2, 4], "scale": 3.0, "fail_values": [4]}, out).executed == ["x4"]
    forced = run_workflow(WF, {"values": [1]}, out, force=True)
    assert forced.executed == ["x1"] and _calls(out, "x1") == 4


def test_failed_job_is_reported_and_resubmitted(tmp_path):
    out = tmp_path / "run"
    marker = tmp_path / "broken"
    marker.touch()
    cfg = {"values": [1, 2, 3], "fail_values": [2], "fail_marker": str(marker)}
    res = run_workflow(WF, cfg, out)
    assert not res.ok and res.failed == ["x2"]
    assert sorted(res.executed) == ["x1", "x2", "x3"]  # the failure did not stop the others
    assert "failed on purpose" in res.jobs["x2"].error
    err = json.loads((out / "jobs" / "x2" / "error.json").read_text())
    assert err["type"] == "RuntimeError" and "Traceback" in err["traceback"]
    assert res.metrics is None and not (out / "metrics.json").exists()
    index = json.loads((out / "run.json").read_text())
    assert index["failed"] == ["x2"] and not index["ok"]
    assert "run the same command again" in res.summary()
    marker.unlink()  # "fix the cause", then re-run: only the failed job runs
    again = run_workflow(WF, cfg, out)
    assert again.ok and again.executed == ["x2"] and sorted(again.skipped) == ["x1", "x3"]
    assert not (out / "jobs" / "x2" / "error.json").exists()
    assert again.metrics["total"] == 14


def test_retries(tmp_path):
    res = run_workflow(WF, {"values": [1, 2], "fail_values": [1]}, tmp_path / "r",
                       {"kind": "local", "retries": 2})
    assert res.failed == ["x1"] and res.jobs["x1"].attempts == 3 and _calls(tmp_path / "r", "x1") == 3
    assert _calls(tmp_path / "r", "x2") == 1


def test_process_pool_and_dead_worker(tmp_path):
    res = run_workflow(WF, {"values": [1, 2, 3]}, tmp_path / "pool", {"kind": "local", "workers": 2})
    assert res.ok and res.metrics["total"] == 14
    import os

    pids = {int((tmp_path / "pool" / "jobs" / f"x{v}" / "calls.txt").read_text()) for v in (1, 2, 3)}
    assert os.getpid() not in pids  # ran in worker processes, not in this one
    dead = run_workflow(WF, {"values": [1, 2], "die_values": [2]}, tmp_path / "dead", {"kind": "local", "workers": 2})
    assert "x2" in dead.failed and dead.jobs["x2"].state == "lost"


def test_dry_run_runs_nothing(tmp_path):
    lines: list[str] = []
    res = run_workflow(WF, None, tmp_path / "dry", dry_run=True, echo=lines.append)
    assert res.dry_run and not res.ok and not (tmp_path / "dry").exists()
    assert {j.state for j in res.jobs.values()} == {"planned"}
    assert any("x3" in ln and "power_job" in ln for ln in lines)
    lines.clear()
    run_workflow(WF, None, tmp_path / "dry", {"kind": "slurm", "partition": "gpu", "gpus": 2, "mem": 16,
                                              "time": "1-00:00:00"}, dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    assert "array of 3" in text and "--partition=gpu" in text and "--mem=16G" in text and "--time=1440" in text


def test_plan_and_result_contract_errors(tmp_path, monkeypatch):
    mod = load_workflow(WF)
    monkeypatch.setattr(mod, "plan", lambda cfg: [Job("a", mod.power_job, {}), Job("a", mod.power_job, {})])
    with pytest.raises(ValueError, match="duplicate job name 'a'"):
        run_workflow(mod, None, tmp_path / "x")
    monkeypatch.setattr(mod, "plan", lambda cfg: [Job("bad name", mod.power_job, {})])
    with pytest.raises(ValueError, match="job name 'bad name'"):
        run_workflow(mod, None, tmp_path / "x")
    monkeypatch.setattr(mod, "plan", lambda cfg: [Job("a", lambda workdir: {}, {})])
    with pytest.raises(TypeError, match="top-level importable function"):
        run_workflow(mod, None, tmp_path / "x")
    monkeypatch.setattr(mod, "plan", lambda cfg: [Job("a", mod.power_job, {"x": object()})])
    with pytest.raises(TypeError, match="JSON-able"):
        run_workflow(mod, None, tmp_path / "x")


def test_report_failure_is_reported(tmp_path):
    res = run_workflow("toyflows.broken", None, tmp_path / "b")
    assert not res.ok and res.report_error == "ValueError: report exploded on purpose"
    assert "report exploded" in (tmp_path / "b" / "report_error.txt").read_text()
    assert 'broken.py", line' in res.report_traceback and "in report" in res.report_traceback
    assert res.report_traceback in (tmp_path / "b" / "report_error.txt").read_text()
    assert 'broken.py", line' in res.summary()  # shown to the user, not only filed away


def test_unknown_workflow():
    with pytest.raises(ValueError, match="unknown workflow 'no_such_workflow'"):
        load_workflow("no_such_workflow")


def test_slurm_executor_without_slurm_fails_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="sbatch, squeue, scontrol not found on PATH"):
        run_workflow(WF, None, tmp_path / "s", "slurm")
    assert not (tmp_path / "s").exists()
