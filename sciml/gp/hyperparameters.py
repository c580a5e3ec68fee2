"""The packed hyperparameter vector of the global GP: names, packing, unpacking.

The kernel is a mixture of ``C`` components with their own length-scales (``C = 1``: one
Matérn/RBF kernel)::

    theta = [log l_1, log r_2..r_C, log w_2..w_C, log s, log sigma_E, log sigma_F, (mu - mean E) / std E]

Length-scales are ordered, ``l_c = l_{c-1} r_c`` (``r_c >= 1``), so the first component is the
shortest; the variance fractions are ``pi = (1, w_2, ..., w_C) / (1 + sum w)``. ``s`` is the
signal standard deviation (eV), ``sigma_E`` / ``sigma_F`` the energy (eV) and force (eV/Å) noise
standard deviations, ``mu`` the constant prior mean of the energy, stored relative to the
training energies (:class:`EnergyScale`) so that every entry is of order one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["JITTER", "HyperparameterWarning", "EnergyScale", "param_names", "n_kernel_params", "kernel_params", "unpack",
           "noise_vector"]

#: Diagonal jitter relative to the (first component's) signal variance. Reference labels (DFT/xTB) are
#: deterministic: the fitted noise goes to ~1e-6 of the signal std, and with a jitter of 1e-10 the jitter acted
#: as a noise floor that the marginal likelihood compensated with a too-short length-scale (0.4 instead of
#: 1.1-1.6 on ethanol; 25-28 % larger test force errors). ``SCIML_GP_JITTER`` overrides it.
JITTER = float(os.environ.get("SCIML_GP_JITTER", "1e-13"))


class HyperparameterWarning(UserWarning):
    """The marginal-likelihood optimum is flat, at a bound, or not a minimum."""


@dataclass
class EnergyScale:
    """Mean and standard deviation of the training energies (eV): the scale of the packed mean."""

    e_mean: float
    e_std: float

    def mean(self, theta_mean: torch.Tensor) -> torch.Tensor:
        """The prior mean energy (eV) from its packed value."""
        return self.e_mean + self.e_std * theta_mean


def param_names(n_scales: int) -> list[str]:
    """Names of the packed hyperparameters ``theta`` for a mixture of ``n_scales`` kernels.

    Example
    -------
    >>> param_names(1)
    ['log_lengthscale', 'log_signal_std', 'log_energy_noise', 'log_force_noise', 'mean_energy']
    """
    ls = ["log_lengthscale"] + [f"log_lengthscale_ratio_{c + 1}" for c in range(1, n_scales)]
    w = [f"log_weight_{c + 1}" for c in range(1, n_scales)]
    return ls + w + ["log_signal_std", "log_energy_noise", "log_force_noise", "mean_energy"]


def n_kernel_params(n_scales: int) -> int:
    """Length-scale and weight entries of ``theta`` for ``n_scales`` components: ``2 C - 1``."""
    return 2 * n_scales - 1


def kernel_params(t: torch.Tensor, n_scales: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Length-scales and variance fractions from ``[log l_1, log r_2..r_C, log w_2..w_C]`` (differentiable)."""
    ls = torch.exp(torch.cumsum(t[:n_scales], 0))
    if n_scales == 1:
        return ls, torch.ones(1, dtype=torch.float64)
    logits = torch.cat([torch.zeros(1, dtype=torch.float64), t[n_scales : 2 * n_scales - 1]])
    return ls, torch.softmax(logits, 0)


def unpack(theta: torch.Tensor, scale: EnergyScale):
    """``(lengthscales, fractions, s^2, sigma_E^2, sigma_F^2, mu)`` from the packed ``theta``."""
    n_scales = (len(theta) - 3) // 2
    nk = n_kernel_params(n_scales)
    ls, fr = kernel_params(theta[:nk], n_scales)
    return (
        ls,
        fr,
        torch.exp(2 * theta[nk]),
        torch.exp(2 * theta[nk + 1]),
        torch.exp(2 * theta[nk + 2]),
        scale.mean(theta[nk + 3]),
    )


def noise_vector(n: int, n_out: int, var_e: torch.Tensor | float, var_f: torch.Tensor | float) -> torch.Tensor:
    """Diagonal noise variances of the interleaved targets: ``var_e`` at energies, ``var_f`` at forces."""
    mask = torch.zeros(n, n_out, dtype=torch.float64)
    mask[:, 0] = 1.0
    return (mask * var_e + (1.0 - mask) * var_f).reshape(-1)
