"""End-to-end workflows, the demo, and batch execution (local or Slurm through submitit).

A workflow is a module ``sciml.workflows.<name>`` with a ``Config`` dataclass, ``demo_config()``,
``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``. The engine runs the planned
jobs (locally, in a process pool, or as Slurm job arrays), skips jobs whose ``result.json``
already exists, and writes the report.

The engine's modules, bottom-up (each imports only modules above it in this list):
``jobs`` (Job, plan checks) -> ``outcomes`` (JobOutcome, RunResult) -> ``worker`` (run_job and the
job folder) -> ``registry`` (finding workflows) -> ``validate`` (typed dataclass validation) ->
``config`` (ExecutorConfig, RunSpec, YAML) -> ``executors`` (local, pool, slurm; one protocol) ->
``run_files`` (run.json, config.yaml, metrics) -> ``runner`` (run_workflow) -> ``demo`` ->
``template`` -> ``cli``. ``engine`` re-exports the names it always had.

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

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, by_module={
    "jobs": ["Job"],
    "outcomes": ["JobOutcome", "RunResult"],
    "registry": ["WORKFLOWS", "available_workflows", "load_workflow"],
    "validate": ["from_dict"],
    "config": ["ExecutorConfig", "RunSpec", "load_run_config", "make_spec"],
    "runner": ["run_workflow", "run_spec"],
    "demo": ["run_demo"],
})
