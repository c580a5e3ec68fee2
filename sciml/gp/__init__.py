"""Gaussian-process potential energy surfaces trained on energies and forces (gpytorch).

Public API: :class:`GPPotential` (estimator), :class:`GPCalculator` (ASE
calculator with uncertainties), :func:`evaluate`, :mod:`sciml.gp.active`
(uncertainty-driven active learning), :mod:`sciml.gp.kernels`,
:mod:`sciml.gp.descriptors`, :mod:`sciml.gp.symmetry`.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "GPPotential": "model",
    "LaplaceResult": "model",
    "HyperparameterWarning": "model",
    "evaluate": "model",
    "GPCalculator": "calculator",
    "EnergyForceKernel": "kernels",
    "active_learning": "active",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
