"""Lande--Arnold selection-gradient analysis on pandas data.

>>> from sciml.selection import lande_arnold          # doctest: +SKIP
>>> res = lande_arnold(df, "survived", ["weight_g", "total_length_mm"], fitness_type="binary",
...                    bootstrap=2000, permutations=2000, seed=0)   # doctest: +SKIP
>>> res.beta; res.gamma; res.table(); print(res.summary())          # doctest: +SKIP
"""
from __future__ import annotations

import importlib

# Public names -> defining module. Everything loads on first use (PEP 562), so that
# `import sciml.selection.cli` (and hence `sciml --help`) does not pull in scipy/statsmodels/torch.
_EXPORTS = {
    "lande_arnold": "analysis",
    "CanonicalResult": "canonical",
    "canonical_analysis": "canonical",
    "SelectionWarning": "gradients",
    "SeparationWarning": "gradients",
    "differentials": "gradients",
    "gamma_from_quadratic": "gradients",
    "relative_fitness": "gradients",
    "standardize_traits": "gradients",
    "predicted_response": "response",
    "SelectionResult": "results",
    "FitnessSurface": "surfaces",
    "fitness_surface": "surfaces",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'sciml.selection' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = ["lande_arnold", "SelectionResult", "canonical_analysis", "CanonicalResult", "predicted_response",
           "relative_fitness", "standardize_traits", "differentials", "gamma_from_quadratic",
           "SelectionWarning", "SeparationWarning", "FitnessSurface", "fitness_surface"]
