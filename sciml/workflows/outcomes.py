"""Outcomes: what happened to each job of a run (:class:`JobOutcome`) and to the run (:class:`RunResult`).

Plain records, filled by the executors and the runner and written to ``out/run.json``; they import
nothing of the package. A job that raised carries the exception's type, message and traceback
(:func:`exception_fields`, :func:`traceback_fields`), whichever process it ran in.
"""
from __future__ import annotations

import traceback as _tb
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["JobOutcome", "RunResult", "exception_fields", "traceback_fields", "format_traceback"]

#: Failed jobs whose whole traceback :meth:`RunResult.summary` shows (the others: their first line).
SUMMARY_TRACEBACKS = 3


def format_traceback(exc: BaseException, skip_file: str | None = None) -> str:
    """The formatted traceback of ``exc`` (with its chained causes), without the leading frames of
    ``skip_file`` (the wrapper that caught it) as long as other frames remain."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and tb.tb_next is not None and skip_file and tb.tb_frame.f_code.co_filename == skip_file:
        tb = tb.tb_next
    return "".join(_tb.format_exception(type(exc), exc, tb))


def exception_fields(exc: BaseException, skip_file: str | None = None) -> dict:
    """``error`` (``"Type: message"``), ``error_type`` and ``traceback`` of an exception, as
    :class:`JobOutcome` keyword arguments (and the keys of ``error.json``)."""
    return {"error": f"{type(exc).__name__}: {exc}", "error_type": type(exc).__name__,
            "traceback": format_traceback(exc, skip_file)}


def traceback_fields(text: str) -> dict:
    """The same fields from a formatted traceback (e.g. the one submitit records for a Slurm job):
    type and message come from its last line, ``Type: message``."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else "error"
    head = last.partition(": ")[0].strip()
    kind = head.rsplit(".", 1)[-1] if head.replace(".", "").replace("_", "").isalnum() else None
    return {"error": last, "error_type": kind, "traceback": text}


@dataclass
class JobOutcome:
    """What happened to one job in a run.

    ``error`` is one line (``"RuntimeError: x must be positive"``, or why a job was lost);
    when the job raised, ``error_type`` is the exception's class name and ``traceback`` the
    formatted traceback from the process that ran it (also in ``jobs/<name>/error.json``).
    """

    name: str
    state: str  # completed | skipped | failed | lost | timeout | submitted | planned
    elapsed_s: float | None = None
    error: str | None = None
    log: str | None = None
    slurm_job_id: str | None = None
    attempts: int = 0
    error_type: str | None = None
    traceback: str | None = None

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
    report_traceback: str | None = None

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
        shown = 0
        for name in self.failed:
            j = self.jobs[name]
            where = f" (log: {j.log})" if j.log else ""
            lines.append(f"  FAILED {name}: {j.error}{where}")
            if j.traceback and shown < SUMMARY_TRACEBACKS:
                shown += 1
                lines.extend("    " + ln for ln in j.traceback.rstrip().splitlines())
            elif j.traceback:
                lines.append(f"    (traceback in {self.out / 'jobs' / name / 'error.json'})")
        if self.failed:
            lines.append("  Fix the cause and run the same command again: completed jobs are skipped and "
                         "only the failed ones run again.")
        if self.report_error:
            lines.append(f"  report() failed: {self.report_error}")
            if self.report_traceback:
                lines.extend("    " + ln for ln in self.report_traceback.rstrip().splitlines())
        if self.ok and self.report_files:
            lines.append(f"  report: {', '.join(self.report_files)}")
        return "\n".join(lines)
