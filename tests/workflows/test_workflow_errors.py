"""A job that raises is reported, not swallowed: its exception's type, message and traceback (from the
process that ran it) reach the JobOutcome, run.json, the run summary and the CLI output -- for the
local, process-pool and Slurm executors -- and so do exceptions raised outside the job function
(a worker that cannot import it)."""
from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sciml.cli import app
from sciml.workflows import run_workflow

HERE = Path(__file__).resolve().parent
SQUARES = HERE / "toyflows" / "squares.py"
MESSAGE = "RuntimeError: job for x=2 failed on purpose"


def _raise_line() -> int:
    """Line of the ``raise`` in toyflows/squares.py, read from the file (independent of the engine)."""
    lines = SQUARES.read_text().splitlines()
    return next(i for i, ln in enumerate(lines, 1) if 'raise RuntimeError(f"job for x={x} failed on purpose")' in ln)


@pytest.fixture(params=["local", "pool", pytest.param("slurm", marks=pytest.mark.slurm)])
def executor(request):
    if request.param == "slurm":
        return request.getfixturevalue("slurm_executor")
    return {"kind": "local", "workers": 2 if request.param == "pool" else 1}


def _check_traceback(tb: str) -> None:
    assert tb.startswith("Traceback (most recent call last):"), tb
    assert f'squares.py", line {_raise_line()}, in power_job' in tb, tb
    assert tb.rstrip().endswith(MESSAGE)
    assert "in run_job" not in tb and "in _call" not in tb  # the engine's wrapper frames are left out


def test_worker_exception_reaches_outcome_index_and_summary(tmp_path, executor):
    out = tmp_path / "run"
    lines: list[str] = []
    res = run_workflow("toyflows.squares", {"values": [1, 2, 3], "fail_values": [2]}, out, executor,
                       echo=lines.append)
    assert res.failed == ["x2"] and res.jobs["x1"].ok and res.jobs["x3"].ok  # the others still ran
    o = res.jobs["x2"]
    assert (o.state, o.error, o.error_type) == ("failed", MESSAGE, "RuntimeError")
    _check_traceback(o.traceback)
    err = json.loads((out / "jobs" / "x2" / "error.json").read_text())
    in_driver = err["pid"] == os.getpid()
    assert in_driver == (executor["kind"] == "local" and executor["workers"] == 1), err  # where it ran
    row = {j["name"]: j for j in json.loads((out / "run.json").read_text())["jobs"]}["x2"]
    assert (row["error"], row["error_type"], row["traceback"]) == (MESSAGE, "RuntimeError", o.traceback)
    summary = res.summary()
    assert f"FAILED x2: {MESSAGE}" in summary and f"line {_raise_line()}, in power_job" in summary
    assert summary in "\n".join(lines)  # what the run printed


def test_cli_prints_the_worker_traceback(tmp_path, executor):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump({"workflow": "toyflows.squares", "out": str(tmp_path / "out"), "executor": executor,
                                 "config": {"values": [1, 2], "fail_values": [2]}}))
    r = CliRunner().invoke(app, ["workflow", "run", str(p)])
    assert r.exit_code == 1, r.output
    assert f"FAILED x2: {MESSAGE}" in r.output
    assert "Traceback (most recent call last):" in r.output and f"line {_raise_line()}, in power_job" in r.output


GHOST = '''
from dataclasses import dataclass
from pathlib import Path
import sys

from sciml.workflows import Job


@dataclass
class Config:
    mode: str = "raise"


def demo_config():
    return Config()


def work(x: int, mode: str, workdir: Path) -> dict:
    if x == 2 and mode == "exit":
        sys.exit(3)
    if x == 2 and mode == "raise":
        raise KeyError("no such key")
    return {"x": x}


def plan(cfg):
    return [Job(f"x{x}", work, {"x": x, "mode": cfg.mode}) for x in (1, 2)]


def report(cfg, out, results):
    return {"n": len(results)}
'''


@pytest.fixture
def memory_workflow(monkeypatch):
    """A workflow module that exists only in this process (no file): importable here, not in a worker."""
    module = types.ModuleType("ghost_workflow")
    monkeypatch.setitem(sys.modules, "ghost_workflow", module)
    exec(compile(textwrap.dedent(GHOST), "<ghost_workflow>", "exec"), module.__dict__)
    return module


def test_pool_worker_that_cannot_import_the_job_reports_the_import_error(tmp_path, memory_workflow):
    """The exception is raised in the worker before the job function exists: it used to kill the worker
    ("lost: worker process died"); now it is the job's recorded failure."""
    res = run_workflow(memory_workflow, None, tmp_path / "pool", {"kind": "local", "workers": 2})
    assert sorted(res.failed) == ["x1", "x2"]
    for name in ("x1", "x2"):
        o = res.jobs[name]
        assert o.state == "failed" and o.error_type == "ModuleNotFoundError", o
        assert o.error == "ModuleNotFoundError: No module named 'ghost_workflow'"
        assert "Traceback (most recent call last):" in o.traceback and "import_module" in o.traceback


def test_in_process_job_exit_and_key_error_are_failures_not_the_end_of_the_run(tmp_path, memory_workflow):
    res = run_workflow(memory_workflow, {"mode": "exit"}, tmp_path / "exit")
    assert res.failed == ["x2"] and res.jobs["x1"].ok
    assert (res.jobs["x2"].error_type, res.jobs["x2"].error) == ("SystemExit", "SystemExit: 3")
    res = run_workflow(memory_workflow, {"mode": "raise"}, tmp_path / "raise")
    o = res.jobs["x2"]
    assert (o.error_type, o.error) == ("KeyError", "KeyError: 'no such key'")
    assert 'File "<ghost_workflow>", line' in o.traceback and "in work" in o.traceback


UNREACHABLE = '''
from dataclasses import dataclass
from pathlib import Path

from sciml.workflows import Job


@dataclass
class Config:
    n: int = 1


def demo_config():
    return Config()


def work(n: int, workdir: Path) -> dict:
    return {"n": n}


def plan(cfg):
    return [Job("only", work, {"n": cfg.n})]


def report(cfg, out, results):
    return {}
'''


@pytest.mark.slurm
def test_slurm_job_that_cannot_be_unpickled_reports_submitits_traceback(tmp_path, slurm_executor, monkeypatch):
    """The module is on this process's sys.path but not on the node's PYTHONPATH: submitit fails to
    load the job and records the traceback, which the outcome carries (not "lost")."""
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "unreachable_wf.py").write_text(UNREACHABLE)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("unreachable_wf")
    monkeypatch.setitem(sys.modules, "unreachable_wf", module)  # forgotten again after the test
    res = run_workflow(module, None, tmp_path / "out", slurm_executor)
    o = res.jobs["only"]
    assert o.state == "failed" and o.error_type == "ModuleNotFoundError", res.summary()
    assert o.error == "ModuleNotFoundError: No module named 'unreachable_wf'"
    assert o.traceback.startswith("Traceback (most recent call last):") and o.slurm_job_id
