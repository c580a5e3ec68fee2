"""End-to-end workflows, the demo, and batch execution (local or Slurm through submitit).

A workflow is a module ``sciml.workflows.<name>`` with a ``Config`` dataclass, ``demo_config()``,
``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``. The engine runs the planned
jobs (locally, in a process pool, or as Slurm job arrays), skips jobs whose ``result.json``
already exists, and writes the report.

Example
-------
>>> from sciml.workflows import run_workflow
>>> res = run_workflow("selection_report", out="runs/bumpus")                  # doctest: +SKIP
>>> res.ok, res.metrics                                                         # doctest: +SKIP
>>> run_workflow("ensemble", out="runs/ens", executor={"kind": "slurm", "partition": "gpu",
...              "gpus": 1, "time": "02:00:00"})                                # doctest: +SKIP

Command line: ``sciml workflow run CONFIG.yaml [--executor local|slurm] [--dry-run]``,
``sciml workflow list``, ``sciml workflow config NAME``, ``sciml demo``.
"""
from __future__ import annotations

from typing import Any

from .config import ExecutorConfig, RunSpec, from_dict, load_run_config
from .engine import WORKFLOWS, Job, JobOutcome, RunResult, available_workflows, load_workflow, run_spec, run_workflow

__all__ = [
    "Job",
    "JobOutcome",
    "RunResult",
    "ExecutorConfig",
    "RunSpec",
    "WORKFLOWS",
    "available_workflows",
    "from_dict",
    "load_run_config",
    "load_workflow",
    "run_demo",
    "run_spec",
    "run_workflow",
]


def __getattr__(name: str) -> Any:
    if name == "run_demo":
        from .demo import run_demo

        return run_demo
    raise AttributeError(f"module 'sciml.workflows' has no attribute {name!r}")
