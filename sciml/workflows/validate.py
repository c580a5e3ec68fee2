"""Typed validation of configuration dataclasses: the one validator of ``sciml.workflows``.

A workflow's ``Config``, :class:`~sciml.workflows.config.ExecutorConfig` and the top level of a run
configuration are all checked here: unknown keys raise ``ValueError`` with the closest valid key,
values are checked against the dataclass annotations (``TypeError`` naming the key path and the
expected type), then the dataclass's own ``__post_init__`` checks value ranges.
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
import warnings
from pathlib import PurePath
from typing import Any, Iterable, Literal, Mapping

__all__ = ["check_keys", "from_dict", "to_dict", "validate", "describe_value"]


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


def describe_value(value: Any) -> str:
    """Type and (shortened) repr of a value, for error messages: ``str 'fast'``."""
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
        raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin in (list, typing.List, set, frozenset) or origin is typing.Sequence or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return set(items) if origin in (set, frozenset) else items if origin is not tuple else tuple(items)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args or [Any] * len(value))))
    if origin in (dict, typing.Dict) or origin is typing.Mapping or tp is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
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
            raise TypeError(f"{where}: expected bool (true/false), got {describe_value(value)}")
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{where}: expected int, got {describe_value(value)}")
        if tp is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
                try:
                    return float(value)
                except ValueError:
                    pass
            raise TypeError(f"{where}: expected float, got {describe_value(value)}")
        if tp is str:
            if isinstance(value, str):
                return value
            raise TypeError(f"{where}: expected str, got {describe_value(value)}")
        if issubclass(tp, PurePath):
            if isinstance(value, (str, PurePath)):
                return tp(value)
            raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
        if issubclass(tp, enum.Enum):
            try:
                return tp(value)
            except ValueError:
                raise ValueError(
                    f"{where}: expected one of {[m.value for m in tp]}, got {value!r}"
                ) from None
        if isinstance(value, tp):
            return value
        raise TypeError(f"{where}: expected {_type_name(tp)}, got {describe_value(value)}")
    return value  # annotations we do not understand are not checked


def check_keys(data: Iterable[Any], valid: list[str], where: str, *, kind: str = "key",
               valid_label: str = "valid keys") -> None:
    """Raise ``ValueError`` for the first key of ``data`` not in ``valid``, suggesting the closest one.

    >>> check_keys({"lrr": 1}, ["lr", "seed"], "config")
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'lrr' (did you mean 'lr'?); valid keys: lr, seed
    """
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown {kind} {key!r}{hint}; {valid_label}: {', '.join(valid)}")


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
        raise TypeError(f"{where}: expected a mapping of {cls.__name__} fields, got {describe_value(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, list(fields), where, valid_label=f"valid keys for {cls.__name__}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # e.g. a name imported only under TYPE_CHECKING: said, not silent
        warnings.warn(f"{where}: the annotations of {cls.__qualname__} cannot be resolved ({type(exc).__name__}: "
                      f"{exc}); its values are not type-checked", UserWarning, stacklevel=2)
        hints = {}
    values = {k: _coerce(v, hints.get(k, Any), f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # __post_init__ validation of the dataclass
        msg = str(exc)
        raise type(exc)(msg if msg.startswith(where) else f"{where}: {msg}") from exc


def validate(cls: type, value: Any, *, where: str = "config") -> Any:
    """The one entry point of validation: ``value`` as a checked instance of the dataclass ``cls``.

    ``value`` may be None (the defaults), a mapping of fields (:func:`from_dict`), or an instance of
    ``cls`` -- whose fields are checked the same way, since a dataclass does not check its annotations
    itself. Returns a new instance (values converted where lossless, e.g. ``int`` -> ``float``).

    Example
    -------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class C:
    ...     lr: float = 1e-3
    >>> validate(C, None), validate(C, {"lr": 1}), validate(C, C(lr=2))
    (C(lr=0.001), C(lr=1.0), C(lr=2.0))
    >>> validate(C, C(lr="fast"))
    Traceback (most recent call last):
    ...
    TypeError: config.lr: expected float, got str 'fast'
    """
    if value is None or isinstance(value, Mapping):
        return from_dict(cls, value, where=where)
    if isinstance(value, cls) and dataclasses.is_dataclass(value):
        kind = type(value)
        return from_dict(kind, {f.name: getattr(value, f.name) for f in dataclasses.fields(kind) if f.init},
                         where=where)
    raise TypeError(f"{where}: expected {getattr(cls, '__qualname__', cls)}, a mapping of its fields or null, "
                    f"got {describe_value(value)}")


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
