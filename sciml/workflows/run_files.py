"""The files a run writes at the top of its output folder.

Output folder layout::

    out/
      config.yaml        the validated run configuration (defaults filled in)
      run.log            what the engine did, with times
      run.json           index: workflow, executor, per-job state/time/logs/errors, report files
      jobs.csv           the same per-job table
      jobs/<name>/       job.json (fn + kwargs), result.json | error.json, status.json, job.log, models...
      slurm/             submitit scripts and per-job Slurm logs (Slurm executor)
      metrics.json, *.csv, *.png, report.md   written by the workflow's report()
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import yaml

from .._io import atomic_write, atomic_write_json, atomic_write_text
from .outcomes import RunResult
from .worker import now

__all__ = ["RunLog", "write_run_config", "write_index", "write_metrics", "file_stamp", "OWN_FILES"]

#: Files of the run itself (not of the workflow's report).
OWN_FILES = frozenset({"config.yaml", "run.json", "jobs.csv", "run.log"})


class RunLog:
    """Engine log lines to out/run.log (and to the console through ``echo``)."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.echo is not None:
            self.echo(msg)


def write_run_config(out: Path, spec_dict: dict, started: str) -> None:
    """``out/config.yaml``: the validated run configuration, re-runnable with ``sciml workflow run``."""
    header = f"# sciml workflow run configuration (validated, defaults filled in), written {started}\n"
    atomic_write_text(out / "config.yaml", header + yaml.safe_dump(spec_dict, sort_keys=False))


def write_index(res: RunResult, spec_dict: dict, started: str) -> None:
    """``out/run.json`` and ``out/jobs.csv``: per-job states, times, logs and errors (run.json: with the
    exception type and traceback of each failed job)."""
    out = res.out
    jobs = [
        {"name": n, "state": j.state, "elapsed_s": j.elapsed_s, "attempts": j.attempts,
         "slurm_job_id": j.slurm_job_id, "log": j.log, "error": j.error, "error_type": j.error_type,
         "traceback": j.traceback,
         "result": f"jobs/{n}/result.json" if (out / "jobs" / n / "result.json").exists() else None}
        for n, j in res.jobs.items()
    ]
    atomic_write_json(out / "run.json", {
        "workflow": res.workflow, "started": started, "finished": now(), "elapsed_s": res.elapsed_s,
        "ok": res.ok, "dry_run": res.dry_run, "executor": spec_dict.get("executor"),
        "counts": {"jobs": len(jobs), "executed": len(res.executed), "skipped": len(res.skipped),
                   "failed": len(res.failed)},
        "failed": res.failed, "report_error": res.report_error, "report_traceback": res.report_traceback,
        "report_files": res.report_files,
        "jobs": jobs,
    })
    with atomic_write(out / "jobs.csv", "w") as fh:
        w = csv.DictWriter(fh, fieldnames=["name", "state", "elapsed_s", "attempts", "slurm_job_id", "result",
                                           "log", "error", "error_type"], extrasaction="ignore")
        w.writeheader()
        for row in jobs:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})


def file_stamp(path: Path) -> tuple | None:
    """(inode, mtime, size) of a file, None when it does not exist: tells whether a file was rewritten."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _flatten(d: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _flatten(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            yield key, v


def write_metrics(out: Path, metrics: dict, before: dict[str, tuple | None]) -> None:
    """``metrics.json`` and ``metrics.csv`` (flattened keys), unless ``report()`` just wrote them itself
    (``before``: their :func:`file_stamp` before ``report()`` ran; an old copy from an earlier run is replaced)."""
    if file_stamp(out / "metrics.json") in (None, before.get("metrics.json")):
        atomic_write_json(out / "metrics.json", metrics)
    if file_stamp(out / "metrics.csv") in (None, before.get("metrics.csv")):
        with atomic_write(out / "metrics.csv", "w") as fh:
            w = csv.writer(fh)
            w.writerow(["metric", "value"])
            for k, v in _flatten(metrics):
                w.writerow([k, v])
