"""The process-pool executor: jobs in ``executor.workers`` spawned worker processes on this machine.

Spawned (not forked) workers are safe with torch threads; they import the job functions by name.
A failing job does not stop the others.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Sequence

from ..config import ExecutorConfig
from ..jobs import Job
from ..outcomes import JobOutcome
from ..worker import clear_status, run_job
from .base import Say, outcome_from_folder
from .local import LocalExecutor

__all__ = ["PoolExecutor"]


class PoolExecutor:
    """Run jobs in a pool of ``cfg.workers`` spawned processes."""

    def __init__(self, cfg: ExecutorConfig, out: Path, workflow: str) -> None:
        self.cfg, self.out, self.workflow = cfg, Path(out), workflow

    def check(self) -> None:
        """Nothing to check for local runs."""

    def describe(self, jobs: Sequence[Job]) -> list[str]:
        return [f"local executor: {len(jobs)} job(s) in {self.cfg.workers} worker processes"]

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        if len(jobs) <= 1:
            return LocalExecutor(self.cfg, self.out, self.workflow).run(jobs, say, wait)
        outcomes: dict[str, JobOutcome] = {}
        for job in jobs:
            clear_status(self.out / "jobs" / job.name)
        n = min(self.cfg.workers, len(jobs))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            futures = {pool.submit(run_job, job.fn, job.kwargs, str(self.out / "jobs" / job.name)): job
                       for job in jobs}
            say(f"{len(jobs)} job(s) started in {n} worker processes")
            for fut in as_completed(futures):
                job = futures[fut]
                err = None
                try:
                    fut.result()
                except BrokenProcessPool as exc:
                    err = f"worker process died: {exc}"
                except Exception:
                    pass
                outcomes[job.name] = o = outcome_from_folder(job, self.out, err)
                say(f"{job.name} {o.state}" + (f": {o.error}" if o.error else ""))
        return outcomes
