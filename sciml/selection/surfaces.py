"""Nonparametric fitness surfaces (Gaussian processes) and their average selection gradients.

A GP with an ARD squared-exponential kernel is fitted to fitness as a function of the traits
(gpytorch): exact GP regression for continuous (and count) fitness, a variational GP with a
Bernoulli (probit) likelihood for binary fitness, so that ``W(z) = Phi(f(z))``.

Average gradients follow Morrissey & Sakrejda (2013):
``beta = E[dW/dz] / E[W]`` and ``gamma = E[d2W/dz dz'] / E[W]``, expectations over the observed
phenotypes. Derivatives come from autograd. Uncertainty: functions are drawn from the GP
posterior by pathwise conditioning (Matheron's rule with random Fourier features for the prior,
Wilson et al. 2020); every draw is a differentiable function, so each gives its own beta and
gamma, and the intervals are posterior percentiles.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import pandas as pd


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (restored afterwards)."""
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence gpytorch's use of the deprecated ``torch.jit.script`` (not ours to fix)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.script.*")
        yield


class FitnessSurface:
    """GP fitness function of (standardised) traits with autograd average gradients.

    Parameters
    ----------
    fitness_type : ``"continuous"``, ``"count"`` (both exact GP regression on relative fitness)
        or ``"binary"`` (variational GP, Bernoulli probit likelihood).
    n_iter : optimiser steps for the hyperparameters (Adam).
    lr : Adam learning rate.
    n_inducing : inducing points of the binary model (all individuals when n <= n_inducing).
    n_features : random Fourier features of the prior in posterior draws.
    seed : random seed (inducing-point subset, posterior draws).
    progress : show a progress bar while fitting.
    n_threads : torch threads while fitting/sampling; default 1 for n <= 2000 individuals (these
        small dense problems are fastest single-threaded, especially on a busy machine), else
        torch's setting.

    Learned attributes: ``lengthscale_`` (per trait), ``outputscale_``, ``noise_`` (continuous),
    ``mean_`` (constant prior mean), ``traits_``, ``n_features_in_``, ``W_mean_``.

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(150, 2)); W = 1 + 0.3 * Z[:, 0] - 0.1 * Z[:, 1] ** 2 + 0.2 * rng.normal(size=150)
    >>> surf = FitnessSurface(n_iter=60).fit(Z, W)               # doctest: +SKIP
    >>> beta, gamma = surf.average_gradients(n_samples=100)      # doctest: +SKIP
    """

    def __init__(self, fitness_type: str = "continuous", n_iter: int = 150, lr: float = 0.05,
                 n_inducing: int = 300, n_features: int = 1024, seed: int | None = 0, progress: bool = True,
                 n_threads: int | None = None):
        self.fitness_type = fitness_type
        self.n_iter = n_iter
        self.lr = lr
        self.n_inducing = n_inducing
        self.n_features = n_features
        self.seed = seed
        self.progress = progress
        self.n_threads = n_threads

    def _threads(self, n: int):
        return _torch_threads(self.n_threads if self.n_threads is not None else (1 if n <= 2000 else None))

    # ------------------------------------------------------------------ fitting
    def fit(self, Z: np.ndarray | pd.DataFrame, W: np.ndarray | pd.Series) -> "FitnessSurface":
        """Fit kernel hyperparameters (and the variational posterior for binary fitness)."""
        with self._threads(len(W)), _quiet_jit():
            return self._fit(Z, W)

    def _fit(self, Z, W) -> "FitnessSurface":
        import torch
        from tqdm.auto import tqdm

        from sciml._runtime import quiet_progress

        Z, W = self._validate(Z, W)
        self.n_features_in_ = Z.shape[1]
        self.W_mean_ = float(W.mean())
        self.X_ = torch.tensor(np.array(Z), dtype=torch.float64)
        bar = tqdm(range(self.n_iter), desc="fitness surface", leave=False,
                   disable=(not self.progress) or quiet_progress())
        model, lik = self._fit_binary(W, bar) if self.fitness_type == "binary" else self._fit_regression(W, bar)
        self.model_, self.likelihood_ = model, lik
        self.lengthscale_ = model.covar_module.base_kernel.lengthscale.detach().reshape(-1).clone()
        self.outputscale_ = float(model.covar_module.outputscale.detach())
        self.mean_ = float(model.mean_module.constant.detach())
        return self

    def _validate(self, Z, W) -> tuple[np.ndarray, np.ndarray]:
        """Check the option and the data; set ``traits_``; return float arrays."""
        if self.fitness_type not in ("continuous", "count", "binary"):
            raise ValueError(f"fitness_type must be 'continuous', 'count' or 'binary', got {self.fitness_type!r}")
        if isinstance(Z, pd.DataFrame):
            self.traits_ = list(Z.columns)
            Z = Z.to_numpy(float)
        else:
            Z = np.asarray(Z, float)
            if Z.ndim == 1:
                Z = Z[:, None]
            self.traits_ = [f"z{i + 1}" for i in range(Z.shape[1])]
        W = np.asarray(W, float).ravel()
        if Z.shape[0] != len(W):
            raise ValueError(f"Z has {Z.shape[0]} rows but W has {len(W)} values")
        if not (np.isfinite(Z).all() and np.isfinite(W).all()):
            raise ValueError("Z and W must be finite (drop missing values first)")
        if (W < 0).any() or W.sum() == 0:
            raise ValueError("fitness W must be non-negative and not all zero")
        if self.fitness_type == "binary" and not set(np.unique(W)) <= {0.0, 1.0}:
            raise ValueError("binary fitness W must be 0/1")
        return Z, W

    def _fit_binary(self, W: np.ndarray, bar):
        """Variational GP classifier (Bernoulli probit likelihood) on inducing points (ELBO, Adam)."""
        import gpytorch
        import torch

        dt, X = torch.float64, self.X_
        p = X.shape[1]
        y = torch.tensor(np.array(W), dtype=dt)
        n = len(y)
        gen = torch.Generator().manual_seed(0 if self.seed is None else int(self.seed))
        Zi = X[torch.randperm(n, generator=gen)[: self.n_inducing]].clone() if n > self.n_inducing else X.clone()

        class _SVGP(gpytorch.models.ApproximateGP):
            def __init__(self, inducing):
                vd = gpytorch.variational.CholeskyVariationalDistribution(inducing.shape[0])
                vs = gpytorch.variational.VariationalStrategy(self, inducing, vd, learn_inducing_locations=False)
                super().__init__(vs)
                self.mean_module = gpytorch.means.ConstantMean()
                self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=p))

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

        model = _SVGP(Zi).to(dt)
        lik = gpytorch.likelihoods.BernoulliLikelihood().to(dt)
        model.covar_module.base_kernel.lengthscale = 2.0 * torch.ones(p, dtype=dt)
        _adam(model, lik, gpytorch.mlls.VariationalELBO(lik, model, num_data=n), X, y, self.lr * 2,
              list(model.parameters()) + list(lik.parameters()), bar)
        self.inducing_ = Zi
        vd = model.variational_strategy._variational_distribution
        self.v_mean_ = vd.variational_mean.detach().clone()
        self.v_chol_ = torch.tril(vd.chol_variational_covar.detach().clone())
        self.noise_ = None
        return model, lik

    def _fit_regression(self, W: np.ndarray, bar):
        """Exact GP regression of relative fitness (Gaussian likelihood; marginal likelihood, Adam)."""
        import gpytorch
        import torch

        dt, X = torch.float64, self.X_
        p = X.shape[1]
        y = torch.as_tensor(W / W.mean(), dtype=dt)

        class _ExactGP(gpytorch.models.ExactGP):
            def __init__(self, x, t, lk):
                super().__init__(x, t, lk)
                self.mean_module = gpytorch.means.ConstantMean()
                self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=p))

            def forward(self, x):
                return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

        lik = gpytorch.likelihoods.GaussianLikelihood().to(dt)
        model = _ExactGP(X, y, lik).to(dt)
        model.mean_module.constant.data.fill_(float(y.mean()))
        model.covar_module.base_kernel.lengthscale = 2.0 * torch.ones(p, dtype=dt)
        model.covar_module.outputscale = float(y.var()) / 2
        lik.noise = float(y.var()) / 2
        _adam(model, lik, gpytorch.mlls.ExactMarginalLogLikelihood(lik, model), X, y, self.lr,
              model.parameters(), bar)
        self.y_ = y
        self.noise_ = float(lik.noise.detach())
        return model, lik

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("FitnessSurface is not fitted yet: call fit(Z, W) first")

    def _k(self, A, B):
        import torch

        ls = self.lengthscale_
        a, b = A / ls, B / ls
        d2 = (a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[None, :] - 2.0 * a @ b.T
        return self.outputscale_ * torch.exp(-0.5 * d2)

    # ------------------------------------------------------------------ prediction
    def predict(self, Z: np.ndarray | pd.DataFrame, return_std: bool = False):
        """Expected fitness at ``Z`` (absolute units): posterior mean for continuous/count
        fitness, predictive survival probability for binary fitness. ``return_std`` adds the
        posterior SD of the latent function (continuous: of W)."""
        import gpytorch
        import torch

        self._check_fitted()
        Z = Z.to_numpy(float) if isinstance(Z, pd.DataFrame) else np.asarray(Z, float)
        if Z.ndim == 1:
            Z = Z[:, None]
        if Z.shape[1] != self.n_features_in_:
            raise ValueError(f"Z has {Z.shape[1]} columns, the surface was fitted on {self.n_features_in_}")
        x = torch.as_tensor(Z, dtype=torch.float64)
        with torch.no_grad(), gpytorch.settings.fast_pred_var(), _quiet_jit():
            f = self.model_(x)
            if self.fitness_type == "binary":
                mean = self.likelihood_(f).mean.numpy()
                sd = f.variance.sqrt().numpy()
            else:
                mean = f.mean.numpy() * self.W_mean_
                sd = f.variance.sqrt().numpy() * self.W_mean_
        return (mean, sd) if return_std else mean

    # ------------------------------------------------------------------ posterior draws
    def _posterior_draws(self, n_samples: int, gen):
        """Pathwise posterior draws ``f_s(x) = feat(x) . weights_s + mean``.

        ``feat(x)`` stacks the random Fourier features of the prior and the kernel at the
        anchor points (training or inducing inputs), so every draw is linear in the features.
        Returns ``(feat, weights)`` with ``feat`` a function of one point ``x`` (p,) -> (F,).
        """
        import torch

        dt = torch.float64
        p, D = self.n_features_in_, self.n_features
        Om = torch.randn(D, p, generator=gen, dtype=dt)
        b = 2 * math.pi * torch.rand(D, generator=gen, dtype=dt)
        amp = math.sqrt(2.0 * self.outputscale_ / D)
        ls = self.lengthscale_
        theta = torch.randn(n_samples, D, generator=gen, dtype=dt)

        def prior(x):
            return amp * torch.cos((x / ls) @ Om.T + b)

        if self.fitness_type == "binary":
            Zi = self.inducing_
            Kzz = self._k(Zi, Zi) + 1e-6 * torch.eye(len(Zi), dtype=dt)
            L = torch.linalg.cholesky(Kzz)
            eps = torch.randn(n_samples, len(Zi), generator=gen, dtype=dt)
            v = self.v_mean_ + eps @ self.v_chol_.T                     # whitened inducing values
            u = v @ L.T                                                  # u - prior mean
            coef = torch.cholesky_solve(u.T - prior(Zi) @ theta.T, L).T  # (S, M)
            anchor = Zi
        else:
            X = self.X_
            n = len(X)
            L = torch.linalg.cholesky(self._k(X, X) + self.noise_ * torch.eye(n, dtype=dt))
            eps = math.sqrt(self.noise_) * torch.randn(n_samples, n, generator=gen, dtype=dt)
            resid = (self.y_ - self.mean_)[None, :] - (prior(X) @ theta.T).T - eps   # (S, n)
            coef = torch.cholesky_solve(resid.T, L).T
            anchor = X
        a_s = anchor / ls
        s2 = self.outputscale_

        def feat(x):  # one point (p,) -> (F,)
            d2 = ((x / ls - a_s) ** 2).sum(-1)
            return torch.cat([prior(x), s2 * torch.exp(-0.5 * d2)])

        return feat, torch.cat([theta, coef], dim=1)

    def sample(self, Z: np.ndarray | pd.DataFrame, n_samples: int = 100, seed: int | None = None) -> np.ndarray:
        """Posterior draws of the fitness function at ``Z``: array (n_samples, len(Z)) in absolute
        units (binary: survival probability)."""
        import torch

        self._check_fitted()
        x0 = torch.as_tensor(np.array(Z.to_numpy(float) if isinstance(Z, pd.DataFrame) else Z, float),
                             dtype=torch.float64).reshape(-1, self.n_features_in_)
        feat, wts = self._posterior_draws(n_samples, torch.Generator().manual_seed(0 if seed is None else int(seed)))
        with torch.no_grad(), _quiet_jit():
            f = (torch.vmap(feat)(x0) @ wts.T).T + self.mean_
        if self.fitness_type == "binary":
            return torch.special.ndtr(f).numpy()
        return f.numpy() * self.W_mean_

    def average_gradients(self, Z: np.ndarray | pd.DataFrame | None = None, n_samples: int = 200,
                          level: float = 0.95, seed: int | None = None,
                          chunk: int = 64) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Average gradients ``beta = E[dW/dz]/E[W]`` and ``gamma = E[d2W/dzdz']/E[W]``.

        Expectations run over the rows of ``Z`` (default: the fitted phenotypes). First and
        second derivatives of the features of each point come from autograd
        (forward-mode ``torch.func.jacfwd``); each posterior draw is a weighted sum of them.
        Returns ``beta`` (DataFrame indexed by trait: ``estimate, se, ci_low, ci_high`` = posterior
        mean, SD and percentile interval over ``n_samples`` draws) and ``gamma`` as a long
        DataFrame ``trait_i, trait_j, estimate, se, ci_low, ci_high``; ``gamma_matrix_`` holds the
        trait x trait posterior mean.
        """
        with self._threads(len(self.X_) if hasattr(self, "X_") else 0), _quiet_jit():
            return self._average_gradients(Z, n_samples, level, seed, chunk)

    def _average_gradients(self, Z, n_samples, level, seed, chunk):
        import torch
        from torch.func import jacfwd

        self._check_fitted()
        x0 = self.X_ if Z is None else torch.as_tensor(
            np.array(Z.to_numpy(float) if isinstance(Z, pd.DataFrame) else Z, float), dtype=torch.float64)
        feat, wts = self._posterior_draws(n_samples, torch.Generator().manual_seed(0 if seed is None else int(seed)))
        m, p = x0.shape
        S = wts.shape[0]
        sW = torch.zeros(S, dtype=torch.float64)
        sG = torch.zeros(S, p, dtype=torch.float64)
        sH = torch.zeros(S, p, p, dtype=torch.float64)
        for s in range(0, m, chunk):
            x = x0[s:s + chunk]
            F0 = torch.vmap(feat)(x)                      # (c, F)
            J = torch.vmap(jacfwd(feat))(x)               # (c, F, p)
            Hs = torch.vmap(jacfwd(jacfwd(feat)))(x)             # (c, F, p, p)
            f = F0 @ wts.T + self.mean_                   # (c, S)
            gf = torch.einsum("cfp,sf->csp", J, wts)
            hf = torch.einsum("cfpq,sf->cspq", Hs, wts)
            if self.fitness_type == "binary":
                pdf = torch.exp(-0.5 * f ** 2) / math.sqrt(2 * math.pi)
                W = torch.special.ndtr(f)
                gW = pdf[..., None] * gf
                hW = (-f * pdf)[..., None, None] * gf[..., :, None] * gf[..., None, :] + pdf[..., None, None] * hf
            else:
                W, gW, hW = f, gf, hf
            sW += W.sum(0)
            sG += gW.sum(0)
            sH += hW.sum(0)
        B = (sG / sW[:, None]).numpy()
        Gm = (sH / sW[:, None, None]).numpy()
        Gm = 0.5 * (Gm + np.swapaxes(Gm, 1, 2))
        a = (1 - level) / 2
        beta = pd.DataFrame({"estimate": B.mean(0), "se": B.std(0, ddof=1),
                             "ci_low": np.quantile(B, a, 0), "ci_high": np.quantile(B, 1 - a, 0)},
                            index=self.traits_)
        rows = []
        for i in range(p):
            for j in range(i, p):
                v = Gm[:, i, j]
                rows.append([self.traits_[i], self.traits_[j], v.mean(), v.std(ddof=1),
                             np.quantile(v, a), np.quantile(v, 1 - a)])
        gamma = pd.DataFrame(rows, columns=["trait_i", "trait_j", "estimate", "se", "ci_low", "ci_high"])
        self.gamma_matrix_ = pd.DataFrame(Gm.mean(0), index=self.traits_, columns=self.traits_)
        self.beta_samples_, self.gamma_samples_ = B, Gm
        return beta, gamma


def _adam(model, lik, mll, X, y, lr: float, params, bar) -> None:
    """Maximise ``mll(model(X), y)`` with Adam for the steps of ``bar``; leave model and likelihood in eval mode."""
    import torch

    model.train()
    lik.train()
    opt = torch.optim.Adam(params, lr=lr)
    for _ in bar:
        opt.zero_grad()
        loss = -mll(model(X), y)
        loss.backward()
        opt.step()
    model.eval()
    lik.eval()


def fitness_surface(result, traits: Sequence[str] | None = None, **kwargs) -> FitnessSurface:
    """Fit a :class:`FitnessSurface` to the standardised traits and fitness of a
    :class:`~sciml.selection.SelectionResult` (so its average gradients are on the same scale as
    ``result.beta``).

    Example
    -------
    >>> surf = fitness_surface(res, n_iter=100)          # doctest: +SKIP
    >>> beta_avg, gamma_avg = surf.average_gradients()    # doctest: +SKIP
    """
    if result.data is None:
        raise ValueError("result has no data attached")
    traits = list(result.traits if traits is None else traits)
    unknown = [t for t in traits if t not in result.traits]
    if unknown:
        raise ValueError(f"traits {unknown} are not in the analysis ({result.traits})")
    return FitnessSurface(fitness_type=result.fitness_type, **kwargs).fit(result.data[traits], result.data["W"])
