"""Lande--Arnold selection-gradient analysis on pandas data.

>>> from sciml.selection import lande_arnold          # doctest: +SKIP
>>> res = lande_arnold(df, "survived", ["weight_g", "total_length_mm"], fitness_type="binary",
...                    bootstrap=2000, permutations=2000, seed=0)   # doctest: +SKIP
>>> res.beta; res.gamma; res.table(); print(res.summary())          # doctest: +SKIP
"""
from __future__ import annotations

from .analysis import lande_arnold
from .canonical import CanonicalResult, canonical_analysis
from .gradients import (SelectionWarning, SeparationWarning, differentials, gamma_from_quadratic,
                        relative_fitness, standardize_traits)
from .response import predicted_response
from .results import SelectionResult


def __getattr__(name):  # heavy (torch/gpytorch) parts load on first use
    if name in ("FitnessSurface", "fitness_surface"):
        from . import surfaces

        return getattr(surfaces, name)
    raise AttributeError(f"module 'sciml.selection' has no attribute {name!r}")


__all__ = ["lande_arnold", "SelectionResult", "canonical_analysis", "CanonicalResult", "predicted_response",
           "relative_fitness", "standardize_traits", "differentials", "gamma_from_quadratic",
           "SelectionWarning", "SeparationWarning", "FitnessSurface", "fitness_surface"]
