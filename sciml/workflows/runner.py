"""The runner: a workflow run as named steps -- validate, plan, prepare the output folder, execute
(with retries), report, index.

A workflow module (``sciml/workflows/<name>.py``) defines ``Config`` (a dataclass),
``demo_config()``, ``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``.
The runner calls each job as ``job.fn(**job.kwargs, workdir=out/"jobs"/job.name)`` through an
executor, stores the returned dict as ``result.json`` in the job folder, skips jobs whose
``result.json`` already exists (same function and kwargs), and finally calls ``report``.
The output folder is described in :mod:`sciml.workflows.run_files`.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping

from .._io import atomic_write_json, atomic_write_text
from .config import RunSpec, make_spec
from .executors import Executor, make_executor
from .jobs import Job, check_jobs, job_record
from .outcomes import JobOutcome, RunResult, format_traceback
from .registry import load_workflow, workflow_name
from .run_files import OWN_FILES, RunLog, file_stamp, write_index, write_metrics, write_run_config
from .validate import to_dict
from .worker import is_done, now

__all__ = ["run_workflow", "run_spec"]

Echo = Callable[[str], None]


@dataclass
class _Plan:
    """The jobs of a run and what is to be done with each."""

    jobs: list[Job]
    outcomes: dict[str, JobOutcome]
    todo: list[Job] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # jobs with an outdated result (settings changed)


def run_workflow(
    workflow: str | ModuleType,
    config: Any = None,
    out: str | os.PathLike = "runs/out",
    executor: Any = None,
    *,
    dry_run: bool = False,
    wait: bool = True,
    force: bool = False,
    echo: Echo | None = None,
) -> RunResult:
    """Run a workflow: validate the settings, plan its jobs, run the missing ones, then write its report.

    Parameters
    ----------
    workflow:
        A workflow name (``"selection_report"``), a dotted module path, or the module.
    config:
        The workflow's ``Config`` instance, a mapping of its fields, or None for defaults (all three
        validated the same way, see :func:`~sciml.workflows.config.make_spec`).
    out:
        Output folder (created; ``$VARS`` and ``~`` expanded). Jobs with a ``result.json`` there (same
        kwargs) are skipped.
    executor:
        :class:`~sciml.workflows.config.ExecutorConfig`, a mapping of its fields, or ``"local"``/``"slurm"``.
    dry_run:
        Only print/return the plan (job names, states, resources); run nothing.
    wait:
        Slurm: wait for the jobs and write the report. ``False`` submits and returns; run again later
        to collect (jobs still queued or running are not resubmitted).
    force:
        Run every job again, ignoring existing results.
    echo:
        Called with progress lines (e.g. ``print``); everything also goes to ``out/run.log``.

    Returns
    -------
    RunResult with per-job outcomes and the report's metrics (``.ok`` is False if a job failed).

    Example
    -------
    >>> res = run_workflow("selection_report", {"bootstrap": 500}, "runs/bumpus")  # doctest: +SKIP
    >>> res.ok, sorted(res.metrics)[:3]                                            # doctest: +SKIP
    """
    spec = make_spec(workflow, config, out, executor)
    spec.out = spec.out.absolute()
    module = load_workflow(workflow)
    name = workflow_name(module)
    plan = _plan(module, spec, force)
    executor_ = make_executor(spec.executor, spec.out, name)
    if dry_run:
        _show_plan(name, spec.out, plan, executor_, echo)
        return RunResult(name, spec.out, plan.outcomes, dry_run=True)
    if plan.todo:
        executor_.check()  # e.g. no sbatch here: fail before writing anything
    t0, started = time.time(), now()
    say = _prepare_folder(name, spec, plan, started, force, echo)
    _execute(executor_, plan, spec.executor.retries, say, wait)
    res = RunResult(name, spec.out, plan.outcomes)
    if not res.failed and not any(o.state == "submitted" for o in plan.outcomes.values()):
        _report(module, spec, plan.jobs, res, say)
    res.elapsed_s = time.time() - t0
    write_index(res, spec.to_dict(), started)
    for line in res.summary().splitlines():
        say(line)
    return res


def run_spec(spec: RunSpec, *, dry_run: bool = False, wait: bool = True, force: bool = False,
             echo: Echo | None = None) -> RunResult:
    """Run a validated :class:`~sciml.workflows.config.RunSpec` (see :func:`run_workflow`)."""
    return run_workflow(spec.workflow, spec.config, spec.out, spec.executor, dry_run=dry_run, wait=wait,
                        force=force, echo=echo)


# --------------------------------------------------------------------------- the steps
def _plan(module: ModuleType, spec: RunSpec, force: bool) -> _Plan:
    """Step 2: the workflow's jobs, split into those with a valid result and those to run."""
    plan = _Plan(check_jobs(module.plan(spec.config), module.__name__), {})
    for job in plan.jobs:
        wd = spec.out / "jobs" / job.name
        if not force and is_done(job, wd):
            plan.outcomes[job.name] = JobOutcome(job.name, "skipped", log=str(wd / "job.log"))
        else:
            plan.outcomes[job.name] = JobOutcome(job.name, "planned")
            plan.todo.append(job)
            if not force and (wd / "result.json").exists():
                plan.changed.append(job.name)
    return plan


def _show_plan(name: str, out: Path, plan: _Plan, executor: Executor, echo: Echo | None) -> None:
    """Dry run: what would run, where, with which resources."""
    if echo is None:
        return
    jobs, todo = plan.jobs, plan.todo
    echo(f"workflow {name}: {len(jobs)} job(s), {len(todo)} to run, {len(jobs) - len(todo)} with results "
         f"in {out} (dry run: nothing is run)")
    for job in jobs:
        label = ("done" if plan.outcomes[job.name].state == "skipped"
                 else "changed" if job.name in plan.changed else "to run")
        args = json.dumps(job.kwargs)
        args = args if len(args) <= 100 else args[:97] + "..."
        echo(f"  {label:8s} {job.name}: {job.fn_path}({args})" + (" [gpu]" if job.gpu else ""))
    for line in executor.describe(todo):
        echo("  " + line)


def _prepare_folder(name: str, spec: RunSpec, plan: _Plan, started: str, force: bool, echo: Echo | None) -> RunLog:
    """Step 3: the output folder with the run's config, a record per job to run, and the run log."""
    out = spec.out
    out.mkdir(parents=True, exist_ok=True)
    say = RunLog(out / "run.log", echo)
    write_run_config(out, spec.to_dict(), started)
    for job in plan.jobs:
        wd = out / "jobs" / job.name
        wd.mkdir(parents=True, exist_ok=True)
        if job in plan.todo:
            if force or job.name in plan.changed:  # an outdated result must not outlive a failed re-run
                with contextlib.suppress(FileNotFoundError):
                    (wd / "result.json").unlink()
            atomic_write_json(wd / "job.json", job_record(job))
    n_done = len(plan.jobs) - len(plan.todo)
    say(f"workflow {name}: {len(plan.jobs)} job(s): {n_done} already done, {len(plan.todo)} to run "
        f"({spec.executor.kind} executor)")
    if plan.changed:
        say(f"settings changed since the last run for {len(plan.changed)} job(s), running them again: "
            + ", ".join(plan.changed[:10]) + (" ..." if len(plan.changed) > 10 else ""))
    return say


def _execute(executor: Executor, plan: _Plan, retries: int, say: RunLog, wait: bool) -> None:
    """Step 4: run the jobs to do; run failed and lost ones again up to ``retries`` times."""
    remaining = list(plan.todo)
    attempt = 0
    while remaining:
        attempt += 1
        for n, o in executor.run(remaining, say=say, wait=wait).items():
            o.attempts = attempt
            plan.outcomes[n] = o
        retry = [j for j in remaining if plan.outcomes[j.name].state in ("failed", "lost")]
        if not retry or attempt > retries:
            break
        say(f"retrying {len(retry)} failed job(s) (attempt {attempt + 1} of {retries + 1}): "
            + ", ".join(j.name for j in retry))
        remaining = retry


def _report(module: ModuleType, spec: RunSpec, jobs: list[Job], res: RunResult, say: RunLog) -> None:
    """Step 5: every job has a result: call the workflow's ``report()``; keep its metrics and files."""
    out = spec.out
    results = {job.name: json.loads((out / "jobs" / job.name / "result.json").read_text()) for job in jobs}
    say(f"all {len(jobs)} job(s) done; writing the report")
    before = {fn: file_stamp(out / fn) for fn in ("metrics.json", "metrics.csv")}
    try:
        metrics = module.report(spec.config, out, results)
    except Exception as exc:  # recorded in the result and report_error.txt, not raised: the jobs' results stay
        res.report_error = f"{type(exc).__name__}: {exc}"
        res.report_traceback = format_traceback(exc, skip_file=__file__)
        atomic_write_text(out / "report_error.txt", res.report_traceback)
        say(f"report() failed: {res.report_error} (traceback in {out / 'report_error.txt'})")
        return
    if metrics is None:
        metrics = {}
    if not isinstance(metrics, Mapping):
        res.report_error = f"report() must return a dict of metrics, got {type(metrics).__name__}"
    else:
        res.metrics = to_dict(dict(metrics))
        write_metrics(out, res.metrics, before)
    res.report_files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in OWN_FILES
                              and not p.name.startswith("."))
