"""Reference NLML for the tests: the full (not profiled) NLML by autograd through a dense Cholesky.

Independent of the library's trace-formula gradient and assembled Hessian, which are checked against it.
"""
from __future__ import annotations

import math

import torch

from sciml.gp.hyperparameters import JITTER, EnergyScale, noise_vector, unpack
from sciml.gp.kernels import joint_covariance


def negative_log_marginal_likelihood(theta: torch.Tensor, geo, perms, y: torch.Tensor, kind: str,
                                     scales: EnergyScale, jitter: float = JITTER) -> torch.Tensor:
    """Exact NLML of energies+forces as a differentiable function of the packed ``theta``."""
    n, m = len(geo), geo.n_outputs
    ls, fr, s2, ve, vf, mu = unpack(theta, scales)
    K = joint_covariance(geo, geo, perms, ls, s2, kind, fractions=fr)
    K = K + torch.diag(noise_vector(n, m, ve, vf) + jitter * s2 * fr[0])
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        return torch.tensor(float("inf"), dtype=torch.float64)
    mean = torch.nn.functional.pad(mu.reshape(1, 1).expand(n, 1), (0, m - 1)).reshape(-1)
    r = (y - mean)[:, None]
    alpha = torch.cholesky_solve(r, L)
    return 0.5 * (r * alpha).sum() + torch.log(torch.diagonal(L)).sum() + 0.5 * n * m * math.log(2 * math.pi)
