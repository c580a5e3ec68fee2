"""``sciml workflow ...`` and ``sciml demo`` through the real CLI app, and the demo runner."""
from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from sciml.cli import app
from sciml.workflows.demo import run_demo

runner = CliRunner()


def _cfg(tmp_path, **config):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({"workflow": "toyflows.squares", "out": str(tmp_path / "out"), "config": config}))
    return p


def test_workflow_run_and_rerun(tmp_path):
    p = _cfg(tmp_path, values=[2, 3])
    r = runner.invoke(app, ["workflow", "run", str(p)])
    assert r.exit_code == 0, r.output
    assert "2 to run" in r.output and json.loads((tmp_path / "out" / "metrics.json").read_text())["total"] == 13
    r = runner.invoke(app, ["workflow", "run", str(p), "--set", "config.values=[2, 3, 4]"])
    assert r.exit_code == 0 and "2 already done, 1 to run" in r.output, r.output
    r = runner.invoke(app, ["workflow", "status", str(tmp_path / "out")])
    assert r.exit_code == 0 and "x4" in r.output and "completed" in r.output


def test_workflow_run_dry_run_and_errors(tmp_path):
    p = _cfg(tmp_path, values=[1])
    r = runner.invoke(app, ["workflow", "run", str(p), "--dry-run", "--executor", "slurm"])
    assert r.exit_code == 0 and "dry run" in r.output and "slurm:" in r.output, r.output
    assert not (tmp_path / "out").exists()
    bad = _cfg(tmp_path, values="x")
    r = runner.invoke(app, ["workflow", "run", str(bad)])
    assert r.exit_code == 2 and "config.values: expected list of int, got str 'x'" in r.output
    p = _cfg(tmp_path, values=[1])  # valid again: only the executor is wrong
    r = runner.invoke(app, ["workflow", "run", str(p), "--executor", "pbs"])
    assert r.exit_code == 2 and "executor.kind: expected one of 'local', 'slurm', got 'pbs'" in r.output
    r = runner.invoke(app, ["workflow", "run", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_workflow_run_failure_exit_code(tmp_path):
    p = _cfg(tmp_path, values=[1, 2], fail_values=[2])
    r = runner.invoke(app, ["workflow", "run", str(p)])
    assert r.exit_code == 1 and "FAILED x2" in r.output and "failed on purpose" in r.output


def test_workflow_config_template_roundtrip(tmp_path):
    r = runner.invoke(app, ["workflow", "config", "toyflows.squares", "--demo", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    p = tmp_path / "t.yaml"
    p.write_text(r.output)
    data = yaml.safe_load(r.output)
    assert data["config"]["values"] == [1, 2] and data["config"]["power"] == 3
    r = runner.invoke(app, ["workflow", "run", str(p)])
    assert r.exit_code == 0 and json.loads((tmp_path / "o" / "metrics.json").read_text())["total"] == 9


def test_workflow_list():
    r = runner.invoke(app, ["workflow", "list"])
    assert r.exit_code == 0
    for name in ("potential_md", "gp_active_learning", "selection_report", "rnn_motifs", "ensemble"):
        assert name in r.output


def test_demo_index_reports_ok_failed_and_missing(tmp_path):
    res = run_demo(tmp_path / "demo", ["toyflows.squares", "toyflows.broken", "no_such_flow"], echo=None)
    assert not res.ok and res.failed == ["toyflows.broken", "no_such_flow"]
    status = {e.workflow: e.status for e in res.entries}
    assert status == {"toyflows.squares": "ok", "toyflows.broken": "failed", "no_such_flow": "missing"}
    index = (tmp_path / "demo" / "index.md").read_text()
    assert "[squares/report.md](squares/report.md)" in index and "total=9" in index
    assert "report exploded on purpose" in index and "**MISSING**" in index
    assert (tmp_path / "demo" / "squares" / "report.md").exists()
    data = json.loads((tmp_path / "demo" / "index.json").read_text())
    assert data["ok"] is False and len(data["workflows"]) == 3


def test_demo_cli_exit_codes(tmp_path):
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--only", "toyflows.squares"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "index.md").exists() and "1/1 workflow(s) ok" in r.output
    r = runner.invoke(app, ["demo", "--out", str(tmp_path / "d2"), "--only", "toyflows.squares",
                            "--only", "toyflows.broken"])
    assert r.exit_code == 1 and "demo FAILED for: toyflows.broken" in r.output
