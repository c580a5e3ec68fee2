"""Sparse (projected-process / DTC) marginal likelihood from sufficient statistics, and the posterior.

Model
-----
Observations ``y`` (energies, force components, stress components) are linear functionals of
the local-energy GP. With ``m`` inducing environments ``u`` and the design rows
``Phi = sigma^2 Phi0`` (:mod:`sciml.gp.sparse_features`; ``K_uu = sigma^2 K0``), the
projected-process (DTC; Seeger et al. 2003, Quiñonero-Candela & Rasmussen 2005; the
approximation of GAP and FLARE) likelihood is

    y ~ N(0, Phi K_uu^-1 Phi^T + Lambda),   Lambda = diag(noise_t^2) per observation type t.

Energy rows are divided by ``sqrt(n_atoms)`` of their frame first, so the energy noise is per
square-root atom (mixed system sizes), and stress rows carry their own noise. By Woodbury,
with ``A = K0 + sigma^2 sum_t G_t / noise_t^2``, ``G_t = Phi0_t^T Phi0_t``, ``b = sum_t Phi0_t^T y_t / noise_t^2``:

    2 NLML = sum_t yy_t / noise_t^2 - sigma^2 b^T A^-1 b + sum_t n_t log noise_t^2
             + log|A| - log|K0| + sum_E log n_atoms + n log 2 pi,

so the NLML and its exact gradient (torch autograd) need only the ``m x m`` statistics
``G_t, Phi0_t^T y_t, y_t^T y_t, n_t``: memory ``O(m^2)`` once the rows are reduced (the rows
of a batch of frames are built and reduced one batch at a time, ``O(n_env_batch m)``).

Posterior
---------
Local energy ``e(x) = k0(x, U) w`` with ``w = sigma^2 A^-1 b`` (computed in whitened form, see
:func:`posterior`). DTC predictive variance of a
linear functional with rows ``phi0`` against ``U`` and prior variance ``v0``:
``sigma^2 (v0 - phi0 K0^-1 phi0^T + phi0 A^-1 phi0^T)``. For local and total energies ``v0``
is exact (``k0(x, x) = 1`` and the sum over a frame's environment pairs); for forces the prior
term ``v0 - phi0 K0^-1 phi0^T`` (what the inducing set cannot represent) would need second
derivatives of the kernel and is left out: force variances are ``sigma^2 phi0 A^-1 phi0^T``
(plus the noise), rescaled by the calibration factor where held-out frames are given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["SufficientStats", "sparse_nlml", "kmeanspp", "JITTER"]

#: Jitter added to K0 (relative to the unit prior variance of k0).
JITTER = 1e-4

TYPES = ("energy", "forces", "stress")


@dataclass
class SufficientStats:
    """Per observation type ``t``: ``G[t] = Phi0^T Phi0`` (m, m), ``b[t] = Phi0^T y``, ``yy[t]``, ``n[t]``;
    ``log_n_atoms``: sum of log atom counts of the energy rows (the row scaling)."""

    m: int
    G: dict = field(default_factory=dict)
    b: dict = field(default_factory=dict)
    yy: dict = field(default_factory=dict)
    n: dict = field(default_factory=dict)
    log_n_atoms: float = 0.0

    def add(self, t: str, rows: torch.Tensor, y: torch.Tensor) -> None:
        """Add rows ``(k, m)`` and targets ``(k,)`` of type ``t`` (rows already scaled)."""
        if t not in TYPES:
            raise ValueError(f"observation type must be one of {TYPES}, got {t!r}")
        if len(rows) == 0:
            return
        G, b = rows.T @ rows, rows.T @ y
        if t in self.G:
            self.G[t] = self.G[t] + G
            self.b[t] = self.b[t] + b
            self.yy[t] = self.yy[t] + y @ y
            self.n[t] += len(y)
        else:
            self.G[t], self.b[t], self.yy[t], self.n[t] = G, b, y @ y, len(y)

    @property
    def types(self) -> list[str]:
        return [t for t in TYPES if t in self.G]

    def n_obs(self) -> int:
        return int(sum(self.n.values()))

    def scaled(self, d: torch.Tensor) -> "SufficientStats":
        """The statistics of the rows with column ``j`` multiplied by ``d[j]`` (differentiable in ``d``)."""
        return SufficientStats(self.m, {k: d[:, None] * v * d[None, :] for k, v in self.G.items()},
                               {k: d * v for k, v in self.b.items()}, dict(self.yy), dict(self.n), self.log_n_atoms)

    def detach(self) -> "SufficientStats":
        return SufficientStats(self.m, {k: v.detach() for k, v in self.G.items()},
                               {k: v.detach() for k, v in self.b.items()},
                               {k: v.detach() for k, v in self.yy.items()}, dict(self.n), self.log_n_atoms)


def _whitened(stats: SufficientStats, K0: torch.Tensor, s2: torch.Tensor, var: dict):
    """Cholesky of ``K = K0 + jitter`` and of ``B = I + s2 L_K^-1 (sum_t G_t / v_t) L_K^-T``, and ``L_K^-1 b``.

    The whitened form (as GPflow's SGPR) keeps ``B >= I`` well conditioned where ``A = K + ...``
    is not (near-duplicate inducing environments, large signal-to-noise ratios).
    """
    m = K0.shape[0]
    I = torch.eye(m, dtype=K0.dtype)
    LK = torch.linalg.cholesky(K0 + JITTER * I)
    G = torch.zeros_like(K0)
    bt = torch.zeros(m, dtype=K0.dtype)
    for t in stats.types:
        G = G + stats.G[t] / var[t]
        bt = bt + stats.b[t] / var[t]
    W = torch.linalg.solve_triangular(LK, G, upper=False)
    W = torch.linalg.solve_triangular(LK, W.T, upper=False)               # L^-1 G L^-T (symmetric)
    B = I + s2 * 0.5 * (W + W.T)
    LB = torch.linalg.cholesky(B)
    c = torch.linalg.solve_triangular(LK, bt[:, None], upper=False)[:, 0]
    return LK, LB, c


def sparse_nlml(stats: SufficientStats, K0: torch.Tensor, log_sigma: torch.Tensor, log_noise: dict
                ) -> torch.Tensor:
    """Negative log marginal likelihood of the DTC model (see the module docstring); differentiable.

    Computed in whitened form: ``log|A| - log|K| = log|B|`` and ``b^T A^-1 b = |L_B^-1 L_K^-1 b|^2``.
    """
    s2 = torch.exp(2 * log_sigma)
    var = {t: torch.exp(2 * log_noise[t]) for t in stats.types}
    LK, LB, c = _whitened(stats, K0, s2, var)
    z = torch.linalg.solve_triangular(LB, c[:, None], upper=False)[:, 0]
    quad = sum(stats.yy[t] / var[t] for t in stats.types) - s2 * (z @ z)
    logdet = sum(stats.n[t] * torch.log(var[t]) for t in stats.types) + 2 * torch.log(torch.diagonal(LB)).sum() \
        + stats.log_n_atoms
    return 0.5 * (quad + logdet + stats.n_obs() * math.log(2 * math.pi))


def posterior(stats: SufficientStats, K0: torch.Tensor, sigma: float, noise: dict) -> dict:
    """Weights ``w = sigma^2 L_K^-T B^-1 L_K^-1 b`` and the Cholesky factors ``chol_K`` and ``chol_B``.

    DTC latent variance of rows ``phi`` (k0 units, times ``sigma^2``): ``prior - |a|^2 + |L_B^-1 a|^2``
    with ``a = L_K^-1 phi^T``.
    """
    var = {t: torch.as_tensor(noise[t] ** 2, dtype=K0.dtype) for t in stats.types}
    LK, LB, c = _whitened(stats, K0, torch.as_tensor(sigma**2, dtype=K0.dtype), var)
    v = torch.cholesky_solve(c[:, None], LB)
    w = sigma**2 * torch.linalg.solve_triangular(LK.T, v, upper=True)[:, 0]
    return dict(weights=w, chol_B=LB, chol_K=LK)


def kmeanspp(X: np.ndarray, k: int, rng: np.random.Generator, exclude: np.ndarray | None = None) -> np.ndarray:
    """``k`` row indices of ``X`` by k-means++ seeding (D^2 sampling; Arthur & Vassilvitskii 2007).

    The first index is drawn uniformly (or, with ``exclude``, the rows already chosen act as
    centres); every next one with probability proportional to the squared distance to the
    nearest chosen row. Duplicates of chosen rows (distance 0) are never drawn again.
    Cost ``O(len(X) k D)``.
    """
    n = len(X)
    if k > n:
        raise ValueError(f"cannot choose {k} inducing environments from {n}")
    chosen: list[int] = []
    sq = (X * X).sum(1)
    d2 = np.full(n, np.inf)
    if exclude is not None and len(exclude):
        for c in np.asarray(exclude):
            d2 = np.minimum(d2, np.maximum(sq - 2 * X @ c + c @ c, 0.0))
    for _ in range(k):
        if not np.isfinite(d2).any():
            i = int(rng.integers(n))
        else:
            p = np.where(np.isfinite(d2), d2, 0.0)
            if p.sum() <= 0:
                break
            i = int(rng.choice(n, p=p / p.sum()))
        chosen.append(i)
        d2 = np.minimum(d2, np.maximum(sq - 2 * X @ X[i] + sq[i], 0.0))
        d2[i] = 0.0
    return np.asarray(chosen, dtype=np.int64)
