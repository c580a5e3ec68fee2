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
import difflib
import enum
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal, Mapping

__all__ = [
    "ExecutorConfig",
    "RunSpec",
    "from_dict",
    "to_dict",
    "load_yaml",
    "load_run_config",
    "parse_time_minutes",
    "parse_mem",
]


# --------------------------------------------------------------------------- typed validation
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, typing.List, tuple, set, frozenset) or origin is typing.Sequence:
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"list of {inner}" if inner else "list"
    if origin in (dict, typing.Dict) or origin is typing.Mapping:
        return f"mapping {_type_name(args[0])} -> {_type_name(args[1])}" if args else "mapping"
    if isinstance(tp, type):
        if issubclass(tp, PurePath):
            return "path (string)"
        if dataclasses.is_dataclass(tp):
            return f"mapping of {tp.__name__} fields"
        return tp.__name__
    return str(tp)


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (converted where lossless)."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise TypeError(f"{where}: expected {_type_name(tp)}, got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin in (list, typing.List, set, frozenset) or origin is typing.Sequence or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return set(items) if origin in (set, frozenset) else items if origin is not tuple else tuple(items)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args or [Any] * len(value))))
    if origin in (dict, typing.Dict) or origin is typing.Mapping or tp is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, f"{where} key"): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            if isinstance(value, tp):
                return value
            return from_dict(tp, value, where=where)
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise TypeError(f"{where}: expected bool (true/false), got {_got(value)}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{where}: expected int, got {_got(value)}")
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
                try:
                    return float(value)
                except ValueError:
                    pass
            raise TypeError(f"{where}: expected float, got {_got(value)}")
        if tp is str:
            if isinstance(value, str):
                return value
            raise TypeError(f"{where}: expected str, got {_got(value)}")
        if issubclass(tp, PurePath):
            if isinstance(value, (str, PurePath)):
                return tp(value)
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
        if issubclass(tp, enum.Enum):
            try:
                return tp(value)
            except ValueError:
                raise ValueError(
                    f"{where}: expected one of {[m.value for m in tp]}, got {value!r}"
                ) from None
        if isinstance(value, tp):
            return value
        raise TypeError(f"{where}: expected {_type_name(tp)}, got {_got(value)}")
    return value  # annotations we do not understand are not checked


def from_dict(cls: type, data: Mapping[str, Any] | None, *, where: str = "config") -> Any:
    """Build the dataclass ``cls`` from a mapping, checking every key and value type.

    Unknown keys raise ``ValueError`` (with the closest valid key); values of the wrong type raise
    ``TypeError`` naming the key path and the expected type. Missing keys take the field defaults.

    Example
    -------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     lr: float = 1e-3
    ...     seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    >>> from_dict(C, {"lr": 0.01, "seeds": [1, 2]})
    C(lr=0.01, seeds=[1, 2])
    >>> from_dict(C, {"lr": "fast"})
    Traceback (most recent call last):
    ...
    TypeError: config.lr: expected float, got str 'fast'
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{where}: {cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: expected a mapping of {cls.__name__} fields, got {_got(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{hint}; valid keys for {cls.__name__}: {', '.join(fields)}"
            )
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: check nothing rather than fail
        hints = {}
    values = {k: _coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # __post_init__ validation of the dataclass
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(where) else f"{where}: {msg}") from exc


def to_dict(obj: Any) -> Any:
    """A dataclass (or nested containers) as plain YAML/JSON-able Python data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return obj


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
        if self.kind not in ("local", "slurm"):
            raise ValueError(f"kind: expected 'local' or 'slurm', got {self.kind!r}")
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
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc


_TOP_KEYS = ("workflow", "out", "executor", "config")


def resolve_workflow_ref(name: str, yaml_path: str | os.PathLike | None = None) -> str:
    """A ``.py`` workflow file is looked up relative to the current folder, then to the YAML file's folder."""
    if isinstance(name, str) and name.endswith(".py") and not Path(name).expanduser().is_absolute():
        if not Path(name).exists() and yaml_path is not None and (Path(yaml_path).parent / name).exists():
            return str((Path(yaml_path).parent / name).absolute())
    return name


def load_run_config(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    executor: str | None = None,
    out: str | os.PathLike | None = None,
) -> RunSpec:
    """Load and validate a run configuration from a YAML file or a mapping.

    ``executor`` (``"local"``/``"slurm"``) overrides ``executor.kind``; ``out`` overrides ``out``.
    A relative ``out`` is taken relative to the current directory; ``$VARS`` and ``~`` are expanded.

    Example
    -------
    >>> spec = load_run_config({"workflow": "selection_report", "out": "runs/b"})  # doctest: +SKIP
    >>> spec.config                                                                # doctest: +SKIP
    Config(...)
    """
    from .engine import load_workflow

    path: Path | None = None
    if isinstance(source, Mapping):
        data = dict(source)
        where = "run config"
    else:
        path = Path(source)
        data = load_yaml(path)
        where = str(path)
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping with keys {', '.join(_TOP_KEYS)}, got {_got(data)}")
    for key in data:
        if key not in _TOP_KEYS:
            close = difflib.get_close_matches(str(key), _TOP_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown top-level key {key!r}{hint}; valid keys: {', '.join(_TOP_KEYS)}")
    if "workflow" not in data:
        raise ValueError(f"{where}: missing key 'workflow' (the workflow name, e.g. 'selection_report')")
    name = data["workflow"]
    if not isinstance(name, str):
        raise TypeError(f"{where}: workflow: expected str, got {_got(name)}")
    name = resolve_workflow_ref(name, path)
    module = load_workflow(name)
    cfg = from_dict(module.Config, data.get("config") or {}, where="config")
    ex = from_dict(ExecutorConfig, data.get("executor") or {}, where="executor")
    if executor is not None:
        if executor not in ("local", "slurm"):
            raise ValueError(f"executor: expected 'local' or 'slurm', got {executor!r}")
        ex = dataclasses.replace(ex, kind=executor)
    out_value = out if out is not None else data.get("out")
    if out_value is None:
        out_value = Path("runs") / name.rsplit(".", 1)[-1]
    if not isinstance(out_value, (str, os.PathLike)):
        raise TypeError(f"{where}: out: expected a path (string), got {_got(out_value)}")
    out_path = Path(os.path.expanduser(os.path.expandvars(str(out_value))))
    if ex.log_dir:
        ex = dataclasses.replace(ex, log_dir=os.path.expanduser(os.path.expandvars(ex.log_dir)))
    return RunSpec(workflow=name, config=cfg, out=out_path, executor=ex, source=path)
