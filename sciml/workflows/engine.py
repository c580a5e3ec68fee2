"""Workflow engine: jobs, running them (locally or on Slurm), and collecting results.

A workflow module (``sciml/workflows/<name>.py``) defines ``Config`` (a dataclass),
``demo_config()``, ``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``.
The engine calls each job as ``job.fn(**job.kwargs, workdir=out/"jobs"/job.name)``,
stores the returned dict as ``result.json`` in the job folder, skips jobs whose
``result.json`` already exists (same kwargs), and finally calls ``report``.

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

import contextlib
import csv
import dataclasses
import importlib
import io
import json
import logging
import os
import re
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping

from .._io import atomic_write, atomic_write_json, atomic_write_text

__all__ = [
    "Job",
    "JobOutcome",
    "RunResult",
    "WORKFLOWS",
    "load_workflow",
    "available_workflows",
    "run_job",
    "run_workflow",
    "run_spec",
    "job_state",
]

log = logging.getLogger("sciml.workflows")

#: The workflows shipped with sciml, in demo order.
WORKFLOWS = ("selection_report", "rnn_motifs", "gp_active_learning", "potential_md", "ensemble")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Job:
    """One independent unit of work of a workflow.

    Attributes
    ----------
    name:
        Unique within the workflow; used for the job folder ``out/jobs/<name>/`` and the Slurm job name.
    fn:
        A top-level importable function (picklable for submitit) returning a JSON-able dict.
        It is called as ``fn(**kwargs, workdir=Path)``.
    kwargs:
        JSON-able keyword arguments for ``fn``.
    gpu:
        Hint for the Slurm executor: request the configured GPUs for this job.

    Example
    -------
    >>> def square(x: int, workdir) -> dict:
    ...     return {"y": x * x}
    >>> Job(name="square-3", fn=square, kwargs={"x": 3})  # doctest: +ELLIPSIS
    Job(name='square-3', ...)
    """

    name: str
    fn: Callable[..., dict]
    kwargs: dict = field(default_factory=dict)
    gpu: bool = False

    @property
    def fn_path(self) -> str:
        """``module:qualname`` of ``fn``."""
        return f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', repr(self.fn))}"


# --------------------------------------------------------------------------- workflow modules
def load_workflow(name: str | ModuleType) -> ModuleType:
    """Import a workflow module: ``"selection_report"`` -> ``sciml.workflows.selection_report``.

    Your own workflows: a dotted name (``"mypkg.my_workflow"``) imports that module, a path ending in
    ``.py`` (``"workflows/learning_curve.py"``) imports that file. The module must define ``Config``,
    ``demo_config``, ``plan`` and ``report``.
    """
    if isinstance(name, ModuleType):
        module = name
    elif isinstance(name, (str, os.PathLike)) and str(name).endswith(".py"):
        module = _import_file(Path(name))
    else:
        if not isinstance(name, str) or not name:
            raise TypeError(f"workflow: expected a workflow name (str), got {name!r}")
        modname = name if "." in name else f"sciml.workflows.{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is not None and modname.startswith(exc.name):
                known = ", ".join(available_workflows()) or "none installed"
                raise ValueError(f"workflow: unknown workflow {name!r} (module {modname} not found); "
                                 f"available: {known}") from exc
            raise
    missing = [a for a in ("Config", "demo_config", "plan", "report") if not hasattr(module, a)]
    if missing:
        raise ValueError(f"workflow: module {module.__name__} is not a workflow (missing {', '.join(missing)})")
    if not dataclasses.is_dataclass(module.Config):
        raise TypeError(f"workflow: {module.__name__}.Config must be a dataclass")
    return module


def _import_file(path: Path) -> ModuleType:
    """Import a workflow from a ``.py`` file: its folder goes on ``sys.path`` and ``PYTHONPATH``
    (so process-pool workers and Slurm jobs, which inherit the environment, can import it too)."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise ValueError(f"workflow: file {str(path)!r} does not exist")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *parts])
    module = importlib.import_module(path.stem)
    if Path(getattr(module, "__file__", "") or "").resolve() != path.resolve():
        raise ValueError(f"workflow: {path} cannot be imported as {path.stem!r}: that name is already the module "
                         f"{getattr(module, '__file__', module)}; rename the file")
    return module


def available_workflows() -> list[str]:
    """Names of the shipped workflows whose modules exist."""
    import importlib.util

    return [n for n in WORKFLOWS if importlib.util.find_spec(f"sciml.workflows.{n}") is not None]


def _workflow_name(module: ModuleType) -> str:
    prefix = "sciml.workflows."
    return module.__name__[len(prefix):] if module.__name__.startswith(prefix) else module.__name__


# --------------------------------------------------------------------------- job wrapper
class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            try:
                st.write(s)
            except Exception:  # a closed console must not kill the job
                pass
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            with contextlib.suppress(Exception):
                st.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _capture(logfile: Path, echo: bool) -> Iterator[None]:
    """Send stdout/stderr (and log records) of the job to ``logfile`` (and the console when echo)."""
    with open(logfile, "a", encoding="utf-8", buffering=1) as fh:
        out = _Tee(fh, sys.stdout) if echo else _Tee(fh)
        err = _Tee(fh, sys.stderr) if echo else _Tee(fh)
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield
        finally:
            root.removeHandler(handler)


def _slurm_id() -> str | None:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def run_job(fn: Callable[..., dict], kwargs: dict, workdir: str | os.PathLike, echo: bool = False) -> dict:
    """Run one job in ``workdir``: the wrapper every executor calls (in this process, a pool
    worker, or a Slurm job).

    Writes ``status.json`` (running, then completed/failed), the job's stdout/stderr to
    ``job.log``, and on success ``result.json`` (atomically); on an exception ``error.json``
    with the traceback, then re-raises. Returns the job's result dict.

    In a Slurm step with several tasks (``executor.ddp``), every rank runs ``fn`` (which joins the
    process group from SLURM_PROCID/SLURM_NTASKS and the MASTER_ADDR/MASTER_PORT set here); only
    rank 0 writes the files above, the others log to ``job.rank<N>.log``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ntasks = int(os.environ.get("SLURM_NTASKS", "1")) if "SLURM_STEP_ID" in os.environ else 1
    if ntasks > 1:  # a multi-process (DDP) Slurm job: one rendezvous per job, only rank 0 records
        os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
        os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
        rank = int(os.environ.get("SLURM_PROCID", "0"))
        if rank > 0:
            with _capture(workdir / f"job.rank{rank}.log", echo):
                return fn(**kwargs, workdir=workdir)
    for stale in ("error.json",):
        with contextlib.suppress(FileNotFoundError):
            (workdir / stale).unlink()
    started = time.time()
    info = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": _slurm_id(), "started": _now()}
    atomic_write_json(workdir / "status.json", {"state": "running", **info})
    try:
        with _capture(workdir / "job.log", echo):
            result = fn(**kwargs, workdir=workdir)
            if not isinstance(result, Mapping):
                raise TypeError(
                    f"job function {getattr(fn, '__qualname__', fn)!r} must return a dict, got {type(result).__name__}"
                )
            result = dict(result)
            try:
                json.dumps(result, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"job function {getattr(fn, '__qualname__', fn)!r} returned a non-JSON-able dict: {exc}") from exc
    except BaseException as exc:
        elapsed = time.time() - started
        atomic_write_json(
            workdir / "error.json",
            {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc(),
             "elapsed_s": elapsed, **info},
        )
        atomic_write_json(workdir / "status.json", {"state": "failed", "elapsed_s": elapsed, **info})
        raise
    elapsed = time.time() - started
    atomic_write_json(workdir / "result.json", result)
    atomic_write_json(workdir / "status.json", {"state": "completed", "elapsed_s": elapsed, **info})
    return result


def job_state(workdir: Path) -> str:
    """``"completed"`` (result.json), ``"failed"`` (error.json), ``"running"`` or ``"new"``."""
    if (workdir / "result.json").exists():
        return "completed"
    if (workdir / "error.json").exists():
        return "failed"
    if (workdir / "status.json").exists():
        return "running"
    return "new"


# --------------------------------------------------------------------------- outcomes
@dataclass
class JobOutcome:
    """What happened to one job in a run."""

    name: str
    state: str  # completed | skipped | failed | lost | timeout | submitted | planned
    elapsed_s: float | None = None
    error: str | None = None
    log: str | None = None
    slurm_job_id: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.state in ("completed", "skipped")


@dataclass
class RunResult:
    """Summary of a workflow run (``run.json`` in the output folder)."""

    workflow: str
    out: Path
    jobs: dict[str, JobOutcome]
    metrics: dict | None = None
    report_files: list[str] = field(default_factory=list)
    dry_run: bool = False
    elapsed_s: float = 0.0
    report_error: str | None = None

    @property
    def executed(self) -> list[str]:
        """Jobs that ran (successfully or not) in this run."""
        return [n for n, j in self.jobs.items() if j.state not in ("skipped", "planned", "submitted")]

    @property
    def skipped(self) -> list[str]:
        return [n for n, j in self.jobs.items() if j.state == "skipped"]

    @property
    def failed(self) -> list[str]:
        return [n for n, j in self.jobs.items() if j.state in ("failed", "lost", "timeout")]

    @property
    def ok(self) -> bool:
        return (not self.dry_run and not self.failed and self.report_error is None
                and all(j.ok for j in self.jobs.values()))

    def summary(self) -> str:
        """A few human-readable lines."""
        states: dict[str, int] = {}
        for j in self.jobs.values():
            states[j.state] = states.get(j.state, 0) + 1
        counts = ", ".join(f"{v} {k}" for k, v in sorted(states.items()))
        lines = [f"workflow {self.workflow}: {len(self.jobs)} job(s): {counts or 'none'} -> {self.out}"]
        for name in self.failed:
            j = self.jobs[name]
            where = f" (log: {j.log})" if j.log else ""
            lines.append(f"  FAILED {name}: {j.error}{where}")
        if self.failed:
            lines.append("  Fix the cause and run the same command again: completed jobs are skipped and "
                         "only the failed ones run again.")
        if self.report_error:
            lines.append(f"  report() failed: {self.report_error}")
        if self.ok and self.report_files:
            lines.append(f"  report: {', '.join(self.report_files)}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the run
def _check_jobs(jobs: Any, module_name: str) -> list[Job]:
    if not isinstance(jobs, (list, tuple)) or not all(isinstance(j, Job) for j in jobs):
        raise TypeError(f"{module_name}.plan() must return a list of Job, got {type(jobs).__name__}")
    seen: set[str] = set()
    for j in jobs:
        if not isinstance(j.name, str) or not _NAME_RE.match(j.name):
            raise ValueError(f"{module_name}.plan(): job name {j.name!r} must match {_NAME_RE.pattern} "
                             "(it is used as a folder and Slurm job name)")
        if j.name in seen:
            raise ValueError(f"{module_name}.plan(): duplicate job name {j.name!r}")
        seen.add(j.name)
        qual = getattr(j.fn, "__qualname__", "")
        if not callable(j.fn) or "<locals>" in qual or "<lambda>" in qual:
            raise TypeError(f"job {j.name!r}: fn must be a top-level importable function, got {j.fn!r}")
        if not isinstance(j.kwargs, Mapping):
            raise TypeError(f"job {j.name!r}: kwargs must be a dict, got {type(j.kwargs).__name__}")
        if "workdir" in j.kwargs:
            raise ValueError(f"job {j.name!r}: kwargs must not contain 'workdir' (the engine passes it)")
        try:
            json.dumps(j.kwargs)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"job {j.name!r}: kwargs must be JSON-able: {exc}") from exc
    return list(jobs)


def _job_record(job: Job) -> dict:
    return {"name": job.name, "fn": job.fn_path, "kwargs": job.kwargs, "gpu": job.gpu}


def _is_done(job: Job, workdir: Path) -> bool:
    """True when the job has a result computed with the same function and kwargs."""
    if not (workdir / "result.json").exists():
        return False
    try:
        rec = json.loads((workdir / "job.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return True  # a result without a record (older run): trust it
    return rec.get("kwargs") == json.loads(json.dumps(job.kwargs)) and rec.get("fn") == job.fn_path


class _RunLog:
    """Engine log lines to out/run.log (and to the console through ``echo``)."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None) -> None:
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.echo is not None:
            self.echo(msg)


def _write_index(res: RunResult, spec_dict: dict, started: str) -> None:
    out = res.out
    jobs = [
        {"name": n, "state": j.state, "elapsed_s": j.elapsed_s, "attempts": j.attempts,
         "slurm_job_id": j.slurm_job_id, "log": j.log, "error": j.error,
         "result": f"jobs/{n}/result.json" if (out / "jobs" / n / "result.json").exists() else None}
        for n, j in res.jobs.items()
    ]
    atomic_write_json(out / "run.json", {
        "workflow": res.workflow, "started": started, "finished": _now(), "elapsed_s": res.elapsed_s,
        "ok": res.ok, "dry_run": res.dry_run, "executor": spec_dict.get("executor"),
        "counts": {"jobs": len(jobs), "executed": len(res.executed), "skipped": len(res.skipped),
                   "failed": len(res.failed)},
        "failed": res.failed, "report_error": res.report_error, "report_files": res.report_files,
        "jobs": jobs,
    })
    with atomic_write(out / "jobs.csv", "w") as fh:
        w = csv.DictWriter(fh, fieldnames=["name", "state", "elapsed_s", "attempts", "slurm_job_id", "result",
                                           "log", "error"], extrasaction="ignore")
        w.writeheader()
        for row in jobs:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _flatten(d: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _flatten(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            yield key, v


def run_workflow(
    workflow: str | ModuleType,
    config: Any = None,
    out: str | os.PathLike = "runs/out",
    executor: Any = None,
    *,
    dry_run: bool = False,
    wait: bool = True,
    force: bool = False,
    echo: Callable[[str], None] | None = None,
) -> RunResult:
    """Run a workflow: plan its jobs, run the missing ones, then write its report.

    Parameters
    ----------
    workflow:
        A workflow name (``"selection_report"``), a dotted module path, or the module.
    config:
        The workflow's ``Config`` instance, a mapping of its fields (validated), or None for defaults.
    out:
        Output folder (created). Jobs with a ``result.json`` there (same kwargs) are skipped.
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
    from .config import ExecutorConfig, RunSpec, from_dict, to_dict
    from .executors import make_executor

    module = load_workflow(workflow)
    name = _workflow_name(module)
    if isinstance(workflow, (str, os.PathLike)) and str(workflow).endswith(".py"):
        ref = str(Path(workflow).expanduser().absolute())  # config.yaml must find the file again
    else:
        ref = workflow if isinstance(workflow, str) else name
    if config is None:
        cfg = module.Config()
    elif isinstance(config, module.Config):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = from_dict(module.Config, config, where="config")
    else:
        raise TypeError(f"config: expected {module.__name__}.Config, a mapping or None, got {type(config).__name__}")
    if executor is None:
        ex_cfg = ExecutorConfig()
    elif isinstance(executor, str):
        ex_cfg = from_dict(ExecutorConfig, {"kind": executor}, where="executor")
    elif isinstance(executor, Mapping):
        ex_cfg = from_dict(ExecutorConfig, executor, where="executor")
    elif isinstance(executor, ExecutorConfig):
        ex_cfg = executor
    else:
        raise TypeError(f"executor: expected ExecutorConfig, a mapping or 'local'/'slurm', got {executor!r}")

    out = Path(out).absolute()
    spec = RunSpec(workflow=ref, config=cfg, out=out, executor=ex_cfg)
    jobs = _check_jobs(module.plan(cfg), module.__name__)
    t0, started = time.time(), _now()
    outcomes: dict[str, JobOutcome] = {}
    todo: list[Job] = []
    changed: list[str] = []
    for job in jobs:
        wd = out / "jobs" / job.name
        if not force and _is_done(job, wd):
            outcomes[job.name] = JobOutcome(job.name, "skipped", log=str(wd / "job.log"))
        else:
            outcomes[job.name] = JobOutcome(job.name, "planned")
            todo.append(job)
            if not force and (wd / "result.json").exists():
                changed.append(job.name)

    if dry_run:
        runner = make_executor(ex_cfg, out, name)
        if echo is not None:
            echo(f"workflow {name}: {len(jobs)} job(s), {len(todo)} to run, {len(jobs) - len(todo)} with results "
                 f"in {out} (dry run: nothing is run)")
            for job in jobs:
                label = "done" if outcomes[job.name].state == "skipped" else ("changed" if job.name in changed else "to run")
                args = json.dumps(job.kwargs)
                args = args if len(args) <= 100 else args[:97] + "..."
                echo(f"  {label:8s} {job.name}: {job.fn_path}({args})" + (" [gpu]" if job.gpu else ""))
            for line in runner.describe(todo):
                echo("  " + line)
        return RunResult(name, out, outcomes, dry_run=True)

    runner = make_executor(ex_cfg, out, name)
    if todo:
        runner.check()  # e.g. no sbatch here: fail before writing anything
    out.mkdir(parents=True, exist_ok=True)
    say = _RunLog(out / "run.log", echo)
    import yaml

    header = f"# sciml workflow run configuration (validated, defaults filled in), written {started}\n"
    atomic_write_text(out / "config.yaml", header + yaml.safe_dump(spec.to_dict(), sort_keys=False))
    for job in jobs:
        wd = out / "jobs" / job.name
        wd.mkdir(parents=True, exist_ok=True)
        if job in todo:
            if force or job.name in changed:  # an outdated result must not outlive a failed re-run
                with contextlib.suppress(FileNotFoundError):
                    (wd / "result.json").unlink()
            atomic_write_json(wd / "job.json", _job_record(job))
    say(f"workflow {name}: {len(jobs)} job(s): {len(jobs) - len(todo)} already done, {len(todo)} to run "
        f"({ex_cfg.kind} executor)")
    if changed:
        say(f"settings changed since the last run for {len(changed)} job(s), running them again: "
            + ", ".join(changed[:10]) + (" ..." if len(changed) > 10 else ""))

    remaining = list(todo)
    attempt = 0
    while remaining:
        attempt += 1
        results = runner.run(remaining, say=say, wait=wait)
        for n, o in results.items():
            o.attempts = attempt
            outcomes[n] = o
        retry = [j for j in remaining if outcomes[j.name].state in ("failed", "lost")]
        if not retry or attempt > ex_cfg.retries:
            break
        say(f"retrying {len(retry)} failed job(s) (attempt {attempt + 1} of {ex_cfg.retries + 1}): "
            + ", ".join(j.name for j in retry))
        remaining = retry

    res = RunResult(name, out, outcomes)
    if res.failed or any(o.state == "submitted" for o in outcomes.values()):
        res.elapsed_s = time.time() - t0
        _write_index(res, spec.to_dict(), started)
        for line in res.summary().splitlines():
            say(line)
        return res

    results: dict[str, dict] = {}
    for job in jobs:
        results[job.name] = json.loads((out / "jobs" / job.name / "result.json").read_text())
    say(f"all {len(jobs)} job(s) done; writing the report")
    def _stamp(path: Path) -> tuple | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    before = {fn: _stamp(out / fn) for fn in ("metrics.json", "metrics.csv")}
    try:
        metrics = module.report(cfg, out, results)
    except Exception as exc:
        res.report_error = f"{type(exc).__name__}: {exc}"
        atomic_write_text(out / "report_error.txt", traceback.format_exc())
        say(f"report() failed: {res.report_error} (traceback in {out / 'report_error.txt'})")
    else:
        if metrics is None:
            metrics = {}
        if not isinstance(metrics, Mapping):
            res.report_error = f"report() must return a dict of metrics, got {type(metrics).__name__}"
        else:
            metrics = to_dict(dict(metrics))
            res.metrics = metrics
            # write them unless report() just did (an old copy from an earlier run is replaced)
            if _stamp(out / "metrics.json") in (None, before["metrics.json"]):
                atomic_write_json(out / "metrics.json", metrics)
            if _stamp(out / "metrics.csv") in (None, before["metrics.csv"]):
                with atomic_write(out / "metrics.csv", "w") as fh:
                    w = csv.writer(fh)
                    w.writerow(["metric", "value"])
                    for k, v in _flatten(metrics):
                        w.writerow([k, v])
        own = {"config.yaml", "run.json", "jobs.csv", "run.log"}
        res.report_files = sorted(p.name for p in out.iterdir() if p.is_file() and p.name not in own
                                  and not p.name.startswith("."))
    res.elapsed_s = time.time() - t0
    _write_index(res, spec.to_dict(), started)
    for line in res.summary().splitlines():
        say(line)
    return res


def run_spec(spec: Any, *, dry_run: bool = False, wait: bool = True, force: bool = False,
             echo: Callable[[str], None] | None = None) -> RunResult:
    """Run a validated :class:`~sciml.workflows.config.RunSpec` (see :func:`run_workflow`)."""
    return run_workflow(spec.workflow, spec.config, spec.out, spec.executor, dry_run=dry_run, wait=wait,
                        force=force, echo=echo)
