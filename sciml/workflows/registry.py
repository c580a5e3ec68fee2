"""The workflow registry: which workflows ship with sciml and how a workflow module is found.

A workflow is a module with ``Config`` (a dataclass), ``demo_config()``, ``plan(cfg) -> list[Job]``
and ``report(cfg, out, results) -> dict``: a shipped name (``"selection_report"`` ->
``sciml.workflows.selection_report``), a dotted module path, or a ``.py`` file.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["WORKFLOWS", "available_workflows", "load_workflow", "resolve_workflow_ref", "workflow_name"]

#: The workflows shipped with sciml, in demo order.
WORKFLOWS = ("selection_report", "rnn_motifs", "gp_active_learning", "potential_md", "ensemble")

_PREFIX = "sciml.workflows."


def load_workflow(name: str | ModuleType) -> ModuleType:
    """Import a workflow module: ``"selection_report"`` -> ``sciml.workflows.selection_report``.

    Your own workflows: a dotted name (``"mypkg.my_workflow"``) imports that module, a path ending in
    ``.py`` (``"workflows/learning_curve.py"``) imports that file. The module must define ``Config``,
    ``demo_config``, ``plan`` and ``report``.

    Example
    -------
    >>> load_workflow("selection_report").__name__
    'sciml.workflows.selection_report'
    """
    if isinstance(name, ModuleType):
        module = name
    elif isinstance(name, (str, os.PathLike)) and str(name).endswith(".py"):
        module = _import_file(Path(name))
    else:
        if not isinstance(name, str) or not name:
            raise TypeError(f"workflow: expected a workflow name (str), got {name!r}")
        modname = name if "." in name else f"{_PREFIX}{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name is not None and modname.startswith(exc.name):
                known = ", ".join(available_workflows()) or "none installed"
                raise ValueError(f"workflow: unknown workflow {name!r} (module {modname} not found); "
                                 f"available: {known}") from exc
            raise
    missing = [a for a in ("Config", "demo_config", "plan", "report") if not hasattr(module, a)]
    if missing:
        raise ValueError(f"workflow: module {module.__name__} is not a workflow (missing {', '.join(missing)})")
    if not dataclasses.is_dataclass(module.Config):
        raise TypeError(f"workflow: {module.__name__}.Config must be a dataclass")
    return module


def _import_file(path: Path) -> ModuleType:
    """Import a workflow from a ``.py`` file: its folder goes on ``sys.path`` and ``PYTHONPATH``
    (so process-pool workers and Slurm jobs, which inherit the environment, can import it too)."""
    path = path.expanduser().absolute()
    if not path.is_file():
        raise ValueError(f"workflow: file {str(path)!r} does not exist")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *parts])
    module = importlib.import_module(path.stem)
    if Path(getattr(module, "__file__", "") or "").resolve() != path.resolve():
        raise ValueError(f"workflow: {path} cannot be imported as {path.stem!r}: that name is already the module "
                         f"{getattr(module, '__file__', module)}; rename the file")
    return module


def available_workflows() -> list[str]:
    """Names of the shipped workflows whose modules exist."""
    return [n for n in WORKFLOWS if importlib.util.find_spec(f"{_PREFIX}{n}") is not None]


def workflow_name(module: ModuleType) -> str:
    """Short name of a workflow module (``selection_report`` for ``sciml.workflows.selection_report``)."""
    return module.__name__[len(_PREFIX):] if module.__name__.startswith(_PREFIX) else module.__name__


def resolve_workflow_ref(name: str, yaml_path: str | os.PathLike | None = None) -> str:
    """A ``.py`` workflow file is looked up relative to the current folder, then to the YAML file's folder."""
    if isinstance(name, str) and name.endswith(".py") and not Path(name).expanduser().is_absolute():
        if not Path(name).exists() and yaml_path is not None and (Path(yaml_path).parent / name).exists():
            return str((Path(yaml_path).parent / name).absolute())
    return name
