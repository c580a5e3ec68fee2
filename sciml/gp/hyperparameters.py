"""The packed hyperparameter vector of the global GP: names, packing, unpacking.

The kernel is a mixture of ``C`` components with their own length-scales (``C = 1``: one
Matérn/RBF kernel)::

    theta = [log l_1, log r_2..r_C, log w_2..w_C, log s, log sigma_E, log sigma_F, (mu - mean E) / std E]

Length-scales are ordered, ``l_c = l_{c-1} r_c`` (``r_c >= 1``), so the first component is the
shortest; the variance fractions are ``pi = (1, w_2, ..., w_C) / (1 + sum w)``. With ARD
(:mod:`sciml.gp.pair_groups`: ``G`` groups of descriptor entries with their own length-scale)
``log l_1`` is replaced by the ``G`` entries ``log l_1[g]`` (the first component's length-scale of
group ``g``; component ``c`` has ``l_1[g] r_2 ... r_c``)::

    theta = [log l_1[1..G], log r_2..r_C, log w_2..w_C, log s, log sigma_E, log sigma_F, (mu - mean E) / std E]

``s`` is the signal standard deviation (eV), ``sigma_E`` / ``sigma_F`` the energy (eV) and force (eV/Å) noise
standard deviations, ``mu`` the constant prior mean of the energy, stored relative to the
training energies (:class:`EnergyScale`) so that every entry is of order one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

__all__ = ["JITTER", "HyperparameterWarning", "EnergyScale", "param_names", "n_kernel_params", "kernel_params", "unpack",
           "ard_params", "unpack_ard", "noise_vector"]

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


def param_names(n_scales: int, group_names: Sequence[str] | None = None) -> list[str]:
    """Names of the packed hyperparameters ``theta`` for a mixture of ``n_scales`` kernels.

    ``group_names``: the ARD groups (:func:`sciml.gp.pair_groups.descriptor_groups`); ``None``
    (or one group): one length-scale.

    Example
    -------
    >>> param_names(1)
    ['log_lengthscale', 'log_signal_std', 'log_energy_noise', 'log_force_noise', 'mean_energy']
    >>> param_names(1, ["C-H", "H-H"])[:2]
    ['log_lengthscale[C-H]', 'log_lengthscale[H-H]']
    """
    if group_names is not None and len(group_names) > 1:
        first = [f"log_lengthscale[{g}]" for g in group_names]
    else:
        first = ["log_lengthscale"]
    ls = first + [f"log_lengthscale_ratio_{c + 1}" for c in range(1, n_scales)]
    w = [f"log_weight_{c + 1}" for c in range(1, n_scales)]
    return ls + w + ["log_signal_std", "log_energy_noise", "log_force_noise", "mean_energy"]


def n_kernel_params(n_scales: int, n_groups: int = 1) -> int:
    """Length-scale and weight entries of ``theta``: ``G + 2 C - 2`` (``2 C - 1`` without ARD)."""
    return n_groups + 2 * n_scales - 2


def kernel_params(t: torch.Tensor, n_scales: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Length-scales and variance fractions from ``[log l_1, log r_2..r_C, log w_2..w_C]`` (differentiable)."""
    ls = torch.exp(torch.cumsum(t[:n_scales], 0))
    if n_scales == 1:
        return ls, torch.ones(1, dtype=torch.float64)
    logits = torch.cat([torch.zeros(1, dtype=torch.float64), t[n_scales : 2 * n_scales - 1]])
    return ls, torch.softmax(logits, 0)


def ard_params(t: torch.Tensor, n_scales: int, n_groups: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(l_1[g] (G,), component factors (C,) = (1, r_2, r_2 r_3, ...), fractions (C,))`` (differentiable).

    The length-scale of component ``c`` in group ``g`` is ``l_1[g] * factor[c]``.
    """
    group_ls = torch.exp(t[:n_groups])
    factors, fractions = kernel_params(torch.cat([torch.zeros(1, dtype=t.dtype), t[n_groups:]]), n_scales)
    return group_ls, factors, fractions


def unpack(theta: torch.Tensor, scale: EnergyScale):
    """``(lengthscales, fractions, s^2, sigma_E^2, sigma_F^2, mu)`` from the packed ``theta`` (one length-scale group)."""
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


def unpack_ard(theta: torch.Tensor, scale: EnergyScale, n_groups: int):
    """``(l_1[g], component factors, fractions, s^2, sigma_E^2, sigma_F^2, mu)`` from an ARD ``theta``."""
    n_scales = (len(theta) - n_groups - 2) // 2
    nk = n_kernel_params(n_scales, n_groups)
    gl, fac, fr = ard_params(theta[:nk], n_scales, n_groups)
    return (gl, fac, fr, torch.exp(2 * theta[nk]), torch.exp(2 * theta[nk + 1]), torch.exp(2 * theta[nk + 2]),
            scale.mean(theta[nk + 3]))


def noise_vector(n: int, n_out: int, var_e: torch.Tensor | float, var_f: torch.Tensor | float) -> torch.Tensor:
    """Diagonal noise variances of the interleaved targets: ``var_e`` at energies, ``var_f`` at forces."""
    mask = torch.zeros(n, n_out, dtype=torch.float64)
    mask[:, 0] = 1.0
    return (mask * var_e + (1.0 - mask) * var_f).reshape(-1)
