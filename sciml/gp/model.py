"""Exact GP on energies and forces: marginal-likelihood fitting, prediction, Laplace errors.

The model
---------
``E(R) ~ GP(mu, k(x(R), x(R')))`` with ``x`` the inverse-distance descriptor, ``k``
a permutation-symmetrised Matérn-5/2 or RBF kernel (see :mod:`sciml.gp.kernels`),
and forces ``F = -dE/dR`` observed jointly with energies. Hyperparameters, all
fitted by maximising the exact log marginal likelihood:

==========================  ==========================================
``lengthscale_``            descriptor length-scale (standardised descriptor units)
``signal_std_``             signal standard deviation ``s`` (eV)
``energy_noise_``           energy noise standard deviation (eV)
``force_noise_``            force noise standard deviation (eV/Å)
``mean_energy_``            constant prior mean of the energy (eV)
``lengthscales_``,          with ``n_scales > 1``: a sum of kernels with their own
``variance_fractions_``     length-scales and shares of the signal variance
==========================  ==========================================

Noiseless reference labels
--------------------------
Labels from DFT/xTB are deterministic: the fitted noise goes to ~1e-6 of the signal,
and what limits it is the jitter added for the Cholesky factorisation. The jitter is
1e-13 of the signal variance (``SCIML_GP_JITTER`` overrides it). With the earlier
1e-10 the jitter acted as a noise floor that the marginal likelihood compensated
with a too-short length-scale (0.4 instead of 1.1-1.6 on ethanol) and 25-28 %
larger test force errors. Predictions then interpolate: the weights reach |alpha| ~ 1e5
and predicted energies carry ~1e-9 eV of round-off, harmless for MD.

Large training sets
-------------------
The joint covariance has ``N (1 + 3 n_atoms)`` rows (28,000 for 1000 ethanol
frames: 6.3 GB in float64). The length-scale and the noise-to-signal ratios
are tuned by L-BFGS-B on the exact negative log marginal likelihood (NLML) of a
seeded random subset of ``n_tune`` configurations (default 25, a 700-square
matrix for ethanol: about 0.04 s per evaluation with its exact gradient by the
trace formula; the signal variance and the mean are profiled out in closed form).
The optimiser stops when an iteration improves the NLML by less than 0.05. On
ethanol (N = 100 / 200 training frames) tuning on 25 frames gave test force MAEs
of 36.6 / 25.3 meV/Å in fits of ~2 s, tuning on 100 frames 36.4 / 24.5 meV/Å in
~1 min. Then the full covariance is assembled once, block-row by block-row and only its lower triangle, into one float64 buffer that
is factorised in place (LAPACK ``dpotrf``): the peak memory is one copy of the
matrix, ``8 (N M)^2`` bytes, and the cost one Cholesky, ``(N M)^3 / 3`` flops;
the signal variance and the mean are re-estimated on all N from that factor.
Predicting energies and forces costs ``O(N M^2)`` per structure; predictive
standard deviations need a triangular solve, ``O((N M)^2 M)`` per structure.

Memory grows as ``N^2`` (N = 1500 ethanol frames: ~14 GB, N = 2000: ~25 GB, beyond
a 24 GB machine) and time as ``N^3`` (N = 1000 ethanol: ~2.5 min on one core, of
which ~2 min is the Cholesky); for larger sets select the informative frames with
:mod:`sciml.gp.active`, or use a machine with more memory (the code path is the
same). Conjugate gradients or inducing points are not implemented.

Uncertainty
-----------
``predict`` returns latent + noise standard deviations. On ethanol they are
conservative (95 % intervals hold ~99 % of force errors); :meth:`GPPotential.calibrate`
rescales them on held-out frames (variance scaling) to the nominal coverage.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from ..metrics import error_metrics, uncertainty_metrics

from .kernels import (
    KERNELS,
    Geometry,
    Permutations,
    _Assemble,
    assemble,
    mixture_coefficients,
    squared_distances,
)

__all__ = ["GPPotential", "LaplaceResult", "HyperparameterWarning", "negative_log_marginal_likelihood", "param_names"]

# Cholesky jitter relative to the (first component's) signal variance; see "Noiseless reference labels" above
_JITTER = float(os.environ.get("SCIML_GP_JITTER", "1e-13"))
_FORMAT = "sciml.gp.GPPotential/1"


class HyperparameterWarning(UserWarning):
    """The marginal-likelihood optimum is flat, at a bound, or not a minimum."""


# --------------------------------------------------------------------------- data


def _frames_to_arrays(frames: Sequence[Atoms], labels: bool, numbers: np.ndarray | None = None, source: str = "frames"):
    """Validate a list of configurations of one molecule and stack positions (and labels)."""
    from sciml.atoms import frame_labels, validate_frames

    if isinstance(frames, Atoms):
        frames = [frames]
    frames = list(frames)
    if len(frames) == 0:
        raise ValueError(f"{source}: no configurations given")
    for k, a in enumerate(frames):
        if not isinstance(a, Atoms):
            raise TypeError(f"{source}: frame {k} is a {type(a).__name__}, expected ase.Atoms")
    ref = frames[0].numbers if numbers is None else np.asarray(numbers)
    ref_formula = "".join(Atoms(numbers=ref).get_chemical_symbols())
    for k, a in enumerate(frames):
        if a.pbc.any():
            raise ValueError(f"{source}: frame {k} is periodic; sciml.gp models isolated molecules")
        if len(a) != len(ref):
            raise ValueError(f"{source}: frame {k} has {len(a)} atoms but the model's molecule has {len(ref)}")
        if not np.array_equal(a.numbers, ref):
            raise ValueError(
                f"{source}: frame {k} has element order {''.join(a.get_chemical_symbols())}, "
                f"expected {ref_formula} (all configurations must list the same atoms in the same order)"
            )
    if len(ref) < 2:
        raise ValueError(f"{source}: molecules need at least 2 atoms, got {len(ref)}")
    validate_frames(frames, require=("energy", "forces") if labels else (), source=source, min_distance=1e-3)
    pos = np.stack([a.get_positions() for a in frames]).astype(np.float64)
    if not labels:
        return pos, None, None
    lab = [frame_labels(a) for a in frames]
    return pos, np.array([d["energy"] for d in lab], dtype=np.float64), np.stack([d["forces"] for d in lab])


def _targets(energies: np.ndarray, forces: np.ndarray) -> np.ndarray:
    """Interleave ``[E, F_0x, F_0y, ...]`` per structure into one vector."""
    n = len(energies)
    return np.concatenate([energies[:, None], forces.reshape(n, -1)], axis=1).reshape(-1)


# --------------------------------------------------------------------------- likelihood


@dataclass
class _Scales:
    e_mean: float
    e_std: float

    def mean(self, theta_mean: torch.Tensor) -> torch.Tensor:
        return self.e_mean + self.e_std * theta_mean


def param_names(n_scales: int) -> list[str]:
    """Names of the packed hyperparameters ``theta`` for a mixture of ``n_scales`` kernels."""
    ls = ["log_lengthscale"] + [f"log_lengthscale_ratio_{c + 1}" for c in range(1, n_scales)]
    w = [f"log_weight_{c + 1}" for c in range(1, n_scales)]
    return ls + w + ["log_signal_std", "log_energy_noise", "log_force_noise", "mean_energy"]


def _n_kernel_params(n_scales: int) -> int:
    return 2 * n_scales - 1


def _kernel_params(t: torch.Tensor, n_scales: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Length-scales and variance fractions from ``[log l_1, log r_2..r_C, log w_2..w_C]``.

    Length-scales are ordered, ``l_c = l_{c-1} r_c`` with ``r_c >= 1``, so the first
    component is the shortest. The fractions are ``pi = (1, w_2, ..., w_C) / (1 + sum w)``:
    ``w_c`` is the variance of component ``c`` relative to the first.
    """
    ls = torch.exp(torch.cumsum(t[:n_scales], 0))
    if n_scales == 1:
        return ls, torch.ones(1, dtype=torch.float64)
    logits = torch.cat([torch.zeros(1, dtype=torch.float64), t[n_scales : 2 * n_scales - 1]])
    return ls, torch.softmax(logits, 0)


def _unpack(theta: torch.Tensor, sc: _Scales):
    """``theta = [log l_1, log r_2..r_C, log w_2..w_C, log s, log sigma_E, log sigma_F, (mu - mean E) / std E]``."""
    n_scales = (len(theta) - 3) // 2
    nk = _n_kernel_params(n_scales)
    ls, fr = _kernel_params(theta[:nk], n_scales)
    return (
        ls,
        fr,
        torch.exp(2 * theta[nk]),
        torch.exp(2 * theta[nk + 1]),
        torch.exp(2 * theta[nk + 2]),
        sc.mean(theta[nk + 3]),
    )


def _noise_vector(n: int, n_out: int, var_e: torch.Tensor, var_f: torch.Tensor) -> torch.Tensor:
    one = torch.ones(n, n_out, dtype=torch.float64)
    mask = torch.zeros(n, n_out, dtype=torch.float64)
    mask[:, 0] = 1.0
    return (mask * var_e + (one - mask) * var_f).reshape(-1)


def negative_log_marginal_likelihood(
    theta: torch.Tensor,
    geo: Geometry,
    perms: Permutations,
    y: torch.Tensor,
    kind: str,
    scales: _Scales,
    r2: torch.Tensor | None = None,
    jitter: float = _JITTER,
) -> torch.Tensor:
    """Exact NLML of energies+forces as a differentiable function of the packed hyperparameters.

    ``theta = [log l_1, log r_2..r_C, log w_2..w_C, log s, log sigma_E, log sigma_F, (mu - mean(E)) / std(E)]``
    (``C`` kernel components with length-scales ``l_c = l_{c-1} r_c``; see :func:`param_names`). ``y`` are interleaved
    targets (see :func:`_targets`). Differentiable twice (gradients for the
    optimiser, Hessian for the Laplace approximation).
    """
    n, m = len(geo), geo.n_outputs
    if r2 is None:
        r2 = squared_distances(geo, geo, perms)
    ls, fr, s2, ve, vf, mu = _unpack(theta, scales)
    c0, c1, c2 = mixture_coefficients(r2, ls, fr, s2, kind)
    K = _Assemble.apply(c0, c1, c2, geo, geo, perms)
    K = K + torch.diag(_noise_vector(n, m, ve, vf) + jitter * s2 * fr[0])
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        return torch.tensor(float("inf"), dtype=torch.float64)
    mean = torch.zeros(n, m, dtype=torch.float64)
    mean = mean + torch.nn.functional.pad(mu.reshape(1, 1).expand(n, 1), (0, m - 1))
    r = (y - mean.reshape(-1))[:, None]
    alpha = torch.cholesky_solve(r, L)
    return 0.5 * (r * alpha).sum() + torch.log(torch.diagonal(L)).sum() + 0.5 * n * m * math.log(2 * math.pi)


def profiled_nlml_and_gradient(
    phi: np.ndarray,
    geo: Geometry,
    perms: Permutations,
    y: torch.Tensor,
    kind: str,
    r2: torch.Tensor,
    jitter: float = _JITTER,
    gradient: bool = True,
) -> tuple[float, np.ndarray, float, float]:
    """NLML with the signal variance and the constant mean profiled out, and its exact gradient.

    ``phi = [log l_1, log r_2..r_C, log w_2..w_C, log(sigma_E / s_1), log(sigma_F / s_1)]``
    (length-scales ``l_c = l_{c-1} r_c``) where ``s_1^2 = pi_1 s^2`` is the variance of
    the first (shortest) component. Writing
    ``K = s^2 Kt(phi)``, the maximum-likelihood mean is the GLS estimate
    ``mu = e^T Kt^-1 y / e^T Kt^-1 e`` (``e`` selects energies) and
    ``s^2 = r^T Kt^-1 r / n`` with ``r = y - mu e``; the profiled NLML is
    ``n/2 log s^2 + sum log diag chol(Kt) + n/2 (1 + log 2 pi)``. Its gradient equals
    the full NLML's partial derivatives at ``(s, mu)`` (envelope theorem), computed by
    the trace formula ``0.5 tr((K^-1 - a a^T) dK/dphi)``, ``a = K^-1 r``: ``K`` is
    linear in the per-pair kernel coefficients, so the trace is one
    :func:`~sciml.gp.kernels.contract` of ``W = K^-1 - a a^T`` and autograd through
    the small coefficient arrays (no backpropagation through the Cholesky
    factorisation). The cost does not depend on the number of components ``C``.

    Returns ``(nlml, gradient, s, mu)``; ``nlml`` is ``inf`` when ``Kt`` is not
    positive definite.
    """
    from .kernels import contract

    n, m = len(geo), geo.n_outputs
    nobs = n * m
    n_scales = (len(phi) - 1) // 2
    nk = _n_kernel_params(n_scales)
    ph = torch.tensor(np.asarray(phi, dtype=np.float64), requires_grad=True)
    ls, fr = _kernel_params(ph[:nk], n_scales)
    # noise variances relative to the first component's variance s^2 pi_1 (with several components the
    # total signal variance can be dominated by a long, smooth component; the noise floor must not be)
    re2, rf2 = fr[0] * (torch.exp(2 * ph[nk]) + jitter), fr[0] * (torch.exp(2 * ph[nk + 1]) + jitter)
    one = torch.tensor(1.0, dtype=torch.float64)
    with torch.no_grad():
        c = mixture_coefficients(r2, ls, fr, one, kind)
        K = assemble(geo, geo, perms, *c).reshape(nobs, nobs)
        K.diagonal().add_(_noise_vector(n, m, re2, rf2))
        L, info = torch.linalg.cholesky_ex(K)
        del K
        if int(info) != 0:
            return float("inf"), np.full(len(phi), np.nan), float("nan"), float("nan")
        e = torch.zeros(n, m, dtype=torch.float64)
        e[:, 0] = 1.0
        e = e.reshape(-1, 1)
        ye = torch.cholesky_solve(torch.cat([y[:, None], e], 1), L)
        mu = float((e * ye[:, :1]).sum() / (e * ye[:, 1:]).sum())
        r = y[:, None] - mu * e
        kr = ye[:, :1] - mu * ye[:, 1:]  # Kt^-1 r
        s2 = float((r * kr).sum()) / nobs
        logdet = float(torch.log(torch.diagonal(L)).sum())
        value = 0.5 * nobs * math.log(s2) + logdet + 0.5 * nobs * (1.0 + math.log(2 * math.pi))
        if not gradient:
            return value, np.full(len(phi), np.nan), math.sqrt(s2), mu
        W = torch.cholesky_inverse(L)
        del L
        W.sub_(kr @ kr.T, alpha=1.0 / s2)
        W.div_(s2)  # W = K^-1 - a a^T with K = s2 Kt, a = Kt^-1 r / s2
        g0, g1, g2 = contract(geo, geo, perms, W)
        wd = torch.diagonal(W).reshape(n, m)
        tr_e, tr_f = float(wd[:, 0].sum()), float(wd[:, 1:].sum())
        del W
    s2t = torch.tensor(s2, dtype=torch.float64)
    c0, c1, c2 = mixture_coefficients(r2, ls, fr, s2t, kind)
    surrogate = 0.5 * ((g0 * c0).sum() + (g1 * c1).sum() + (g2 * c2).sum() + s2 * (tr_e * re2 + tr_f * rf2))
    (grad,) = torch.autograd.grad(surrogate, ph)
    return value, grad.numpy().copy(), math.sqrt(s2), mu


def nlml_hessian(
    theta: np.ndarray,
    geo: Geometry,
    perms: Permutations,
    y: torch.Tensor,
    kind: str,
    scales: _Scales,
    r2: torch.Tensor,
    jitter: float = _JITTER,
) -> np.ndarray:
    """Exact Hessian of the NLML with respect to the packed hyperparameters ``theta``.

    Uses ``d2 NLML / dtheta_i dtheta_j = a^T K_i K^-1 K_j a - a^T K_ij a / 2
    + tr(K^-1 K_ij) / 2 - tr(K^-1 K_i K^-1 K_j) / 2 + m_i^T K^-1 K_j a + m_j^T K^-1 K_i a
    + m_i^T K^-1 m_j`` (``a = K^-1 (y - m)``), with the covariance derivatives
    ``K_i, K_ij`` assembled from autograd (forward-mode) derivatives of the kernel
    coefficients. The signal and noise derivatives are cheap (``K_s = 2 (K - noise)``,
    diagonal noise terms), so the dense work is one product ``K^-1 K_i`` per kernel
    parameter. Agrees with
    ``torch.autograd.functional.hessian(negative_log_marginal_likelihood, theta)``.
    """
    n, m = len(geo), geo.n_outputs
    nobs = n * m
    th = torch.as_tensor(np.asarray(theta, dtype=np.float64))
    n_scales = (len(th) - 3) // 2
    nk = _n_kernel_params(n_scales)
    npar = nk + 4
    _, fr, s2, ve, vf, mu = _unpack(th, scales)

    def coef(t):
        return mixture_coefficients(r2, *_kernel_params(t, n_scales), s2, kind)

    tk = th[:nk].clone()
    first, second = _coefficient_derivatives(coef, tk)
    with torch.no_grad():
        ks = assemble(geo, geo, perms, *coef(tk)).reshape(nobs, nobs)  # signal part s^2 Kt
        ks.diagonal().add_(jitter * s2 * fr[0])
        Kk = [assemble(geo, geo, perms, *first[i]).reshape(nobs, nobs) for i in range(nk)]
        ie = torch.zeros(n, m, dtype=torch.float64)
        ie[:, 0] = 1.0
        ie = ie.reshape(-1)
        if_ = 1.0 - ie
        noise = ve * ie + vf * if_
        K = ks.clone()
        K.diagonal().add_(noise)
        L = torch.linalg.cholesky(K)
        del K
        Kinv = torch.cholesky_inverse(L)
        mvec = torch.zeros(nobs, dtype=torch.float64)
        mvec[ie.bool()] = mu
        alpha = torch.cholesky_solve((y - mvec)[:, None], L)[:, 0]
        del L
        # first derivatives K_i a and A_i = K^-1 K_i: dense kernel parameters, the signal (2 ks), the noises
        A = [Kinv @ Kk[i] for i in range(nk)]
        Ka = [Kk[i] @ alpha for i in range(nk)]
        A_s = -2.0 * Kinv * noise[None, :]
        A_s.diagonal().add_(2.0)  # K^-1 (2 ks) = 2 (I - K^-1 diag(noise))
        A.append(A_s)
        Ka.append(2.0 * (ks @ alpha))
        for d in (2.0 * ve * ie, 2.0 * vf * if_):
            A.append(Kinv * d[None, :])
            Ka.append(d * alpha)
        KinvKa = [Kinv @ v for v in Ka]
        m_mean = scales.e_std * ie  # d mean / d theta_mean
        Km = Kinv @ m_mean
        H = np.zeros((npar, npar))
        for i in range(npar - 1):
            for j in range(i, npar - 1):
                # second derivatives K_ij: a^T K_ij a and tr(K^-1 K_ij)
                if j < nk:  # both kernel parameters: assembled
                    Kij = assemble(geo, geo, perms, *second[i, j]).reshape(nobs, nobs)
                    aKa, tr_ij = float(alpha @ (Kij @ alpha)), float((Kinv * Kij).sum())
                    del Kij
                elif j == nk:  # (kernel or signal, signal): K_ij = 2 K_i
                    aKa, tr_ij = 2.0 * float(alpha @ Ka[i]), 2.0 * float(torch.trace(A[i]))
                elif i == j:  # a noise with itself
                    aKa, tr_ij = 2.0 * float(alpha @ Ka[i]), 2.0 * float(torch.trace(A[i]))
                else:
                    aKa, tr_ij = 0.0, 0.0
                h = float(Ka[i] @ KinvKa[j]) - 0.5 * tr_ij_trace(A[i], A[j]) + 0.5 * tr_ij - 0.5 * aKa
                H[i, j] = H[j, i] = h
            H[i, npar - 1] = H[npar - 1, i] = float(Km @ Ka[i])
        H[npar - 1, npar - 1] = float(m_mean @ Km)
    return H


def _directional(outs: tuple, t: torch.Tensor, i: int, create_graph: bool) -> tuple:
    """``d outs / d t_i`` for tensors ``outs`` of any shape (reverse-over-reverse: ``J u = d(J^T v . u)/dv``)."""
    # scalar products instead of grad_outputs (passing grad_outputs imports torch.fx/sympy: ~0.5 s)
    vs = [torch.zeros_like(o, requires_grad=True) for o in outs]
    (g,) = torch.autograd.grad(sum((o * v).sum() for o, v in zip(outs, vs)), t, create_graph=True, allow_unused=True)
    if g is None:
        return tuple(torch.zeros_like(o) for o in outs)
    res = torch.autograd.grad(g[i], vs, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(o) if r is None else r for o, r in zip(outs, res))


def _coefficient_derivatives(coef, tk: torch.Tensor) -> tuple[list, dict]:
    """First and second derivatives of the per-pair kernel coefficients with respect to the kernel parameters.

    Exact (autograd; no ``torch.func``, whose first use imports ``torch._dynamo``: 1.3 s here).
    Returns ``first[i] = dc/dt_i`` and ``second[i, j] = d2c/dt_i dt_j`` for ``i <= j``.
    """
    nk = len(tk)
    first, second = [], {}
    with torch.enable_grad():
        t = tk.detach().clone().requires_grad_(True)
        c = coef(t)
        for i in range(nk):
            d = _directional(c, t, i, create_graph=True)
            first.append(tuple(x.detach() for x in d))
            for j in range(i, nk):
                second[i, j] = tuple(x.detach() for x in _directional(d, t, j, create_graph=False))
    return first, second


def tr_ij_trace(a: torch.Tensor, b: torch.Tensor) -> float:
    """``tr(a b)`` without forming the product."""
    return float((a * b.T).sum())

# --------------------------------------------------------------------------- Laplace


class LaplaceResult:
    """Laplace approximation to the posterior of the log-hyperparameters.

    ``hessian`` is the exact Hessian of the NLML at the optimum with respect to
    ``params`` (log length-scales, log variance weights of the extra kernel
    components, log signal std, log noise stds, and the scaled mean; see
    :func:`param_names`); standard errors are ``sqrt(diag(H^-1))``.
    """

    def __init__(self, params: np.ndarray, hessian: np.ndarray, e_std: float, e_mean: float, at_bound: list[str],
                 names: list[str] | None = None):
        self.names = list(names) if names is not None else param_names((len(params) - 3) // 2)
        self.params = np.asarray(params, dtype=float)
        self.hessian = np.asarray(hessian, dtype=float)
        self.e_std = float(e_std)
        self.e_mean = float(e_mean)
        self.at_bound = list(at_bound)
        H = 0.5 * (self.hessian + self.hessian.T)
        eig = np.linalg.eigvalsh(H)
        self.eigenvalues = eig

        def pd(e: np.ndarray) -> bool:
            return bool(e.min() > 1e-10 * max(1.0, abs(e).max()))

        self.positive_definite = pd(eig)
        # Flat or negative-curvature directions (typically the energy noise of noiseless labels, far
        # below the jitter): drop the parameter that dominates the least-curved direction until the
        # rest is positive definite; the others get standard errors conditional on the dropped ones.
        keep = list(range(len(H)))
        while keep:
            e, v = np.linalg.eigh(H[np.ix_(keep, keep)])
            if pd(e):
                break
            keep.pop(int(np.argmax(np.abs(v[:, 0]))))
        self.unidentified = [self.names[j] for j in range(len(H)) if j not in keep]
        self.cov_params = np.full_like(H, np.nan)
        if keep:
            self.cov_params[np.ix_(keep, keep)] = np.linalg.inv(H[np.ix_(keep, keep)])
        d = np.diag(self.cov_params).copy()
        self.bse = np.where(d > 0, np.sqrt(np.where(d > 0, d, 1.0)), np.nan)

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(k, 2)`` Wald intervals on the optimisation scale (log for scales)."""
        from scipy.stats import norm

        z = norm.ppf(1 - alpha / 2)
        return np.stack([self.params - z * self.bse, self.params + z * self.bse], axis=1)

    def table(self, alpha: float = 0.05) -> "pandas.DataFrame":  # noqa: F821
        """Tidy table: estimate and standard error on the log scale, value and interval on the natural scale."""
        import pandas as pd

        ci = self.conf_int(alpha)
        rows = []
        for k, name in enumerate(self.names):
            if name == "mean_energy":
                f = lambda t: self.e_mean + self.e_std * t  # noqa: E731
                rows.append(dict(param=name, estimate=self.params[k], std_err=self.bse[k] * self.e_std,
                                 value=f(self.params[k]), ci_low=f(ci[k, 0]), ci_high=f(ci[k, 1])))
            else:
                with np.errstate(over="ignore"):  # a flat direction can have an interval beyond float range
                    rows.append(dict(param=name, estimate=self.params[k], std_err=self.bse[k],
                                     value=float(np.exp(self.params[k])), ci_low=float(np.exp(ci[k, 0])),
                                     ci_high=float(np.exp(ci[k, 1]))))
        return pd.DataFrame(rows).set_index("param")

    def summary(self) -> str:
        """Human-readable summary (log-scale estimates with standard errors)."""
        t = self.table()
        lines = ["Laplace approximation of the hyperparameter posterior (Hessian of the NLML)",
                 f"Hessian positive definite: {self.positive_definite} (eigenvalues {np.array2string(self.eigenvalues, precision=3)})"]
        if self.at_bound:
            lines.append(f"at an optimisation bound: {', '.join(self.at_bound)}")
        if self.unidentified:
            lines.append(f"not determined by the data (flat NLML; no standard error): {', '.join(self.unidentified)}; "
                         "the other standard errors are conditional on them")
        lines.append(t.to_string(float_format=lambda v: f"{v:.5g}"))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return dict(params=self.params.tolist(), hessian=self.hessian.tolist(), e_std=self.e_std,
                    e_mean=self.e_mean, at_bound=self.at_bound, names=self.names)

    @classmethod
    def from_dict(cls, d: dict) -> "LaplaceResult":
        return cls(np.array(d["params"]), np.array(d["hessian"]), d["e_std"], d["e_mean"], d["at_bound"],
                   d.get("names"))


def _cholesky_in_place(K: np.ndarray) -> int:
    """Factorise the C-ordered symmetric ``K`` in place: its lower triangle becomes ``L`` (``K = L L^T``).

    Only the lower triangle of ``K`` is read; no copy is made. Returns LAPACK's ``info``
    (0 on success). With one torch thread this calls scipy's OpenBLAS ``dpotrf`` limited to
    one thread (the fastest single-core path here); with more threads torch's LAPACK (MKL
    on x86 wheels; threads follow ``torch.set_num_threads``): multi-threaded OpenBLAS
    ``dpotrf`` crashed (segmentation fault) on a 28,000-square matrix on this machine.
    """
    if torch.get_num_threads() == 1:
        from scipy.linalg import lapack
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            _, info = lapack.dpotrf(K.T, lower=0, clean=0, overwrite_a=1)
        return int(info)
    Kt = torch.from_numpy(K)
    info = torch.zeros((), dtype=torch.int32)
    torch.linalg.cholesky_ex(Kt.T, upper=True, out=(Kt.T, info))
    return int(info)


# --------------------------------------------------------------------------- estimator


class GPPotential:
    """Exact Gaussian-process potential energy surface of one molecule, trained on energies and forces.

    Parameters
    ----------
    kernel:
        ``"matern52"`` (default) or ``"rbf"`` on inverse-distance descriptors.
    n_scales:
        Number of kernel components with their own length-scale (default 2): the
        kernel is ``s^2 sum_c pi_c g(|x - y| / l_c)``. All length-scales and the
        variance fractions ``pi_c`` are fitted by the marginal likelihood. A short
        and a long length-scale together describe a potential energy surface much
        better than one compromise length-scale (on ethanol, N = 100: force MAE 45.6
        meV/Å with one component, 37 with two), at no extra cost per likelihood
        evaluation (the joint covariance is linear in the components).
    symmetry:
        ``"auto"`` (default): symmetrise the kernel over the permutation group of
        identical atoms (bond-graph automorphisms) when it has at most
        ``max_group_size`` elements; ``True``: always (error if too large);
        ``False``: never.
    max_group_size:
        Largest group symmetrised over with ``symmetry="auto"``.
    n_tune:
        Configurations (random subset, seeded) used to fit the hyperparameters by
        the exact marginal likelihood; all configurations are used for the final solve.
    optimizer:
        ``"lbfgs"`` (scipy L-BFGS-B with exact gradients) or ``"adam"``.
    max_iter:
        Optimiser iterations.
    noise_floor:
        Lower bound of the noise standard deviations relative to the signal
        standard deviation of the first (shortest) kernel component (keeps the
        covariance well conditioned; a jitter of 1e-10 times that variance is
        always added).
    standardize:
        Weight each inverse distance by 1/(its standard deviation in the training
        set), averaged over symmetry-equivalent pairs (see :meth:`_descriptor_weights`).
    laplace:
        Compute the Laplace approximation (autograd Hessian of the NLML).
    chunk_size:
        Structures per block row when assembling the covariance (memory/time trade-off).
    seed:
        Seed of the tuning subset.
    progress:
        Show progress bars (also silenced by ``SCIML_QUIET=1``).

    Attributes (after ``fit``)
    --------------------------
    lengthscales_, variance_fractions_:
        Fitted length-scales (ascending; units of the standardised descriptor) and
        the fraction of the signal variance carried by each component.
    lengthscale_, signal_std_, energy_noise_, force_noise_, mean_energy_:
        Shortest length-scale, total signal standard deviation (eV), noise standard
        deviations (eV, eV/Å) and constant mean (eV). The length-scales, variance
        fractions and noise-to-signal ratios come from the exact marginal likelihood
        on the tuning subset; the signal variance and the mean are then re-estimated
        in closed form (their exact maximisers) on all training data.
    theta_:
        Packed hyperparameters at the tuning optimum (what ``laplace_`` refers to).
    permutations_:
        ``(P, n_atoms)`` atom permutations symmetrised over.
    laplace_: :class:`LaplaceResult` or ``None``. trace_: optimisation trace (pandas DataFrame).
    nlml_: NLML at the optimum (on the tuning subset). n_train_, fit_time_, tune_time_.

    Example
    -------
    >>> from sciml.datasets import load_pes
    >>> from sciml.gp import GPPotential
    >>> frames = load_pes("ethanol_gfn2_500K")               # doctest: +SKIP
    >>> gp = GPPotential().fit(frames[:100])                 # doctest: +SKIP
    >>> E, F, E_std, F_std = gp.predict(frames[100:110])     # doctest: +SKIP
    """

    def __init__(
        self,
        kernel: str = "matern52",
        n_scales: int = 1,
        symmetry: bool | str = "auto",
        max_group_size: int = 24,
        n_tune: int = 25,
        optimizer: str = "lbfgs",
        max_iter: int = 50,
        noise_floor: float = 1e-8,
        standardize: bool = True,
        laplace: bool = True,
        chunk_size: int = 32,
        seed: int = 0,
        progress: bool = True,
    ):
        self.kernel = kernel
        self.n_scales = n_scales
        self.symmetry = symmetry
        self.max_group_size = max_group_size
        self.n_tune = n_tune
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.noise_floor = noise_floor
        self.standardize = standardize
        self.laplace = laplace
        self.chunk_size = chunk_size
        self.seed = seed
        self.progress = progress

    # sklearn-style parameter access
    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters."""
        return {k: getattr(self, k) for k in ("kernel", "n_scales", "symmetry", "max_group_size", "n_tune", "optimizer",
                                              "max_iter", "noise_floor", "standardize", "laplace", "chunk_size", "seed", "progress")}

    def set_params(self, **params) -> "GPPotential":
        """Set constructor parameters (sklearn convention)."""
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r} for GPPotential; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"GPPotential({args})"

    def _validate_params(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        if self.symmetry not in (True, False, "auto"):
            raise ValueError(f"symmetry must be True, False or 'auto', got {self.symmetry!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        for name in ("n_scales", "n_tune", "max_iter", "chunk_size", "max_group_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < (0 if name == "max_iter" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_tune < 2:
            raise ValueError(f"n_tune must be at least 2 configurations, got {self.n_tune}")
        if not (0 < float(self.noise_floor) < 1):
            raise ValueError(f"noise_floor must be in (0, 1), got {self.noise_floor!r}")

    def _show(self) -> bool:
        from sciml._runtime import quiet_progress

        return bool(self.progress) and not quiet_progress()

    # ------------------------------------------------------------------ fit
    def fit(self, frames: Sequence[Atoms], y: None = None) -> "GPPotential":
        """Fit hyperparameters by the marginal likelihood and solve for the weights.

        ``frames``: configurations of one molecule (same atoms in the same order)
        carrying energy (eV) and forces (eV/Å) labels. Returns ``self``.
        """
        from .symmetry import bond_graph, permutation_group

        self._validate_params()
        t_start = time.perf_counter()
        pos, energies, forces = _frames_to_arrays(frames, labels=True, source="training frames")
        n = len(pos)
        if n < 2:
            raise ValueError(
                f"training frames: got {n} configuration; at least 2 are needed to fit the hyperparameters"
            )
        numbers = np.asarray(frames[0].numbers if not isinstance(frames, Atoms) else frames.numbers)
        if self.symmetry is False:
            perms = np.arange(len(numbers))[None]
        else:
            G = bond_graph(Atoms(numbers=numbers, positions=pos[0]))
            try:
                perms = permutation_group(G, max_size=self.max_group_size)
            except ValueError:
                if self.symmetry is True:
                    raise
                warnings.warn(
                    f"the molecule has more than max_group_size={self.max_group_size} permutations of identical "
                    "atoms; the kernel is not symmetrised", stacklevel=2)
                perms = np.arange(len(numbers))[None]
        self.numbers_ = numbers
        self.permutations_ = perms
        self._perms = Permutations(perms, len(numbers))
        self.positions_ = pos
        self.energies_ = energies
        self.forces_ = forces
        self.n_train_ = n
        self.descriptor_weights_ = self._descriptor_weights(pos)
        geo = Geometry.from_positions(pos, self.descriptor_weights_)
        self._geo = geo
        e_std = float(np.std(energies)) if n > 1 and np.std(energies) > 0 else 1.0
        self._scales = _Scales(float(np.mean(energies)), e_std)

        rng = np.random.default_rng(self.seed)
        sub = np.sort(rng.choice(n, size=min(self.n_tune, n), replace=False))
        self.tune_indices_ = sub
        self._tune(geo[torch.as_tensor(sub)], energies[sub], forces[sub])
        self.tune_time_ = time.perf_counter() - t_start
        self._factorize(reprofile=True)
        self.fit_time_ = time.perf_counter() - t_start
        self.std_scale_ = {"energy": 1.0, "forces": 1.0}
        return self

    def calibrate(self, frames: Sequence[Atoms], coverage: float = 0.95) -> dict:
        """Rescale the predictive standard deviations so that held-out errors have the nominal coverage.

        The marginal-likelihood GP is usually conservative on noiseless reference data (95 %
        intervals covered ~99 % of ethanol force errors). On labelled frames *not used for
        training*, this sets one factor per quantity (``std_scale_["energy"]``,
        ``std_scale_["forces"]``) such that exactly ``coverage`` of the absolute errors lie inside
        the central ``coverage`` Gaussian interval: ``c = q_coverage(|err| / std) / z``. The
        factors multiply every later predicted std (also in :class:`GPCalculator`) and are saved
        with the model. Returns the factors with the coverage before calibration.

        Example
        -------
        >>> gp.calibrate(valid_frames)   # doctest: +SKIP
        {'energy': 0.81, 'forces': 0.52, 'forces_coverage_before': 0.994, 'energy_coverage_before': 0.97}
        """
        from scipy.stats import norm

        self._check_fitted()
        if not 0.5 < float(coverage) < 1.0:
            raise ValueError(f"coverage must be in (0.5, 1), got {coverage!r}")
        pos, e_ref, f_ref = _frames_to_arrays(frames, labels=True, numbers=self.numbers_, source="calibration frames")
        train_keys = {np.round(p, 8).tobytes() for p in self.positions_}
        overlap = [k for k, p in enumerate(pos) if np.round(p, 8).tobytes() in train_keys]
        if overlap:
            raise ValueError(f"calibration frames {overlap[:5]} are training configurations; calibrate on held-out data")
        self.std_scale_ = {"energy": 1.0, "forces": 1.0}
        E, F, Es, Fs = self.predict_positions(pos, return_std=True, include_noise=True)
        z = norm.ppf(0.5 + coverage / 2)
        re = np.abs(E - e_ref) / Es
        rf = (np.abs(F - f_ref) / Fs).ravel()
        out = {"energy_coverage_before": float(np.mean(re <= z)), "forces_coverage_before": float(np.mean(rf <= z))}
        if len(pos) < 20:
            warnings.warn(f"calibrating on only {len(pos)} frames: the factors are rough", stacklevel=2)
        self.std_scale_ = {"energy": float(np.quantile(re, coverage) / z), "forces": float(np.quantile(rf, coverage) / z)}
        return {**self.std_scale_, **out}

    def _descriptor_weights(self, pos: np.ndarray) -> np.ndarray:
        """Per-descriptor weights ``1 / std`` over the training set, averaged on permutation orbits, RMS 1.

        Standardising the inverse distances lets stiff (bonded, small-amplitude)
        pairs and soft (non-bonded) pairs count alike in the kernel distance; it
        is fixed from the training data, not a hyperparameter.
        """
        from .descriptors import inverse_distances

        n_desc = len(self._perms.idx[0])
        if not self.standardize or len(pos) < 3:
            return np.ones(n_desc)
        x, _ = inverse_distances(pos, jacobian=False)
        sd = x.std(0).numpy()
        sd = np.where(sd > 1e-12, sd, np.nan)
        w = 1.0 / sd
        w = np.where(np.isfinite(w), w, np.nanmax(w) if np.isfinite(w).any() else 1.0)
        w = np.mean(w[self._perms.idx.numpy()], axis=0)  # constant on orbits: invariance is kept
        return w / np.sqrt(np.mean(w**2))

    def _phi_names(self) -> list[str]:
        """Names of the optimiser's variables ``phi`` (see :func:`profiled_nlml_and_gradient`)."""
        return param_names(self.n_scales)[: _n_kernel_params(self.n_scales)] + ["log_energy_noise", "log_force_noise"]

    def _init_phi(self, geo: Geometry, r2: torch.Tensor, forces: np.ndarray, evaluate_phi):
        """Data-based starting point and bounds of ``phi = [log l_c, log w_c, log(sigma_E/s), log(sigma_F/s)]``.

        One kernel first: length-scale candidates are 1-15 times the median
        descriptor distance; noise ratios start from 1e-2 or 1e-5 times the force
        std (energy noise a tenth of that), relative to the signal std implied by
        the force variance, ``var(F) ~ 2 |g'(0)| s^2 <|J|^2> / l^2``. Further components then start at
        4 and 16 times the best length-scale, with a variance weight that gives them
        half or 95% of the prior force variance (``w_c = (l_c / l_1)^2 f / (1 - f)``).
        ``evaluate_phi`` returns the profiled NLML of a candidate (no gradient);
        the best candidate is the starting point. Returns ``(phi0, bounds)``.
        """
        off = r2[0][~torch.eye(len(geo), dtype=torch.bool)] if len(geo) > 1 else r2[0].reshape(-1)
        med2 = float(off.median()) if off.numel() else 0.0
        med = math.sqrt(med2) if med2 > 0 else 1.0
        f_std = float(np.std(forces)) or 1.0
        jtj = float((geo.Jt**2).sum(-1).mean())
        gprime0 = 5.0 / 6.0 if self.kernel == "matern52" else 0.5
        cands = []
        for fac in (1.0, 2.5, 6.0, 15.0):
            ls = med * fac
            s = math.sqrt(f_std**2 * ls**2 / (2 * gprime0 * jtj))
            for rel in (1e-2, 1e-5):
                cands.append(np.array([math.log(ls), math.log(rel * f_std * 0.1 / s), math.log(rel * f_std / s)]))
        vals = [evaluate_phi(c) for c in cands]
        self.init_candidates_ = [dict(lengthscale=math.exp(c[0]), nlml=v) for c, v in zip(cands, vals)]
        best = cands[int(np.nanargmin(np.where(np.isfinite(vals), vals, np.nan)))]
        if self.n_scales > 1:
            c_extra = self.n_scales - 1
            multi = []
            for ratio in (4.0, 16.0):
                for share in (0.9, 0.99, 0.999):
                    r = ratio ** np.arange(1, c_extra + 1)
                    w = r**2 * share / (1.0 - share) / c_extra
                    multi.append(np.concatenate([[best[0]], np.full(c_extra, math.log(ratio)), np.log(w), best[1:]]))
            mvals = [evaluate_phi(c) for c in multi]
            self.init_candidates_ += [dict(lengthscale=math.exp(c[0]), lengthscale_2=math.exp(c[0] + c[1]),
                                           weight_2=math.exp(c[self.n_scales]), nlml=v) for c, v in zip(multi, mvals)]
            best = multi[int(np.nanargmin(np.where(np.isfinite(mvals), mvals, np.nan)))]
        lo = math.log(self.noise_floor)
        bounds = ([(math.log(med * 1e-2), math.log(med * 1e3))] + [(0.0, math.log(1e3))] * (self.n_scales - 1)
                  + [(-15.0, 30.0)] * (self.n_scales - 1) + [(lo, math.log(10.0)), (lo, math.log(10.0))])
        return best, bounds

    def _tune(self, geo: Geometry, energies: np.ndarray, forces: np.ndarray) -> None:
        from tqdm.auto import tqdm

        y = torch.as_tensor(_targets(energies, forces))
        r2 = squared_distances(geo, geo, self._perms)
        kind, sc, C = self.kernel, self._scales, self.n_scales
        nk = _n_kernel_params(C)
        trace: list[dict] = []
        n_obs = float(len(y))
        bar = tqdm(total=self.max_iter, desc="GP hyperparameters", disable=not self._show(), leave=False)

        def record(phi: np.ndarray, val: float, s: float, mu: float, g: np.ndarray) -> None:
            ls, fr = _kernel_params(torch.as_tensor(phi[:nk]), C)
            row = dict(evaluation=len(trace), nlml=val, lengthscale=float(ls[0]))
            for c in range(1, C):
                row[f"lengthscale_{c + 1}"] = float(ls[c])
                row[f"variance_fraction_{c + 1}"] = float(fr[c])
            s1 = s * math.sqrt(float(fr[0]))
            row.update(signal_std=s, energy_noise=s1 * math.exp(phi[nk]), force_noise=s1 * math.exp(phi[nk + 1]),
                       mean_energy=mu, grad_norm=float(np.linalg.norm(g)))
            trace.append(row)

        def f(phi: np.ndarray):
            val, g, s, mu = profiled_nlml_and_gradient(phi, geo, self._perms, y, kind, r2)
            if not np.isfinite(val):  # covariance not positive definite: a large finite value makes the
                return 1e10, np.ones_like(phi)  # line search backtrack
            record(phi, val, s, mu, g)
            bar.update(1)
            bar.set_postfix(nlml=f"{val:.6g}")
            # the optimiser sees the NLML per observation (O(1) gradients; same optimum)
            return val / n_obs, g / n_obs

        def value(phi: np.ndarray) -> float:
            return profiled_nlml_and_gradient(phi, geo, self._perms, y, kind, r2, gradient=False)[0]

        phi0, bounds = self._init_phi(geo, r2, forces, value)
        # stop once an iteration improves the NLML by less than 0.05 (a likelihood ratio of 1.05: far below
        # statistical resolution; with near-noiseless labels the NLML also carries ~0.05 of round-off)
        f0 = min(c["nlml"] for c in self.init_candidates_ if np.isfinite(c["nlml"]))
        ftol = 0.05 / max(abs(f0), 1.0)

        if self.max_iter == 0:
            phi = phi0
            self.optimizer_message_, self.converged_ = "no optimisation (max_iter=0)", False
        elif self.optimizer == "lbfgs":
            from scipy.optimize import minimize

            res = minimize(f, phi0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options=dict(maxiter=self.max_iter, ftol=ftol, gtol=0.5 / n_obs))
            phi = res.x
            self.optimizer_message_ = str(res.message)
            self.converged_ = bool(res.success)
        else:
            ph = torch.tensor(phi0, dtype=torch.float64, requires_grad=True)
            opt = torch.optim.Adam([ph], lr=0.05)
            lo = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
            hi = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
            for _ in range(self.max_iter):
                opt.zero_grad()
                _, g = f(ph.detach().numpy())
                ph.grad = torch.as_tensor(g)
                opt.step()
                with torch.no_grad():
                    ph.copy_(torch.maximum(torch.minimum(ph, hi), lo))
            phi = ph.detach().numpy()
            self.optimizer_message_, self.converged_ = f"adam: {self.max_iter} steps", True
        bar.close()
        phi = np.asarray(phi, dtype=np.float64)
        at_bound = [name for k, name in enumerate(self._phi_names())
                    if min(abs(phi[k] - bounds[k][0]), abs(phi[k] - bounds[k][1])) < 1e-6]
        ls, fr = (t.numpy() for t in _kernel_params(torch.as_tensor(phi[:nk]), C))
        val, _, s, mu = profiled_nlml_and_gradient(phi, geo, self._perms, y, kind, r2, gradient=False)
        self.nlml_ = val
        self._trace = trace
        self.lengthscales_, self.variance_fractions_ = ls, fr
        self.lengthscale_, self.signal_std_ = float(ls[0]), s
        s1 = s * math.sqrt(fr[0])
        self.energy_noise_, self.force_noise_ = s1 * math.exp(phi[nk]), s1 * math.exp(phi[nk + 1])
        self.mean_energy_ = mu
        self.theta_ = np.concatenate([phi[:nk], [math.log(s), math.log(self.energy_noise_),
                                                 math.log(self.force_noise_), (mu - sc.e_mean) / sc.e_std]])
        self.laplace_ = None
        if self.laplace:
            H = nlml_hessian(self.theta_, geo, self._perms, y, kind, sc, r2)
            self.laplace_ = LaplaceResult(self.theta_, H, sc.e_std, sc.e_mean, at_bound, param_names(C))
            if not self.laplace_.positive_definite:
                warnings.warn(
                    "the NLML Hessian at the optimum is not positive definite (flat or not a minimum: eigenvalues "
                    f"{np.array2string(self.laplace_.eigenvalues, precision=3)}); no Laplace standard error for "
                    f"{self.laplace_.unidentified}, the others are conditional on them", HyperparameterWarning,
                    stacklevel=3)
        # a noise at its floor is expected for noiseless reference data (e.g. DFT/xTB labels); a length-scale
        # at a bound means the data do not determine it
        flagged = [b for b in at_bound if b.startswith("log_lengthscale")]
        if flagged:
            warnings.warn(f"hyperparameter(s) {flagged} ended at an optimisation bound", HyperparameterWarning,
                          stacklevel=3)

    @property
    def trace_(self) -> "pandas.DataFrame":  # noqa: F821
        """Optimisation trace: one row per NLML evaluation."""
        import pandas as pd

        return pd.DataFrame(self._trace)

    # ------------------------------------------------------------------ solve
    def _coeffs(self, ga: Geometry, gb: Geometry):
        if gb is self._geo and hasattr(self, "alpha_"):  # test vs training set: one product with the cached Q_p x_b
            XQ, _, _, _ = self._mean_weights()
            r2 = ((ga.X**2).sum(1)[None, :, None] + (gb.X**2).sum(1)[None, None, :]
                  - 2.0 * torch.einsum("td,pnd->ptn", ga.X, XQ)).clamp_min(0.0)
        else:
            r2 = squared_distances(ga, gb, self._perms)
        return mixture_coefficients(r2, torch.as_tensor(self.lengthscales_, dtype=torch.float64),
                                    torch.as_tensor(self.variance_fractions_, dtype=torch.float64),
                                    torch.tensor(self.signal_std_**2, dtype=torch.float64), self.kernel)

    def _factorize(self, reprofile: bool = False) -> None:
        """Assemble the lower triangle of the full covariance in place and Cholesky-factorise it (LAPACK).

        With ``reprofile`` (at the end of :meth:`fit`) the constant mean (GLS) and the
        signal variance are re-estimated in closed form on *all* training data at the
        tuned length-scale and noise-to-signal ratios (their exact marginal-likelihood
        maximisers): ``mu = e^T K^-1 y / e^T K^-1 e``, ``s^2 <- s^2 r^T K^-1 r / n``. The
        factor is kept and rescaled implicitly (``_factor_scale``).
        """
        from tqdm.auto import tqdm

        geo, n, m = self._geo, len(self._geo), self._geo.n_outputs
        nt = n * m
        y = _targets(self.energies_, self.forces_)
        e = np.tile(np.r_[1.0, np.zeros(m - 1)], n)
        noise = np.tile(np.r_[self.energy_noise_**2, np.full(m - 1, self.force_noise_**2)], n)
        jitter_rel = getattr(self, "jitter_rel_", _JITTER)
        self._factor = None
        # torch's allocator maps this buffer with huge pages: first touch of 6.3 GB (N=1000) costs ~2 s instead of
        # ~13 s of page faults for np.empty on this machine
        Kt = torch.empty((nt, nt), dtype=torch.float64)
        K = Kt.numpy()
        cs = int(self.chunk_size)
        for attempt in range(6):
            starts = range(0, n, cs)
            for a0 in tqdm(starts, desc="GP covariance", disable=not self._show() or n <= cs, leave=False):
                a1 = min(n, a0 + cs)
                ga, gb = geo[a0:a1], geo[0:a1]
                block = Kt[a0 * m : a1 * m, : a1 * m].view(a1 - a0, m, a1, m)
                assemble(ga, gb, self._perms, *self._coeffs(ga, gb), out=block, accumulate=False)
            K.flat[:: nt + 1] += noise + jitter_rel * self.signal_std_**2 * self.variance_fractions_[0]
            if _cholesky_in_place(K) == 0:
                break
            jitter_rel *= 100.0
            warnings.warn(f"covariance not positive definite; retrying with jitter {jitter_rel:.1e} x signal variance",
                          HyperparameterWarning, stacklevel=3)
        else:
            raise np.linalg.LinAlgError("the GP covariance could not be factorised")
        self.jitter_rel_ = jitter_rel
        self._factor = K
        self._factor_scale = 1.0
        if reprofile:
            X = self._cholesky_solve(np.stack([y, e], axis=1))
            mu = float(e @ X[:, 0]) / float(e @ X[:, 1])
            alpha = X[:, 0] - mu * X[:, 1]
            c = float((y - mu * e) @ alpha) / nt
            self.mean_energy_ = mu
            self.signal_std_ *= math.sqrt(c)
            self.energy_noise_ *= math.sqrt(c)
            self.force_noise_ *= math.sqrt(c)
            self.alpha_ = alpha / c
            self._factor_scale = c  # the stored factor is that of K / c
        else:
            self.alpha_ = self._cholesky_solve((y - self.mean_energy_ * e)[:, None])[:, 0]

    def _cholesky_solve(self, B: np.ndarray) -> np.ndarray:
        """``K^-1 B`` from the stored in-place factor (two triangular solves, no copy of the factor)."""
        L = torch.from_numpy(self._factor)  # lower triangle: L = U^T, K = L L^T
        V = torch.linalg.solve_triangular(L, torch.as_tensor(B, dtype=torch.float64), upper=False)
        return torch.linalg.solve_triangular(L.T, V, upper=True).numpy()

    def _ensure_factor(self) -> None:
        if getattr(self, "_factor", None) is None:
            self._factorize()

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("this GPPotential is not fitted yet; call fit(frames) first")

    def predict(
        self, frames: Sequence[Atoms], return_std: bool = True, include_noise: bool = True, batch_size: int = 16
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Predict energies (eV) and forces (eV/Å) with predictive standard deviations.

        Forces are exactly minus the gradient of the predicted energy (both come
        from the same kernel derivatives). ``include_noise`` adds the fitted
        noise variance to the predictive variance (the distribution of a new
        reference label); ``False`` gives the latent (model) uncertainty.

        Returns ``energies (n,)``, ``forces (n, n_atoms, 3)``, ``energy_std (n,)``,
        ``forces_std (n, n_atoms, 3)`` (the last two ``None`` if ``return_std=False``).
        """
        self._check_fitted()
        pos, _, _ = _frames_to_arrays(frames, labels=False, numbers=self.numbers_, source="prediction frames")
        return self.predict_positions(pos, return_std=return_std, include_noise=include_noise, batch_size=batch_size)

    def predict_positions(
        self, positions: np.ndarray, return_std: bool = True, include_noise: bool = True, batch_size: int = 16
    ):
        """Like :meth:`predict` from an ``(n, n_atoms, 3)`` array of positions (Å)."""
        self._check_fitted()
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        a = len(self.numbers_)
        if pos.shape[1:] != (a, 3):
            raise ValueError(f"positions must have shape (n, {a}, 3), got {pos.shape}")
        if not np.all(np.isfinite(pos)):
            raise ValueError("positions contain NaN or inf")
        if return_std:
            self._ensure_factor()
        n_out = 1 + 3 * a
        E, F, Es, Fs = [], [], [], []
        for b0 in range(0, len(pos), batch_size):
            gt = Geometry.from_positions(pos[b0 : b0 + batch_size], self.descriptor_weights_)
            nb = len(gt)
            coeffs = self._coeffs(gt, self._geo)
            e_mean, f_mean = self._posterior_mean(gt, coeffs)
            E.append(e_mean.numpy() + self.mean_energy_)
            F.append(f_mean.numpy().reshape(nb, a, 3))
            if return_std:
                Ks = assemble(gt, self._geo, self._perms, *coeffs).reshape(nb * n_out, -1)
                prior = torch.stack([assemble(gt[i : i + 1], gt[i : i + 1], self._perms,
                                              *self._coeffs(gt[i : i + 1], gt[i : i + 1])).reshape(n_out, n_out).diagonal()
                                     for i in range(nb)]).numpy()
                V = torch.linalg.solve_triangular(torch.from_numpy(self._factor), Ks.T, upper=False).numpy()
                var = prior - (V * V).sum(0).reshape(nb, n_out) / self._factor_scale
                var = np.clip(var, 0.0, None)
                if include_noise:
                    var = var + np.r_[self.energy_noise_**2, np.full(n_out - 1, self.force_noise_**2)]
                sd = np.sqrt(var)
                scale = getattr(self, "std_scale_", None) or {"energy": 1.0, "forces": 1.0}
                sd[:, 0] *= scale["energy"]
                sd[:, 1:] *= scale["forces"]
                Es.append(sd[:, 0])
                Fs.append(sd[:, 1:].reshape(nb, a, 3))
        out_E, out_F = np.concatenate(E), np.concatenate(F)
        if not return_std:
            return out_E, out_F, None, None
        return out_E, out_F, np.concatenate(Es), np.concatenate(Fs)

    def _posterior_mean(self, gt: Geometry, coeffs) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean energies ``(nt,)`` (without the constant) and forces ``(nt, 3A)`` without the covariance block.

        With ``d_bp = x - Q_p x_b`` and the per-(training frame, permutation) weights
        ``w_bp = Q_p J_b alpha_F,b`` (precomputed once), the mean is
        ``E = sum_bp c0 alpha_E,b + c1 d_bp . w_bp`` and
        ``F = J^T sum_bp [(c2 d_bp . w_bp - c1 alpha_E,b) d_bp - c1 w_bp]`` — the same numbers as
        ``K(x, X) alpha`` at ``O(N P D)`` instead of ``O(N P D M^2)`` per structure (what makes MD fast).
        """
        XQ, WQ, xw, aE = self._mean_weights()
        c0, c1, c2 = coeffs  # (P, nt, N)
        s = torch.einsum("td,pnd->ptn", gt.X, WQ) - xw[:, None, :]
        e = (c0 * aE).sum((0, 2)) + (c1 * s).sum((0, 2))
        coef = c2 * s - c1 * aE
        g = (gt.X * coef.sum((0, 2))[:, None] - torch.einsum("ptn,pnd->td", coef, XQ)
             - torch.einsum("ptn,pnd->td", c1, WQ))
        return e, torch.einsum("tkd,td->tk", gt.Jt, g)

    def _mean_weights(self):
        """Cached ``Q_p x_b``, ``w_bp = Q_p J_b alpha_F,b`` (both ``(P, N, D)``), ``x_bp . w_bp`` and ``alpha_E``."""
        cache = getattr(self, "_mean_cache", None)
        if cache is not None and cache[0] is self.alpha_:
            return cache[1:]
        geo = self._geo
        al = torch.from_numpy(np.ascontiguousarray(self.alpha_)).reshape(len(geo), geo.n_outputs)
        y = torch.einsum("nkd,nk->nd", geo.Jt, al[:, 1:])  # J_b alpha_F,b
        idx = self._perms.idx
        XQ = geo.X[:, idx].permute(1, 0, 2).contiguous()
        WQ = y[:, idx].permute(1, 0, 2).contiguous()
        self._mean_cache = (self.alpha_, XQ, WQ, (XQ * WQ).sum(-1), al[:, 0].clone())
        return self._mean_cache[1:]

    def score(self, frames: Sequence[Atoms]) -> dict:
        """Error metrics on labelled frames (meV, meV/Å) and force-interval coverage; see :func:`evaluate`."""
        return evaluate(self, frames)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, store_factor: bool | None = None) -> Path:
        """Save to one file (atomic ``torch.save``).

        The Cholesky factor (``8 (N M)^2`` bytes) is stored when ``store_factor``
        is true, or by default when it is under 256 MB; otherwise it is rebuilt on
        the first uncertainty prediction after :meth:`load`.
        """
        from sciml._io import atomic_torch_save

        self._check_fitted()
        if store_factor is None:
            store_factor = self.alpha_.size**2 * 8 <= 256 * 2**20
        state = dict(
            format=_FORMAT,
            params=self.get_params(),
            numbers=torch.as_tensor(self.numbers_),
            positions=torch.as_tensor(self.positions_),
            energies=torch.as_tensor(self.energies_),
            forces=torch.as_tensor(self.forces_),
            permutations=torch.as_tensor(self.permutations_),
            descriptor_weights=torch.as_tensor(self.descriptor_weights_),
            theta=torch.as_tensor(self.theta_),
            scales=[self._scales.e_mean, self._scales.e_std],
            alpha=torch.as_tensor(self.alpha_),
            jitter_rel=float(self.jitter_rel_),
            factor_scale=float(self._factor_scale),
            std_scale=dict(getattr(self, "std_scale_", None) or {"energy": 1.0, "forces": 1.0}),
            final=[self.signal_std_, self.energy_noise_, self.force_noise_, self.mean_energy_],
            tune_indices=torch.as_tensor(self.tune_indices_),
            trace=self._trace,
            nlml=float(self.nlml_),
            fit_time=float(self.fit_time_),
            tune_time=float(self.tune_time_),
            laplace=None if self.laplace_ is None else self.laplace_.to_dict(),
            factor=torch.from_numpy(self._factor) if (store_factor and self._factor is not None) else None,
        )
        return atomic_torch_save(state, path)

    @classmethod
    def load(cls, path: str | Path) -> "GPPotential":
        """Load a model written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"model file {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"{str(path)!r} is not a sciml.gp.GPPotential model file")
        params = dict(state["params"])
        params.setdefault("n_scales", 1)  # files written before mixtures: one length-scale
        gp = cls(**params)
        gp.numbers_ = state["numbers"].numpy()
        gp.positions_ = state["positions"].numpy()
        gp.energies_ = state["energies"].numpy()
        gp.forces_ = state["forces"].numpy()
        gp.permutations_ = state["permutations"].numpy()
        gp._perms = Permutations(gp.permutations_, len(gp.numbers_))
        gp.descriptor_weights_ = state["descriptor_weights"].numpy()
        gp._geo = Geometry.from_positions(gp.positions_, gp.descriptor_weights_)
        gp.n_train_ = len(gp.positions_)
        gp._scales = _Scales(*state["scales"])
        gp.theta_ = state["theta"].numpy()
        ls, fr, _, _, _, _ = _unpack(torch.as_tensor(gp.theta_), gp._scales)
        gp.lengthscales_, gp.variance_fractions_ = ls.numpy(), fr.numpy()
        gp.lengthscale_ = float(ls[0])
        gp.alpha_ = state["alpha"].numpy()
        gp.jitter_rel_ = state["jitter_rel"]
        gp.signal_std_, gp.energy_noise_, gp.force_noise_, gp.mean_energy_ = state["final"]
        gp.tune_indices_ = state["tune_indices"].numpy()
        gp._trace = state["trace"]
        gp.nlml_ = state["nlml"]
        gp.fit_time_, gp.tune_time_ = state["fit_time"], state["tune_time"]
        gp.laplace_ = None if state["laplace"] is None else LaplaceResult.from_dict(state["laplace"])
        gp._factor = None if state["factor"] is None else state["factor"].numpy()
        gp._factor_scale = state["factor_scale"] if gp._factor is not None else 1.0
        gp.std_scale_ = dict(state.get("std_scale") or {"energy": 1.0, "forces": 1.0})
        return gp


def evaluate(
    model: GPPotential, frames: Sequence[Atoms], max_std_structures: int | None = None, batch_size: int = 16
) -> dict:
    """Test-set metrics: MAE/RMSE of energies (meV, meV/atom) and forces (meV/Å), uncertainty calibration.

    Keys: ``n_structures, energy_mae_meV, energy_rmse_meV, energy_mae_meV_per_atom,
    forces_mae_meV_per_A, forces_rmse_meV_per_A`` (all frames),
    ``forces_std_mean_meV_per_A`` (mean predicted force std, noise included),
    ``forces_coverage_95`` (fraction of force components whose error lies inside
    the 95% predictive interval), ``energy_coverage_95``, ``n_structures_std``
    (frames used for the uncertainty keys: the first ``max_std_structures``, all
    if ``None``; each costs a triangular solve with the training covariance),
    ``predict_time_s_per_structure`` (energies + forces) and
    ``predict_std_time_s_per_structure``.

    Example
    -------
    >>> metrics = evaluate(gp, test_frames)   # doctest: +SKIP
    """
    pos, e_ref, f_ref = _frames_to_arrays(frames, labels=True, numbers=model.numbers_, source="test frames")
    t0 = time.perf_counter()
    E, F, _, _ = model.predict_positions(pos, return_std=False, batch_size=batch_size)
    dt = time.perf_counter() - t0
    k = len(pos) if max_std_structures is None else max(0, min(len(pos), int(max_std_structures)))
    out = error_metrics(E, e_ref, np.full(len(pos), pos.shape[1]), F, f_ref)
    if k > 0:
        t1 = time.perf_counter()
        _, _, Es, Fs = model.predict_positions(pos[:k], return_std=True, include_noise=True, batch_size=batch_size)
        dts = time.perf_counter() - t1
        fu = uncertainty_metrics(F[:k] - f_ref[:k], Fs, "forces")
        eu = uncertainty_metrics(E[:k] - e_ref[:k], Es, "energy")
        out.update(
            forces_std_mean_meV_per_A=fu["forces_std_mean_meV_per_A"],
            forces_coverage_95=fu["forces_coverage_95"],
            energy_coverage_95=eu["energy_coverage_95"],
            n_structures_std=k,
            predict_std_time_s_per_structure=dts / k,
        )
    else:
        out.update(forces_std_mean_meV_per_A=None, forces_coverage_95=None, energy_coverage_95=None,
                   n_structures_std=0, predict_std_time_s_per_structure=None)
    out["predict_time_s_per_structure"] = dt / len(pos)
    return out
