"""Lande--Arnold selection-gradient analysis on pandas data.

>>> from sciml.selection import lande_arnold          # doctest: +SKIP
>>> res = lande_arnold(df, "survived", ["weight_g", "total_length_mm"], fitness_type="binary",
...                    bootstrap=2000, permutations=2000, seed=0)   # doctest: +SKIP
>>> res.beta; res.gamma; res.table(); print(res.summary())          # doctest: +SKIP
>>> print(res.check())                                              # doctest: +SKIP

Field data: ``random_effects=`` / ``random_slopes=`` (years, sites; fluctuating selection),
``measurement_error=`` / ``individual=`` (errors in variables), ``missing="impute"`` (multiple
imputation) and :func:`selection_episodes` (Arnold & Wade episodes of selection).
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
    "Diagnostics": "diagnostics",
    "EpisodeResult": "episodes",
    "selection_episodes": "episodes",
    "SelectionResult": "results",
    "simulate_field_study": "simulate",
    "FitnessSurface": "surfaces",
    "fitness_surface": "surfaces",
}


__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
