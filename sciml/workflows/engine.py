"""Compatibility module: the names ``sciml.workflows.engine`` has always exported.

The engine is layered bottom-up -- :mod:`~sciml.workflows.jobs` -> :mod:`~sciml.workflows.outcomes`
-> :mod:`~sciml.workflows.worker` -> :mod:`~sciml.workflows.registry` -> :mod:`~sciml.workflows.config`
-> :mod:`~sciml.workflows.executors` -> :mod:`~sciml.workflows.runner` -- and this module only
re-exports from those (workflow modules written against ``from sciml.workflows.engine import Job``
keep working). New code imports from ``sciml.workflows`` itself.
"""
from __future__ import annotations

from .jobs import Job
from .outcomes import JobOutcome, RunResult
from .registry import WORKFLOWS, available_workflows, load_workflow
from .runner import run_spec, run_workflow
from .worker import job_state, run_job

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
