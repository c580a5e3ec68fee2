"""Lazy exports for package ``__init__`` modules (PEP 562): one mechanism for every sciml package.

Public names are imported from their defining module on first use, so that ``import sciml`` and
``sciml --help`` do not pay for torch, scipy or pandas.

Example (the whole of a package ``__init__``)::

    from .._lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"lande_arnold": "analysis"})
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable, Mapping, Sequence


def lazy_exports(
    package: str,
    names: Mapping[str, str] | None = None,
    *,
    by_module: Mapping[str, Sequence[str]] | None = None,
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``names`` maps a public name to the submodule (relative to ``package``) that defines it;
    ``by_module`` is the same table grouped by submodule; ``submodules`` are exported as modules
    themselves (``sciml.gp``). A name defined twice raises ``ValueError``.
    """
    where: dict[str, str] = {}
    pairs = list((names or {}).items()) + [(n, m) for m, ns in (by_module or {}).items() for n in ns]
    for name, module in pairs:
        if name in where and where[name] != module:
            raise ValueError(f"{package}: {name!r} is exported from both {where[name]!r} and {module!r}")
        where[name] = module
    mods = set(submodules)
    clash = mods & set(where)
    if clash:
        raise ValueError(f"{package}: {sorted(clash)} are both submodules and exported names")
    import sys

    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name in where:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        elif name in mods:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value          # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where) | mods)

    return __getattr__, __dir__, sorted(set(where) | mods)
