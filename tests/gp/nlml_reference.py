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


def ard_rbf_covariance(pos: torch.Tensor, perm_idx: torch.Tensor, feature_scale: torch.Tensor, lengthscale: torch.Tensor,
                       s2: torch.Tensor) -> torch.Tensor:
    """Joint energy/force covariance of a symmetrised RBF kernel on scaled inverse distances, by brute force.

    ``k(R, R') = s2 mean_p exp(-|x(R) - x(R')[idx_p]|^2 / (2 l^2))`` with ``x_k = feature_scale_k / |r_i - r_j|``
    (pairs ``i < j`` row-major); ``cov(E, F') = -dk/dR'``, ``cov(F, F') = d2k/dR dR'``, all by autograd
    through the positions (no library kernel code). Rows per frame interleaved ``[E, F_0x, F_0y, ...]``.
    Differentiable in ``feature_scale``, ``lengthscale`` and ``s2``.
    """
    from torch.func import jacfwd, jacrev

    n, a = pos.shape[0], pos.shape[1]
    i, j = torch.triu_indices(a, a, 1)

    def desc(R):
        return feature_scale / torch.linalg.norm(R[i] - R[j], dim=-1)

    def k(Ra, Rb):
        xa, xb = desc(Ra), desc(Rb)
        d2 = ((xa[None, :] - xb[perm_idx]) ** 2).sum(-1)
        return s2 * torch.exp(-0.5 * d2 / lengthscale**2).mean()

    dk_db = jacrev(k, argnums=1)  # (A, 3)
    d2k = jacfwd(dk_db, argnums=0)  # [b (A,3), a (A,3)]
    m = 1 + 3 * a
    rows = []
    for p in range(n):
        row = []
        for q in range(n):
            ee = k(pos[p], pos[q]).reshape(1, 1)
            ef = -dk_db(pos[p], pos[q]).reshape(1, 3 * a)
            fe = -jacrev(k, argnums=0)(pos[p], pos[q]).reshape(3 * a, 1)
            ff = d2k(pos[p], pos[q]).reshape(3 * a, 3 * a).T
            row.append(torch.cat([torch.cat([ee, ef], 1), torch.cat([fe, ff], 1)], 0))
        rows.append(torch.cat(row, 1))
    out = torch.cat(rows, 0)
    assert out.shape == (n * m, n * m)
    return out
