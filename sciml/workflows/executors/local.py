"""The local executor: jobs one after the other in this process (``executor.workers: 1``).

A failing job does not stop the others; its exception (type, message, traceback) is in its outcome.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..config import ExecutorConfig
from ..jobs import Job
from ..outcomes import JobOutcome
from ..worker import clear_status, run_job
from .base import Say, outcome_from_folder

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Run jobs sequentially in this process."""

    def __init__(self, cfg: ExecutorConfig, out: Path, workflow: str) -> None:
        self.cfg, self.out, self.workflow = cfg, Path(out), workflow

    def check(self) -> None:
        """Nothing to check for local runs."""

    def describe(self, jobs: Sequence[Job]) -> list[str]:
        return [f"local executor: {len(jobs)} job(s) sequentially in this process"]

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        outcomes: dict[str, JobOutcome] = {}
        for job in jobs:
            clear_status(self.out / "jobs" / job.name)
        for i, job in enumerate(jobs, 1):
            wd = self.out / "jobs" / job.name
            say(f"[{i}/{len(jobs)}] {job.name} running (log: {wd / 'job.log'})")
            caught: BaseException | None = None
            try:
                run_job(job.fn, job.kwargs, wd)
            except (Exception, SystemExit) as exc:  # a job's failure (KeyboardInterrupt stops the run)
                caught = exc
            outcomes[job.name] = o = outcome_from_folder(job, self.out, caught)
            say(f"[{i}/{len(jobs)}] {job.name} {o.state}"
                + (f" in {o.elapsed_s:.1f} s" if o.elapsed_s is not None else "")
                + (f": {o.error}" if o.error else ""))
        return outcomes
