"""Gaussian-process potential energy surfaces trained on energies and forces (gpytorch).

Public API: :class:`GPPotential` (estimator), :class:`GPCalculator` (ASE
calculator with uncertainties), :func:`evaluate`, :mod:`sciml.gp.active`
(uncertainty-driven active learning), :mod:`sciml.gp.kernels`,
:mod:`sciml.gp.descriptors`, :mod:`sciml.gp.symmetry`.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "GPPotential": "sciml.gp.model",
    "LaplaceResult": "sciml.gp.model",
    "HyperparameterWarning": "sciml.gp.model",
    "evaluate": "sciml.gp.model",
    "GPCalculator": "sciml.gp.calculator",
    "EnergyForceKernel": "sciml.gp.kernels",
    "active_learning": "sciml.gp.active",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sciml.gp' has no attribute {name!r}")
