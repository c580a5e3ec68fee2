"""Lande--Arnold selection-gradient analysis on pandas data.

>>> from sciml.selection import lande_arnold          # doctest: +SKIP
>>> res = lande_arnold(df, "survived", ["weight_g", "total_length_mm"], fitness_type="binary",
...                    bootstrap=2000, permutations=2000, seed=0)   # doctest: +SKIP
>>> res.beta; res.gamma; res.table(); print(res.summary())          # doctest: +SKIP
"""
from __future__ import annotations

from .._lazy import lazy_exports

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


__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
