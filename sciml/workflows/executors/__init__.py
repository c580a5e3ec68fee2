"""Executors: run a list of jobs in this process, in a process pool, or on Slurm via submitit,
all behind one protocol (:class:`~sciml.workflows.executors.base.Executor`).

Every executor calls :func:`sciml.workflows.worker.run_job` for each job, which writes ``result.json``
or ``error.json`` in the job folder. The Slurm executor learns job states from those files and from
``squeue``/``scontrol`` -- never from ``sacct``, which fails on clusters without an accounting
database (and then submitit would wait forever for a job that died) -- and its waiting is bounded.
"""
from __future__ import annotations

from pathlib import Path

from ..config import ExecutorConfig
from .base import Executor, Say, outcome_from_folder
from .local import LocalExecutor
from .pool import PoolExecutor
from .slurm import MAX_ARRAY, SlurmExecutor
from .slurm_queue import scontrol_state, squeue_states

__all__ = ["Executor", "LocalExecutor", "PoolExecutor", "SlurmExecutor", "make_executor", "squeue_states",
           "scontrol_state", "outcome_from_folder", "Say", "MAX_ARRAY"]


def make_executor(cfg: ExecutorConfig, out: Path, workflow: str) -> Executor:
    """The executor for ``cfg``: Slurm for ``kind: slurm``, else a process pool for ``workers > 1``,
    else this process."""
    if cfg.kind == "slurm":
        return SlurmExecutor(cfg, out, workflow)
    if cfg.workers > 1:
        return PoolExecutor(cfg, out, workflow)
    return LocalExecutor(cfg, out, workflow)
