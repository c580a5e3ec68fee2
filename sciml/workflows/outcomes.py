"""Outcomes: what happened to each job of a run (:class:`JobOutcome`) and to the run (:class:`RunResult`).

Plain records, filled by the executors and the runner and written to ``out/run.json``; they import
nothing of the package.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["JobOutcome", "RunResult"]


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
