"""Gaussian-process potential energy surfaces trained on energies and forces (gpytorch)."""
