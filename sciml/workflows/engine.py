"""Workflow engine: jobs, running them (locally or on Slurm), and collecting results.

A workflow module (``sciml/workflows/<name>.py``) defines ``Config`` (a dataclass),
``demo_config()``, ``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``.
The engine calls each job as ``job.fn(**job.kwargs, workdir=out/"jobs"/job.name)``,
stores the returned dict as ``result.json`` in the job folder, skips jobs whose
``result.json`` already exists, and finally calls ``report``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Job:
    """One independent unit of work of a workflow.

    Attributes
    ----------
    name:
        Unique within the workflow; used for the job folder ``out/jobs/<name>/`` and the Slurm job name.
    fn:
        A top-level importable function (picklable for submitit) returning a JSON-able dict.
        It is called as ``fn(**kwargs, workdir=Path)``.
    kwargs:
        JSON-able keyword arguments for ``fn``.
    gpu:
        Hint for the Slurm executor: request the configured GPUs for this job.

    Example
    -------
    >>> def square(x: int, workdir) -> dict:
    ...     return {"y": x * x}
    >>> Job(name="square-3", fn=square, kwargs={"x": 3})  # doctest: +ELLIPSIS
    Job(name='square-3', ...)
    """

    name: str
    fn: Callable[..., dict]
    kwargs: dict = field(default_factory=dict)
    gpu: bool = False
