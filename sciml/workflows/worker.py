"""The job folder: how a job runs in it (:func:`run_job`, called by every executor in whatever process
runs the job) and how its files are read back (:func:`job_state`, :func:`read_error`, ...).

A job folder ``out/jobs/<name>/`` holds ``job.json`` (function + kwargs, written by the runner),
``status.json`` (running, then completed/failed, with host, pid and Slurm id), ``job.log`` (the job's
stdout/stderr and log records), and ``result.json`` on success or ``error.json`` (exception type,
message, traceback) on failure -- each written atomically.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .._io import atomic_write_json
from .jobs import Job, import_function
from .outcomes import exception_fields

__all__ = ["run_job", "job_state", "read_error", "read_elapsed", "clear_status", "is_done", "now"]


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


def now() -> str:
    """Local time as ``YYYY-mm-ddTHH:MM:SS+zzzz``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _ddp_rank() -> int:
    """In a Slurm step with several tasks (``executor.ddp``): set the rendezvous (MASTER_ADDR/PORT, one
    per job) and return this task's rank; 0 otherwise."""
    ntasks = int(os.environ.get("SLURM_NTASKS", "1")) if "SLURM_STEP_ID" in os.environ else 1
    if ntasks <= 1:
        return 0
    os.environ.setdefault("MASTER_ADDR", os.environ.get("SLURM_LAUNCH_NODE_IPADDR", "127.0.0.1"))
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ.get("SLURM_JOB_ID", "0")) % 20000))
    return int(os.environ.get("SLURM_PROCID", "0"))


def _call(fn: Callable[..., dict] | str, kwargs: dict, workdir: Path) -> dict:
    """Call the job function (imported first when given as ``module:qualname``); check its result."""
    func = import_function(fn) if isinstance(fn, str) else fn
    result = func(**kwargs, workdir=workdir)
    name = getattr(func, "__qualname__", func)
    if not isinstance(result, Mapping):
        raise TypeError(f"job function {name!r} must return a dict, got {type(result).__name__}")
    result = dict(result)
    try:
        json.dumps(result, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job function {name!r} returned a non-JSON-able dict: {exc}") from exc
    return result


def run_job(fn: Callable[..., dict] | str, kwargs: dict, workdir: str | os.PathLike, echo: bool = False) -> dict:
    """Run one job in ``workdir``: the wrapper every executor calls (in this process, a pool
    worker, or a Slurm job). ``fn`` is the function or its ``module:qualname`` path (imported here,
    so that an import error is recorded like any other).

    Writes ``status.json`` (running, then completed/failed), the job's stdout/stderr to
    ``job.log``, and on success ``result.json`` (atomically); on an exception ``error.json``
    (type, message, traceback), then re-raises. Returns the job's result dict.

    In a Slurm step with several tasks (``executor.ddp``), every rank runs ``fn`` (which joins the
    process group from SLURM_PROCID/SLURM_NTASKS and the MASTER_ADDR/MASTER_PORT set here); only
    rank 0 writes the files above, the others log to ``job.rank<N>.log``.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rank = _ddp_rank()
    if rank > 0:  # other ranks record nothing; what they return is not the job's result
        with _capture(workdir / f"job.rank{rank}.log", echo):
            return (import_function(fn) if isinstance(fn, str) else fn)(**kwargs, workdir=workdir)
    with contextlib.suppress(FileNotFoundError):
        (workdir / "error.json").unlink()
    started = time.time()
    info = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": _slurm_id(), "started": now()}
    atomic_write_json(workdir / "status.json", {"state": "running", **info})
    try:
        with _capture(workdir / "job.log", echo):
            result = _call(fn, kwargs, workdir)
        atomic_write_json(workdir / "result.json", result)
    except BaseException as exc:  # recorded, then re-raised: the executor reports it
        elapsed = time.time() - started
        fields = exception_fields(exc, skip_file=__file__)
        atomic_write_json(workdir / "error.json", {"type": fields["error_type"], "message": str(exc),
                                                   "traceback": fields["traceback"], "elapsed_s": elapsed, **info})
        atomic_write_json(workdir / "status.json", {"state": "failed", "elapsed_s": elapsed, **info})
        raise
    atomic_write_json(workdir / "status.json", {"state": "completed", "elapsed_s": time.time() - started, **info})
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


def read_error(workdir: Path) -> dict:
    """``error``, ``error_type`` and ``traceback`` (as :class:`~sciml.workflows.outcomes.JobOutcome`
    keyword arguments) from the job's ``error.json``."""
    try:
        err = json.loads((workdir / "error.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        return {"error": f"failed (error.json unreadable: {type(exc).__name__}: {exc})"}
    return {"error": f"{err.get('type')}: {err.get('message')}", "error_type": err.get("type"),
            "traceback": err.get("traceback")}


def read_elapsed(workdir: Path) -> float | None:
    """The job's run time from ``status.json`` (None while it runs or when there is none)."""
    try:
        return json.loads((workdir / "status.json").read_text()).get("elapsed_s")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def clear_status(workdir: Path) -> None:
    """Remove the state files of an earlier attempt (before the job runs again)."""
    for name in ("error.json", "status.json", "slurm.json"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()


def is_done(job: Job, workdir: Path) -> bool:
    """True when the job has a result computed with the same function and kwargs."""
    if not (workdir / "result.json").exists():
        return False
    try:
        rec = json.loads((workdir / "job.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return True  # a result without a record (older run): trust it
    return rec.get("kwargs") == json.loads(json.dumps(job.kwargs)) and rec.get("fn") == job.fn_path
