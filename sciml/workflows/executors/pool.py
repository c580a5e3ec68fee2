"""The process-pool executor: jobs in ``executor.workers`` spawned worker processes on this machine.

Spawned (not forked) workers are safe with torch threads. A worker imports the job function by its
``module:qualname`` inside :func:`~sciml.workflows.worker.run_job`, so a function the worker cannot
import is recorded like any exception of the job (type, message, traceback) instead of killing the
worker. A failing job does not stop the others.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

from ..jobs import Job, function_path, import_function
from ..outcomes import JobOutcome
from ..worker import clear_status, run_job
from .base import Say, outcome_from_folder
from .local import LocalExecutor

__all__ = ["PoolExecutor"]


def _worker_target(fn: Callable[..., dict]) -> Callable[..., dict] | str:
    """``fn``'s ``module:qualname`` when that names ``fn`` here (the worker imports it), else ``fn``
    itself (e.g. a ``functools.partial``, pickled as it is)."""
    path = function_path(fn)
    try:
        same = import_function(path) is fn
    except (ImportError, AttributeError, ValueError, TypeError):
        same = False
    return path if same else fn


class PoolExecutor(LocalExecutor):
    """Run jobs in a pool of ``cfg.workers`` spawned processes."""

    def describe(self, jobs: Sequence[Job]) -> list[str]:
        return [f"local executor: {len(jobs)} job(s) in {self.cfg.workers} worker processes"]

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        outcomes: dict[str, JobOutcome] = {}
        if not jobs:
            return outcomes
        for job in jobs:
            clear_status(self.out / "jobs" / job.name)
        n = min(self.cfg.workers, len(jobs))
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_job, _worker_target(job.fn), job.kwargs, str(self.out / "jobs" / job.name)): job
                       for job in jobs}
            say(f"{len(jobs)} job(s) started in {n} worker processes")
            for fut in as_completed(futures):
                job = futures[fut]
                caught: BaseException | None = None
                lost = None
                try:
                    fut.result()
                except BrokenProcessPool as exc:  # no exception of the job: its process died
                    lost = f"worker process died: {exc}"
                except (Exception, SystemExit) as exc:  # the job's exception, re-raised here by the pool
                    caught = exc
                outcomes[job.name] = o = outcome_from_folder(job, self.out, caught, lost)
                say(f"{job.name} {o.state}" + (f": {o.error}" if o.error else ""))
        return outcomes
