"""Gaussian-process potential energy surfaces trained on energies and forces.

Public API: :class:`GPPotential` (the global, molecular GP estimator), :class:`GPCalculator` (ASE
calculator with uncertainties, for a fitted model or a saved file of either GP kind),
:func:`evaluate`, :func:`load_model`, :mod:`sciml.gp.active` (uncertainty-driven active learning).

One step a file, in the order data flows (each imports only the ones above it):

- ``descriptors.py`` inverse distances, Jacobians, :class:`Geometry`, :class:`Permutations`;
  ``symmetry.py`` permutations of identical atoms (bond-graph automorphisms)
- ``kernels.py`` joint energy/force covariance (assembly and its adjoint), ``EnergyForceKernel``
  for gpytorch; ``kernel_products.py`` matrix-free ``K V``
- ``data.py`` frames -> arrays; ``hyperparameters.py`` the packed vector, names, jitter
- ``likelihood.py`` exact NLML, gradient, Hessian; ``tuning.py`` optimiser; ``laplace.py`` results
- ``solvers.py`` Cholesky and preconditioned CG (linear_operator)
- ``evaluation.py`` metrics (:mod:`sciml.metrics`); ``model_file.py`` save/load
- ``global_gp.py`` :class:`GPPotential`; ``loading.py`` load by format key; ``calculator.py``;
  ``cli.py`` ``sciml gp train|eval``

The local-environment GP for materials (:class:`LocalGPPotential`), in the same order:

- ``soap.py`` neighbour lists (periodic), SOAP power spectrum, several elements
- ``sparse_features.py`` kernel and design rows (energies, forces, stress) against inducing environments
- ``sparse.py`` projected-process (DTC) marginal likelihood from sufficient statistics, k-means++ selection
- ``local_gp.py`` :class:`LocalGPPotential` (fit, predict with per-atom stds, calibrate, save/load);
  ``local_cli.py`` the ``--kind local`` branch of ``sciml gp train``
- ``onthefly.py`` FLARE-style on-the-fly learning (:func:`on_the_fly`, also in :mod:`sciml.gp.active`)
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "GPPotential": "global_gp",
    "LaplaceResult": "laplace",
    "HyperparameterWarning": "hyperparameters",
    "evaluate": "evaluation",
    "load_model": "loading",
    "GPCalculator": "calculator",
    "EnergyForceKernel": "kernels",
    "active_learning": "active",
    "LocalGPPotential": "local_gp",
    "on_the_fly": "onthefly",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
