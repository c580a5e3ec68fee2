"""The executor protocol: what the runner asks of every executor (local, process pool, Slurm).

An executor is made for one run (:class:`~sciml.workflows.config.ExecutorConfig`, the output folder
and the workflow name) and runs lists of jobs by calling :func:`~sciml.workflows.worker.run_job`
wherever they execute; ``run_job`` leaves ``result.json`` or ``error.json`` in the job folder, from
which the executor builds one :class:`~sciml.workflows.outcomes.JobOutcome` per job.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence

from ..jobs import Job
from ..outcomes import JobOutcome, exception_fields
from ..worker import job_state, read_elapsed, read_error

__all__ = ["Executor", "Say", "outcome_from_folder"]

#: Progress callback: one line of text.
Say = Callable[[str], None]


class Executor(Protocol):
    """Runs jobs somewhere. ``check`` fails early (before anything is written) when it cannot;
    ``describe`` says how the jobs would run (dry runs); ``run`` runs them and returns an outcome per job
    (``wait=False``: Slurm submits and returns ``submitted`` outcomes)."""

    def check(self) -> None: ...

    def describe(self, jobs: Sequence[Job]) -> list[str]: ...

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]: ...


def outcome_from_folder(job: Job, out: Path, exc: BaseException | None = None,
                        lost: str | None = None) -> JobOutcome:
    """The outcome of a local or pool job: from what it left in ``out/jobs/<name>/`` (``result.json``,
    or ``error.json`` with the worker's traceback); else from ``exc``, the exception the executor
    caught for it (e.g. raised before or after ``run_job`` could record it); else ``lost`` (``lost``
    says why, e.g. the worker process died)."""
    wd = out / "jobs" / job.name
    log = str(wd / "job.log")
    state = job_state(wd)
    if state == "completed":
        return JobOutcome(job.name, "completed", read_elapsed(wd), log=log)
    if state == "failed":
        return JobOutcome(job.name, "failed", read_elapsed(wd), log=log, **read_error(wd))
    if exc is not None:
        return JobOutcome(job.name, "failed", read_elapsed(wd), log=log, **exception_fields(exc))
    return JobOutcome(job.name, "lost", None, lost or "the job ended without result.json or error.json", log=log)
