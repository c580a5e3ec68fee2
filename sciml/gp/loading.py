"""Load a saved GP of either kind by the format key written in its file.

The key names the class that reads it: ``"sciml.gp.GPPotential/<version>"`` ->
:class:`sciml.gp.global_gp.GPPotential`, ``"sciml.gp.LocalGPPotential/<version>"`` ->
``sciml.gp.local_gp.LocalGPPotential``. The class is imported by its dotted path when a file needs
it, so a model kind that is not installed gives a clear error instead of an import failure here.
Every class has ``load(path)`` and ``predict(frames, return_std=...)``.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from .model_file import read_format

__all__ = ["MODEL_CLASSES", "load_model"]

#: format-key prefix -> "module:Class" that reads it
MODEL_CLASSES = {
    "sciml.gp.GPPotential": "sciml.gp.global_gp:GPPotential",
    "sciml.gp.LocalGPPotential": "sciml.gp.local_gp:LocalGPPotential",
}


def load_model(path: str | Path):
    """The model saved in ``path``, read by the class its format key names.

    Example
    -------
    >>> gp = load_model("ethanol_gp.pt")   # doctest: +SKIP
    """
    fmt, _ = read_format(path)
    kind = fmt.split("/", 1)[0]
    if kind not in MODEL_CLASSES:
        raise ValueError(f"{str(path)!r} has format {fmt!r}; known GP model kinds: {sorted(MODEL_CLASSES)}")
    module, cls_name = MODEL_CLASSES[kind].split(":")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{str(path)!r} is a {fmt!r} model but {module}.{cls_name} is not available "
                         f"in this sciml ({exc})") from None
    return cls.load(path)
