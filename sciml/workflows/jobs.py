"""Jobs: the independent units of work a workflow's ``plan()`` returns, and the checks they must pass.

The bottom layer of ``sciml.workflows`` (it imports nothing of the package): a :class:`Job` names a
top-level function and its JSON-able keyword arguments; :func:`check_jobs` validates a plan;
:func:`job_record` is what ``out/jobs/<name>/job.json`` holds, so that a later run can tell whether a
stored result was computed with the same function and arguments; :func:`import_function` turns a
``module:qualname`` path back into the function (what a worker process does).
"""
from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Job", "JOB_NAME_RE", "check_jobs", "function_path", "import_function", "job_record"]

#: Job names are folder names and Slurm job names.
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def function_path(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a function (how job records and worker processes name it)."""
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def import_function(path: str) -> Callable[..., Any]:
    """The function named by ``module:qualname`` (the inverse of :func:`function_path`).

    >>> import_function("json:dumps") is json.dumps
    True
    """
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"function path {path!r}: expected 'module:qualname'")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"function path {path!r} names a {type(obj).__name__}, not a function")
    return obj


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

    @property
    def fn_path(self) -> str:
        """``module:qualname`` of ``fn``."""
        return function_path(self.fn)


def check_jobs(jobs: Any, module_name: str) -> list[Job]:
    """Validate what ``<module_name>.plan()`` returned: a list of :class:`Job` with unique, folder-safe
    names, top-level functions and JSON-able kwargs (without ``workdir``, which the engine passes).

    Raises ``TypeError``/``ValueError`` naming the job and the problem.
    """
    if not isinstance(jobs, (list, tuple)) or not all(isinstance(j, Job) for j in jobs):
        raise TypeError(f"{module_name}.plan() must return a list of Job, got {type(jobs).__name__}")
    seen: set[str] = set()
    for j in jobs:
        if not isinstance(j.name, str) or not JOB_NAME_RE.match(j.name):
            raise ValueError(f"{module_name}.plan(): job name {j.name!r} must match {JOB_NAME_RE.pattern} "
                             "(it is used as a folder and Slurm job name)")
        if j.name in seen:
            raise ValueError(f"{module_name}.plan(): duplicate job name {j.name!r}")
        seen.add(j.name)
        qual = getattr(j.fn, "__qualname__", "")
        if not callable(j.fn) or "<locals>" in qual or "<lambda>" in qual:
            raise TypeError(f"job {j.name!r}: fn must be a top-level importable function, got {j.fn!r}")
        if not isinstance(j.kwargs, Mapping):
            raise TypeError(f"job {j.name!r}: kwargs must be a dict, got {type(j.kwargs).__name__}")
        if "workdir" in j.kwargs:
            raise ValueError(f"job {j.name!r}: kwargs must not contain 'workdir' (the engine passes it)")
        try:
            json.dumps(j.kwargs)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"job {j.name!r}: kwargs must be JSON-able: {exc}") from exc
    return list(jobs)


def job_record(job: Job) -> dict:
    """The content of ``jobs/<name>/job.json``: function path, kwargs and the GPU hint."""
    return {"name": job.name, "fn": job.fn_path, "kwargs": job.kwargs, "gpu": job.gpu}
