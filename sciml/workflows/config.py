"""Workflow configuration: YAML files, typed validation against dataclasses, executor settings.

A run configuration is a YAML file::

    workflow: selection_report        # a module sciml.workflows.<name> (or a dotted module path)
    out: runs/bumpus                  # output folder (relative paths: relative to the YAML file)
    executor:                         # optional; see ExecutorConfig
      kind: slurm
      partition: gpu
      gpus: 1
      time: "02:00:00"
    config:                           # fields of the workflow's Config dataclass
      n_boot: 2000

Every key is checked against the dataclass it fills; errors name the key path
(``config.n_boot``) and the expected type.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Mapping, Sequence

import yaml

from .registry import load_workflow, resolve_workflow_ref, workflow_name
from .validate import check_keys, describe_value, from_dict, to_dict, validate

__all__ = [
    "ExecutorConfig",
    "RunSpec",
    "make_spec",
    "apply_overrides",
    "from_dict",
    "to_dict",
    "load_yaml",
    "load_run_config",
    "parse_time_minutes",
    "parse_mem",
    "resolve_workflow_ref",
]


# --------------------------------------------------------------------------- Slurm-style values
_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time_minutes(value: int | float | str) -> int:
    """Wall time as whole minutes (rounded up) from minutes or Slurm syntax ``[D-]HH:MM[:SS]``.

    >>> parse_time_minutes("1-02:30:00"), parse_time_minutes("00:10"), parse_time_minutes(90)
    (1590, 10, 90)
    """
    if isinstance(value, bool):
        raise TypeError(f"time: expected minutes or 'D-HH:MM:SS', got {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"time: must be positive, got {value!r}")
        return int(-(-value // 1))
    m = _TIME_RE.match(str(value).strip())
    if not m:
        raise ValueError(f"time: expected minutes or '[D-]HH:MM[:SS]', got {value!r}")
    days, a, b, c = m.groups()
    days = int(days or 0)
    if b is None:  # "MM" or "D-HH"
        hours, minutes, seconds = (int(a), 0, 0) if m.group(1) else (0, int(a), 0)
    elif c is None:  # "HH:MM" (with days) or "MM:SS" per sbatch; we read HH:MM which is what people mean
        hours, minutes, seconds = int(a), int(b), 0
    else:
        hours, minutes, seconds = int(a), int(b), int(c)
    total = days * 1440 + hours * 60 + minutes + (1 if seconds else 0)
    if total <= 0:
        raise ValueError(f"time: must be positive, got {value!r}")
    return total


_MEM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$", re.IGNORECASE)


def parse_mem(value: int | float | str) -> str:
    """Memory per job in Slurm syntax (``"16G"``, ``"4000M"``); a bare number means GB.

    >>> parse_mem(16), parse_mem("4000M"), parse_mem("1.5G")
    ('16G', '4000M', '1536M')
    """
    if isinstance(value, bool):
        raise TypeError(f"mem: expected e.g. '16G' or a number of GB, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), "G"
    else:
        m = _MEM_RE.match(str(value).strip())
        if not m:
            raise ValueError(f"mem: expected e.g. '16G', '4000M' or a number of GB, got {value!r}")
        number, unit = float(m.group(1)), (m.group(2) or "M").upper()  # Slurm's default unit is MB
    if number <= 0:
        raise ValueError(f"mem: must be positive, got {value!r}")
    if not number.is_integer():
        steps = "KMGT"
        if unit == "K":
            return f"{int(-(-number // 1))}K"
        number, unit = number * 1024, steps[steps.index(unit) - 1]
    return f"{int(number)}{unit}"


# --------------------------------------------------------------------------- executor + run spec
@dataclass
class ExecutorConfig:
    """Where and how the jobs of a workflow run.

    ``kind: local`` runs jobs in this process (``workers: 1``) or in a process pool. ``kind: slurm``
    submits them through submitit, as one job array per resource group (``array: false``: one job
    each, named after the job). Slurm fields map to sbatch options: ``gpus`` -> ``--gpus-per-node``
    (only for jobs that ask for a GPU), ``cpus`` -> ``--cpus-per-task``, ``mem`` -> ``--mem``,
    ``time`` -> ``--time``, ``partition``, ``account``, ``qos``, ``constraint``; ``ddp: true`` runs each
    GPU job as ``gpus`` processes (``--ntasks-per-node=gpus``, one per GPU, ``cpus`` each) for
    DistributedDataParallel training (rank 0 writes the result; the job sets MASTER_ADDR/MASTER_PORT);
    ``array_parallelism`` -> ``--array=0-N%P``; ``additional`` adds any other sbatch option and
    ``setup`` shell lines run before each job (``module load ...``, ``source venv/bin/activate``).
    Waiting is bounded: job states come from the job's own result/error files and ``squeue``
    (no accounting database needed); ``wait_timeout`` (seconds, null = no limit) stops waiting.
    """

    kind: Literal["local", "slurm"] = "local"
    workers: int = 1
    retries: int = 0
    # --- slurm
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus: int = 1
    cpus: int = 2
    mem: str | int | float | None = "8G"
    time: str | int = "01:00:00"
    ddp: bool = False
    array: bool = True
    array_parallelism: int = 32
    setup: list[str] = field(default_factory=list)
    additional: dict[str, str | int | float | bool] = field(default_factory=dict)
    python: str | None = None
    poll_interval: float = 5.0
    wait_timeout: float | None = None
    log_dir: str | None = None

    def __post_init__(self) -> None:
        # value ranges only: types and `kind` are checked from the annotations by validate()
        for name in ("workers", "cpus", "array_parallelism"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")
        for name in ("gpus", "retries"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {getattr(self, name)!r}")
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval: must be positive, got {self.poll_interval!r}")
        if self.wait_timeout is not None and self.wait_timeout <= 0:
            raise ValueError(f"wait_timeout: must be positive or null, got {self.wait_timeout!r}")
        parse_time_minutes(self.time)  # validates
        if self.mem is not None:
            parse_mem(self.mem)

    @property
    def time_minutes(self) -> int:
        """``time`` in whole minutes."""
        return parse_time_minutes(self.time)


@dataclass
class RunSpec:
    """A validated run configuration: which workflow, its Config, the executor and the output folder."""

    workflow: str
    config: Any
    out: Path
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source: Path | None = None  # the YAML file it came from, if any

    def to_dict(self) -> dict:
        """Plain data, as written to ``out/config.yaml``."""
        return {
            "workflow": self.workflow,
            "out": str(self.out),
            "executor": to_dict(self.executor),
            "config": to_dict(self.config),
        }


def load_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file; errors name the file (and line, for syntax errors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc


_TOP_KEYS = ("workflow", "out", "executor", "config")


def _expand(path: str | os.PathLike) -> str:
    return os.path.expanduser(os.path.expandvars(str(path)))


def make_spec(
    workflow: str | os.PathLike | ModuleType,
    config: Any = None,
    out: str | os.PathLike | None = None,
    executor: ExecutorConfig | Mapping[str, Any] | str | None = None,
    *,
    source: Path | None = None,
) -> RunSpec:
    """Validate a run's settings: the one place every entry point (``run_workflow``,
    ``load_run_config``, ``sciml workflow run``, the ``workflows/*.py`` scripts) goes through.

    ``config``: the workflow's ``Config``, a mapping of its fields, or None (defaults); ``executor``:
    an :class:`ExecutorConfig`, a mapping of its fields, ``"local"``/``"slurm"`` or None. Both are
    checked by :func:`~sciml.workflows.validate.validate` (instances too). ``out``: ``$VARS`` and ``~``
    are expanded; default ``runs/<workflow>``. A ``.py`` workflow is recorded by its absolute path,
    so that the saved ``config.yaml`` finds it again.

    Example
    -------
    >>> spec = make_spec("selection_report", {"bootstrap": 100}, "runs/b", "local")
    >>> spec.config.bootstrap, spec.executor.kind, str(spec.out)
    (100, 'local', 'runs/b')
    """
    module = load_workflow(workflow)
    if isinstance(workflow, ModuleType):
        ref, short = workflow_name(module), workflow_name(module).rsplit(".", 1)[-1]
    elif str(workflow).endswith(".py"):
        ref, short = str(Path(workflow).expanduser().absolute()), Path(workflow).stem
    else:
        ref, short = str(workflow), str(workflow).rsplit(".", 1)[-1]
    cfg = validate(module.Config, config, where="config")
    ex = validate(ExecutorConfig, {"kind": executor} if isinstance(executor, str) else executor, where="executor")
    if ex.log_dir:
        ex = dataclasses.replace(ex, log_dir=_expand(ex.log_dir))
    if out is None:
        out = Path("runs") / short
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a path (string), got {describe_value(out)}")
    return RunSpec(workflow=ref, config=cfg, out=Path(_expand(out)), executor=ex, source=source)


def apply_overrides(data: dict, assignments: Sequence[str]) -> dict:
    """Apply ``key.path=value`` assignments (values parsed as YAML) to a nested dict, in place.

    >>> apply_overrides({"config": {"n": 1}}, ["config.n=3", "executor.kind=slurm"])
    {'config': {'n': 3}, 'executor': {'kind': 'slurm'}}
    """
    for item in assignments:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. config.n_seeds=3")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ValueError(f"--set {item!r}: empty key component")
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"--set {item!r}: {p!r} is not a mapping")
            node = nxt
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    return data


def _workflow_ref(data: Mapping[str, Any], where: str, path: Path | None) -> str:
    if "workflow" not in data:
        raise ValueError(f"{where}: missing key 'workflow' (the workflow name, e.g. 'selection_report')")
    name = data["workflow"]
    if not isinstance(name, str):
        raise TypeError(f"{where}: workflow: expected str, got {describe_value(name)}")
    return resolve_workflow_ref(name, path)


def load_run_config(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    executor: str | None = None,
    out: str | os.PathLike | None = None,
    demo: bool = False,
    overrides: Sequence[str] = (),
) -> RunSpec:
    """Load and validate a run configuration from a YAML file or a mapping.

    ``executor`` (``"local"``/``"slurm"``) overrides ``executor.kind``; ``out`` overrides ``out``;
    ``demo=True`` replaces ``config`` by the workflow's ``demo_config()``; then ``overrides``
    (``"config.n_seeds=3"``, values parsed as YAML) are applied. A relative ``out`` is taken relative
    to the current directory; ``$VARS`` and ``~`` are expanded. A ``.py`` workflow is looked up
    relative to the current directory, then to the YAML file. Validation: :func:`make_spec`.

    Example
    -------
    >>> spec = load_run_config({"workflow": "selection_report", "out": "runs/b"})
    >>> type(spec.config).__module__, spec.executor.kind
    ('sciml.workflows.selection_report', 'local')
    """
    path: Path | None = None
    if isinstance(source, Mapping):
        data, where = dict(source), "run config"
    else:
        path = Path(source)
        data, where = load_yaml(path), str(path)
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping with keys {', '.join(_TOP_KEYS)}, got {describe_value(data)}")
        data = dict(data)
    if demo:
        data["config"] = to_dict(load_workflow(_workflow_ref(data, where, path)).demo_config())
    apply_overrides(data, overrides)
    check_keys(data, list(_TOP_KEYS), where, kind="top-level key")
    name = _workflow_ref(data, where, path)
    ex = data.get("executor") or {}
    if executor is not None:
        if not isinstance(ex, Mapping):  # let the validator name the problem
            raise TypeError(f"executor: expected a mapping of ExecutorConfig fields, got {describe_value(ex)}")
        ex = {**ex, "kind": executor}
    return make_spec(name, data.get("config"), out if out is not None else data.get("out"), ex, source=path)
