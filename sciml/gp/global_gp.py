"""The global (molecular) GP potential: an estimator over the steps of :mod:`sciml.gp`.

The model
---------
``E(R) ~ GP(mu, k(x(R), x(R')))`` with ``x`` the inverse distances to a power,
``x_ij = |r_ij|^-p`` (default ``p = 1/2``; :mod:`sciml.gp.descriptors`), ``k`` a
permutation-symmetrised Matérn-5/2 or RBF kernel or a mixture of them (default: two Matérn-5/2
components; :mod:`sciml.gp.kernels`), and forces ``F = -dE/dR`` observed jointly with
energies. Hyperparameters (:mod:`sciml.gp.hyperparameters`), all fitted by maximising the exact log
marginal likelihood (:mod:`sciml.gp.likelihood`, :mod:`sciml.gp.tuning`):

==========================  ==========================================
``lengthscale_``            descriptor length-scale (standardised descriptor units)
``signal_std_``             signal standard deviation ``s`` (eV)
``energy_noise_``           energy noise standard deviation (eV)
``force_noise_``            force noise standard deviation (eV/Å)
``mean_energy_``            constant prior mean of the energy (eV)
``lengthscales_``,          with ``n_scales > 1``: a sum of kernels with their own
``variance_fractions_``     length-scales and shares of the signal variance
``group_lengthscales_``     with ``length_scales="pair"`` (ARD): the first component's
                            length-scale of each group ``length_scale_groups_`` of descriptor
                            entries (element pairs, :mod:`sciml.gp.pair_groups`)
==========================  ==========================================

Steps of :meth:`GPPotential.fit`
--------------------------------
1. validate frames -> positions, energies, forces (:mod:`sciml.gp.data`); permutation group of
   identical atoms (:mod:`sciml.gp.symmetry`); descriptor weights.
2. tune the length-scales and noise-to-signal ratios on a seeded subset of ``n_tune`` frames
   (exact NLML with exact gradients; the signal variance and mean profiled out), optionally the
   Laplace approximation (:mod:`sciml.gp.laplace`).
3. solve on all N frames (:mod:`sciml.gp.solvers`: Cholesky or preconditioned CG, chosen by
   ``solver`` and ``max_memory``), the noise raised to ``min_noise`` if set; the signal variance
   is re-estimated there in closed form (its exact marginal-likelihood maximiser given the tuned
   ratios), the constant mean is the tuning subset's GLS estimate.

Predictions: the posterior mean costs ``O(N P D)`` per structure (:mod:`sciml.gp.kernel_products`);
standard deviations need the solver's factor (rebuilt on first use after :meth:`load`).
:meth:`calibrate` rescales them on held-out frames (variance scaling).
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from .data import energy_selector, frames_to_arrays, interleave_targets, shared_configurations
from .descriptors import Geometry, Permutations, inverse_distances
from .hyperparameters import JITTER, EnergyScale, HyperparameterWarning, param_names
from .kernel_products import PermutedTraining, kernel_times
from .kernels import KERNELS, group_squared_distances, mixture_coefficients, squared_distances
from .laplace import LaplaceResult
from .likelihood import nlml_hessian
from .model_file import load_global, save_global
from .pair_groups import LENGTH_SCALE_KINDS, ard_feature_weights, descriptor_groups
from .solvers import CGSolver, CholeskySolver, TrainingCovariance, choose_solver, parse_memory, prior_diagonal
from .tuning import tune_hyperparameters

__all__ = ["GPPotential", "CG_MIN_NOISE", "DESCRIPTOR_POWER"]

#: Default ``min_noise`` with the CG solver (eV for energies, eV/Å for forces): noiseless labels make the
#: covariance too ill-conditioned for any iterative solver otherwise (see sciml.gp.solvers). On ethanol
#: (N = 300) raising the tuned noise to 1 or 3 meV(/Å) changed the test force MAE from 21.07 to 21.06 / 21.01 meV/Å.
CG_MIN_NOISE = 3e-3
#: Default exponent ``p`` of the descriptor ``x_ij = |r_ij|^-p`` (see ``GPPotential``, ``descriptor_power``).
DESCRIPTOR_POWER = 0.5
_PARAMS = ("kernel", "descriptor_power", "n_scales", "length_scales", "symmetry", "max_group_size", "n_tune", "optimizer", "max_iter", "noise_floor",
           "min_noise", "standardize", "laplace", "solver", "max_memory", "cg_tol", "cg_max_iter", "n_pivots", "chunk_size",
           "seed",
           "progress")


class GPPotential:
    """Gaussian-process potential energy surface of one molecule, trained on energies and forces.

    Parameters
    ----------
    kernel: ``"matern52"`` (default) or ``"rbf"`` on inverse-distance descriptors.
    descriptor_power: exponent ``p`` of the descriptor ``x_ij = |r_ij|^-p`` (default 0.5; 1 is the
        GDML/sGDML descriptor and the default before). n_scales: kernel components with their own
        length-scale (``s^2 sum_c pi_c g(|x - y| / l_c)``), all length-scales and variance fractions
        fitted by the marginal likelihood (default 2).
        The defaults ``descriptor_power=0.5, n_scales=2, n_tune=50`` were chosen on ethanol only
        (``workflows/benchmarks/gp_options_ethanol.py``, results ``gp_options_ethanol*.json``): on
        the same 25 tuning frames ``p = 1/2`` raised the log marginal likelihood by 8-14 nats over
        ``p = 1`` at N = 50/100/200 (``p = 2, 3`` lowered it, ``p = 1/4`` and ``log r`` were level
        with 1/2) and lowered the validation force MAE by ~4 %; on 50 tuning frames the second
        kernel component raised it by 10-17 nats (not identifiable on 25); together with
        ``n_tune=50`` the validation force MAE went 52.6 / 33.1 / 20.8 -> 49.2 / 30.1 / 19.1 meV/Å
        (N = 50 / 100 / 200), the tuning took 30-90 s instead of 2-5 s (one thread, loaded machine).
    length_scales: ``"pair"`` (default): one length-scale per pair of element types (automatic
        relevance determination, e.g. C-H and H-H distances vary on their own scales; 5 for ethanol,
        6 for malonaldehyde); ``"shared"``: one for every inverse distance (the default before; on
        ethanol validation frames ``"pair"`` lowered the force MAE by 4-10 % at N = 50-200, see
        ``workflows/benchmarks/results/gp_length_scales_ethanol*.json``); ``"orbit"``: one per orbit of
        atom pairs under the permutations of identical atoms. All fitted by the marginal likelihood,
        starting from the shared optimum (``nlml_shared_`` records its NLML); see
        :mod:`sciml.gp.pair_groups`.
    symmetry: ``"auto"`` (default): symmetrise the kernel over the permutations of identical atoms
        (bond-graph automorphisms) when there are at most ``max_group_size``; ``True``: always
        (error if too many); ``False``: never.
    max_group_size: largest group symmetrised over with ``symmetry="auto"``.
    n_tune: configurations (seeded random subset) on which the hyperparameters are fitted by the
        exact marginal likelihood (default 50; 25 before, 100 gained no more on ethanol for 10x
        the time); all configurations are used for the final solve.
    optimizer: ``"lbfgs"`` (scipy L-BFGS-B, exact gradients) or ``"adam"``; ``converged_`` reports
        whether its stopping criterion was met. max_iter: optimiser iterations (with ARD length-scales,
        for each of the two stages: shared, then per group).
    noise_floor: lower bound of the noise standard deviations relative to the signal std of the
        first kernel component during the marginal-likelihood search.
    min_noise: absolute floor (eV for energies, eV/Å for forces) to which the tuned noise stds are
        raised for the final solve (a regularisation, reported in ``energy_noise_`` / ``force_noise_``);
        ``None``: none with Cholesky, :data:`CG_MIN_NOISE` with CG (which needs it to converge).
    standardize: weight each inverse distance by 1/(its std in the training set), averaged over
        symmetry-equivalent pairs.
    laplace: compute the Laplace approximation of the hyperparameter posterior.
    solver: ``"auto"`` (Cholesky when its ``8 (N M)^2`` bytes fit ``max_memory``, else CG),
        ``"cholesky"`` or ``"cg"`` (see :mod:`sciml.gp.solvers`).
    max_memory: bytes (or ``"12GB"``) the solve may use; ``None``: half the machine's memory.
    cg_tol: relative residual at which CG stops; cg_max_iter: iterations at most (a solve that stops
        there is warned about with its residual, recorded in ``solver_info_``). n_pivots: structures in the CG preconditioner
        (``None``: what half of ``max_memory`` holds, at most 128).
    chunk_size: structures per block row when assembling the covariance.
    seed: seed of the tuning subset. progress: progress bars (also silenced by ``SCIML_QUIET=1``).

    Attributes (after ``fit``)
    --------------------------
    lengthscales_, variance_fractions_, lengthscale_, signal_std_, energy_noise_, force_noise_,
    mean_energy_: fitted hyperparameters (see the module docstring). theta_: packed hyperparameters at
    the tuning optimum (what ``laplace_`` refers to). permutations_: ``(P, n_atoms)``.
    length_scale_groups_, group_lengthscales_ (``None`` without ARD), nlml_shared_ (NLML of the
    shared-length-scale optimum). descriptor_weights_: standardisation weights; feature_weights_:
    the weights the kernel sees (with ARD, ``descriptor_weights_ * lengthscale_ / l_g``).
    laplace_: :class:`LaplaceResult` or ``None``. trace_: optimisation trace (pandas DataFrame).
    nlml_: NLML at the optimum (tuning subset). converged_, optimizer_message_. solver_: the solver
    used; solver_info_: its record (CG iterations and residuals). std_scale_: calibration factors.
    n_train_, fit_time_, tune_time_.

    Example
    -------
    >>> from sciml.datasets import load_pes
    >>> from sciml.gp import GPPotential
    >>> frames = load_pes("ethanol_gfn2_500K")               # doctest: +SKIP
    >>> gp = GPPotential().fit(frames[:100])                 # doctest: +SKIP
    >>> E, F, E_std, F_std = gp.predict(frames[100:110])     # doctest: +SKIP
    """

    def __init__(self, kernel: str = "matern52", descriptor_power: float = DESCRIPTOR_POWER, n_scales: int = 2, length_scales: str = "pair",
                 symmetry: bool | str = "auto",
                 max_group_size: int = 24, n_tune: int = 50, optimizer: str = "lbfgs", max_iter: int = 50,
                 noise_floor: float = 1e-8, min_noise: float | None = None, standardize: bool = True,
                 laplace: bool = True, solver: str = "auto", max_memory: int | str | None = None,
                 cg_tol: float = 1e-7, cg_max_iter: int = 3000, n_pivots: int | None = None, chunk_size: int = 32,
                 seed: int = 0, progress: bool = True):
        self.kernel = kernel
        self.descriptor_power = descriptor_power
        self.n_scales = n_scales
        self.length_scales = length_scales
        self.symmetry = symmetry
        self.max_group_size = max_group_size
        self.n_tune = n_tune
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.noise_floor = noise_floor
        self.min_noise = min_noise
        self.standardize = standardize
        self.laplace = laplace
        self.solver = solver
        self.max_memory = max_memory
        self.cg_tol = cg_tol
        self.cg_max_iter = cg_max_iter
        self.n_pivots = n_pivots
        self.chunk_size = chunk_size
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------------------ sklearn-style parameters
    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters."""
        return {k: getattr(self, k) for k in _PARAMS}

    def set_params(self, **params) -> "GPPotential":
        """Set constructor parameters (sklearn convention)."""
        for k, v in params.items():
            if k not in _PARAMS:
                raise ValueError(f"unknown parameter {k!r} for GPPotential; valid: {sorted(_PARAMS)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return "GPPotential(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _validate_params(self) -> None:
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        p = self.descriptor_power
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not (
                math.isfinite(p) and p > 0):
            raise ValueError(f"descriptor_power must be a finite positive number (x = r^-p), got {p!r}")
        if self.length_scales not in LENGTH_SCALE_KINDS:
            raise ValueError(f"length_scales must be one of {LENGTH_SCALE_KINDS}, got {self.length_scales!r}")
        if self.symmetry not in (True, False, "auto"):
            raise ValueError(f"symmetry must be True, False or 'auto', got {self.symmetry!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.solver not in ("auto", "cholesky", "cg"):
            raise ValueError(f"solver must be 'auto', 'cholesky' or 'cg', got {self.solver!r}")
        for name in ("n_scales", "n_tune", "max_iter", "chunk_size", "max_group_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < (0 if name == "max_iter" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_tune < 2:
            raise ValueError(f"n_tune must be at least 2 configurations, got {self.n_tune}")
        if not (0 < float(self.noise_floor) < 1):
            raise ValueError(f"noise_floor must be in (0, 1), got {self.noise_floor!r}")
        if self.min_noise is not None and not float(self.min_noise) >= 0:
            raise ValueError(f"min_noise must be >= 0 (eV, eV/A), got {self.min_noise!r}")
        if not 0 < float(self.cg_tol) < 1:
            raise ValueError(f"cg_tol must be in (0, 1), got {self.cg_tol!r}")
        parse_memory(self.max_memory)

    def _show(self) -> bool:
        from sciml._runtime import quiet_progress

        return bool(self.progress) and not quiet_progress()

    # ------------------------------------------------------------------ fit
    def _permutation_group(self, numbers: np.ndarray, pos0: np.ndarray) -> np.ndarray:
        from .symmetry import bond_graph, permutation_group

        if self.symmetry is False:
            return np.arange(len(numbers))[None]
        G = bond_graph(Atoms(numbers=numbers, positions=pos0))
        try:
            return permutation_group(G, max_size=self.max_group_size)
        except ValueError:
            if self.symmetry is True:
                raise
            warnings.warn(f"the molecule has more than max_group_size={self.max_group_size} permutations of "
                          "identical atoms; the kernel is not symmetrised", stacklevel=3)
            return np.arange(len(numbers))[None]

    def _set_training_data(self, frames, pos, energies, forces) -> None:
        numbers = np.asarray(frames[0].numbers if not isinstance(frames, Atoms) else frames.numbers)
        self.numbers_ = numbers
        self.permutations_ = self._permutation_group(numbers, pos[0])
        self._perms = Permutations(self.permutations_, len(numbers))
        self.positions_, self.energies_, self.forces_ = pos, energies, forces
        self.n_train_ = len(pos)
        self.descriptor_weights_ = self._descriptor_weights(pos)
        self.feature_weights_ = self.descriptor_weights_  # ARD folds the relative length-scales in after tuning
        labels, names = descriptor_groups(numbers, self._perms, self.length_scales)
        self._groups, self.length_scale_groups_ = labels, names
        self._geo = Geometry.from_positions(pos, self.descriptor_weights_, self.descriptor_power)
        e_std = float(np.std(energies)) if np.std(energies) > 0 else 1.0
        self._scales = EnergyScale(float(np.mean(energies)), e_std)

    def fit(self, frames: Sequence[Atoms], y: None = None) -> "GPPotential":
        """Fit hyperparameters by the marginal likelihood and solve for the weights.

        ``frames``: configurations of one molecule (same atoms in the same order) carrying energy
        (eV) and forces (eV/Å) labels. Returns ``self``.
        """
        self._validate_params()
        t_start = time.perf_counter()
        pos, energies, forces = frames_to_arrays(frames, labels=True, source="training frames")
        n = len(pos)
        if n < 2:
            raise ValueError(f"training frames: got {n} configuration; at least 2 are needed to fit the hyperparameters")
        self._set_training_data(frames, pos, energies, forces)
        m = self._geo.n_outputs
        self.solver_ = choose_solver(self.solver, n, m, len(self._perms), parse_memory(self.max_memory))
        rng = np.random.default_rng(self.seed)
        sub = np.sort(rng.choice(n, size=min(self.n_tune, n), replace=False))
        self.tune_indices_ = sub
        self._tune(self._geo[torch.as_tensor(sub)], energies[sub], forces[sub], float(self.noise_floor))
        if self.feature_weights_ is not self.descriptor_weights_:
            self._geo = Geometry.from_positions(pos, self.feature_weights_, self.descriptor_power)
        self.tune_time_ = time.perf_counter() - t_start
        min_noise = self.min_noise if self.min_noise is not None else (0.0 if self.solver_ == "cholesky" else CG_MIN_NOISE)
        self.tuned_noise_ = (self.energy_noise_, self.force_noise_)
        self.energy_noise_, self.force_noise_ = max(self.energy_noise_, min_noise), max(self.force_noise_, min_noise)
        self._solve_weights(reprofile=True)
        self.fit_time_ = time.perf_counter() - t_start
        self.std_scale_ = {"energy": 1.0, "forces": 1.0}
        return self

    def _descriptor_weights(self, pos: np.ndarray) -> np.ndarray:
        """Per-descriptor weights ``1 / std`` over the training set, averaged on permutation orbits, RMS 1.

        Standardising the inverse distances lets stiff (bonded, small-amplitude) pairs and soft
        (non-bonded) pairs count alike in the kernel distance; it is fixed from the training data,
        not a hyperparameter. Weights constant on orbits keep the symmetrised kernel invariant.
        """
        n_desc = len(self._perms.idx[0])
        if not self.standardize or len(pos) < 3:
            return np.ones(n_desc)
        x, _ = inverse_distances(pos, jacobian=False, power=self.descriptor_power)
        sd = x.std(0).numpy()
        sd = np.where(sd > 1e-12, sd, np.nan)
        w = 1.0 / sd
        w = np.where(np.isfinite(w), w, np.nanmax(w) if np.isfinite(w).any() else 1.0)
        w = np.mean(w[self._perms.idx.numpy()], axis=0)
        return w / np.sqrt(np.mean(w**2))

    def _tune(self, geo: Geometry, energies: np.ndarray, forces: np.ndarray, noise_floor: float) -> None:
        y = torch.as_tensor(interleave_targets(energies, forces))
        ard = len(self.length_scale_groups_) > 1
        groups, names = (self._groups, self.length_scale_groups_) if ard else (None, None)
        res = tune_hyperparameters(geo, self._perms, y, forces, self.kernel, self.n_scales, noise_floor,
                                   self.optimizer, self.max_iter, progress=self._show(), groups=groups,
                                   group_names=names)
        sc = self._scales
        self.nlml_shared_ = res.nlml_isotropic
        self.converged_, self.optimizer_message_ = res.converged, res.message
        self.init_candidates_, self._trace, self.nlml_ = res.init_candidates, res.trace, res.nlml
        self.lengthscales_, self.variance_fractions_ = res.lengthscales, res.fractions
        self.group_lengthscales_ = None
        if ard:  # res.lengthscales are the component factors (1, r_2, ...); fold l_g / l_ref into the weights
            self.group_lengthscales_ = res.group_lengthscales
            self.feature_weights_, l_ref = ard_feature_weights(self.descriptor_weights_, self._groups,
                                                               res.group_lengthscales)
            self.lengthscales_ = l_ref * res.lengthscales
        self.lengthscale_, self.signal_std_ = float(self.lengthscales_[0]), res.signal_std
        self.energy_noise_, self.force_noise_, self.mean_energy_ = res.energy_noise, res.force_noise, res.mean_energy
        nk = len(res.phi) - 2
        self.theta_ = np.concatenate([res.phi[:nk], [math.log(res.signal_std), math.log(res.energy_noise),
                                                     math.log(res.force_noise), (res.mean_energy - sc.e_mean) / sc.e_std]])
        self.laplace_ = None
        if self.laplace:
            gt = torch.as_tensor(self._groups) if ard else None
            r2 = (group_squared_distances(geo, geo, self._perms, gt, len(names)) if ard
                  else squared_distances(geo, geo, self._perms))
            H = nlml_hessian(self.theta_, geo, self._perms, y, self.kernel, sc, r2, groups=gt)
            self.laplace_ = LaplaceResult(self.theta_, H, sc.e_std, sc.e_mean, res.at_bound,
                                          param_names(self.n_scales, names))
            if not self.laplace_.positive_definite:
                warnings.warn(
                    "the NLML Hessian at the optimum is not positive definite (flat or not a minimum: eigenvalues "
                    f"{np.array2string(self.laplace_.eigenvalues, precision=3)}); no Laplace standard error for "
                    f"{self.laplace_.unidentified}, the others are conditional on them", HyperparameterWarning,
                    stacklevel=3)
        # a noise at its floor is expected for noiseless reference data (DFT/xTB); a length-scale at a bound means
        # the data do not determine it
        flagged = [b for b in res.at_bound if b.startswith("log_lengthscale")]
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
        """Per-pair kernel coefficients ``(P, na, nb)`` at the current hyperparameters."""
        if gb is self._geo:  # against the training set: one product with the cached Q_p x_b
            XQ = self._permuted_training().XQ
            r2 = ((ga.X**2).sum(1)[None, :, None] + (gb.X**2).sum(1)[None, None, :]
                  - 2.0 * torch.einsum("td,pnd->ptn", ga.X, XQ)).clamp_min(0.0)
        else:
            r2 = squared_distances(ga, gb, self._perms)
        return mixture_coefficients(r2, torch.as_tensor(self.lengthscales_, dtype=torch.float64),
                                    torch.as_tensor(self.variance_fractions_, dtype=torch.float64),
                                    torch.tensor(self.signal_std_**2, dtype=torch.float64), self.kernel)

    def _permuted_training(self) -> PermutedTraining:
        pt = getattr(self, "_pt", None)
        if pt is None or pt.geo is not self._geo:
            pt = self._pt = PermutedTraining(self._geo, self._perms)
        return pt

    def _covariance(self) -> TrainingCovariance:
        n, m = len(self._geo), self._geo.n_outputs
        noise = np.tile(np.r_[self.energy_noise_**2, np.full(m - 1, self.force_noise_**2)], n)
        return TrainingCovariance(self._geo, self._perms, self._coeffs, noise)

    def _make_solver(self):
        if self.solver_ == "cholesky":
            return CholeskySolver(self.chunk_size, progress=self._show())
        return CGSolver(parse_memory(self.max_memory), tol=self.cg_tol, max_iter=self.cg_max_iter,
                        n_pivots=self.n_pivots, progress=self._show())

    def _factorize(self) -> None:
        """Build the solver for the current hyperparameters (``_factor_scale = 1``)."""
        solver = self._make_solver()
        jitter = getattr(self, "jitter_rel_", JITTER)
        used = solver.factorize(self._covariance(), jitter * self.signal_std_**2 * self.variance_fractions_[0])
        self.jitter_rel_ = used / (self.signal_std_**2 * self.variance_fractions_[0])
        self._solver, self._factor_scale = solver, 1.0

    def _solve_weights(self, reprofile: bool = False) -> None:
        """Factorise and solve for the weights ``alpha``.

        With ``reprofile`` (end of :meth:`fit`) the signal variance is re-estimated in closed form on
        *all* training data at the tuned length-scales and noise-to-signal ratios (its exact
        marginal-likelihood maximiser given them): ``s^2 <- s^2 r^T K^-1 r / n``, ``r = y - mu e``; the
        constant mean ``mu`` is the GLS estimate on the tuning subset (one solve with all data, not two).
        The solver is kept and rescaled implicitly
        (``_factor_scale``).
        """
        self._factorize()
        n, m = len(self._geo), self._geo.n_outputs
        y = interleave_targets(self.energies_, self.forces_)
        e = energy_selector(n, m)
        if not reprofile:
            self.alpha_ = self._solver.solve((y - self.mean_energy_ * e)[:, None])[:, 0]
            return
        # the constant mean stays the tuning subset's GLS estimate: one solve (a CG solve per right-hand side is
        # costly), and both solvers give the same model
        mu = self.mean_energy_
        alpha = self._solver.solve((y - mu * e)[:, None])[:, 0]
        c = float((y - mu * e) @ alpha) / (n * m)
        self.mean_energy_ = mu
        self.signal_std_ *= math.sqrt(c)
        self.energy_noise_ *= math.sqrt(c)
        self.force_noise_ *= math.sqrt(c)
        self.alpha_ = alpha / c
        self._factor_scale = c  # the solver's covariance is K / c
        self.solver_info_ = self._solver.info()

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "alpha_"):
            raise RuntimeError("this GPPotential is not fitted yet; call fit(frames) first")

    def predict(self, frames: Sequence[Atoms], return_std: bool = True, include_noise: bool = True,
                batch_size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Predict energies (eV) and forces (eV/Å) with predictive standard deviations.

        Forces are exactly minus the gradient of the predicted energy (both come from the same
        kernel derivatives). ``include_noise`` adds the fitted noise variance to the predictive
        variance (the distribution of a new reference label); ``False`` gives the latent (model)
        uncertainty. Standard deviations include the calibration factors ``std_scale_``.

        Returns ``energies (n,)``, ``forces (n, n_atoms, 3)``, ``energy_std (n,)``,
        ``forces_std (n, n_atoms, 3)`` (the last two ``None`` if ``return_std=False``).
        """
        self._check_fitted()
        pos, _, _ = frames_to_arrays(frames, labels=False, numbers=self.numbers_, source="prediction frames")
        return self.predict_positions(pos, return_std=return_std, include_noise=include_noise, batch_size=batch_size)

    def predict_positions(self, positions: np.ndarray, return_std: bool = True, include_noise: bool = True,
                          batch_size: int = 16, calibrated: bool = True):
        """Like :meth:`predict` from an ``(n, n_atoms, 3)`` array of positions (Å).

        ``calibrated=False`` leaves out the calibration factors (the raw marginal-likelihood stds).
        """
        self._check_fitted()
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim == 2:
            pos = pos[None]
        a = len(self.numbers_)
        if pos.shape[1:] != (a, 3):
            raise ValueError(f"positions must have shape (n, {a}, 3), got {pos.shape}")
        bad = np.nonzero(~np.isfinite(pos).all(axis=(1, 2)))[0]
        if len(bad):
            raise ValueError(f"prediction frames: frame {int(bad[0])} has non-finite (NaN/inf) positions")
        if return_std and getattr(self, "_solver", None) is None:
            self._factorize()
        E, F, Es, Fs = [], [], [], []
        for b0 in range(0, len(pos), batch_size):
            gt = Geometry.from_positions(pos[b0 : b0 + batch_size], self.feature_weights_, self.descriptor_power)
            coeffs = self._coeffs(gt, self._geo)
            e_mean, f_mean = self._posterior_mean(gt, coeffs)
            E.append(e_mean.numpy() + self.mean_energy_)
            F.append(f_mean.numpy().reshape(len(gt), a, 3))
            if return_std:
                sd = self._predictive_std(gt, include_noise, calibrated)
                Es.append(sd[:, 0])
                Fs.append(sd[:, 1:].reshape(len(gt), a, 3))
        if not return_std:
            return np.concatenate(E), np.concatenate(F), None, None
        return np.concatenate(E), np.concatenate(F), np.concatenate(Es), np.concatenate(Fs)

    def _predictive_std(self, gt: Geometry, include_noise: bool, calibrated: bool) -> np.ndarray:
        """``(nt, M)`` standard deviations: prior minus the solver's variance reduction (+ noise), calibrated."""
        cov = self._covariance()
        var = prior_diagonal(gt, cov) - self._solver.variance_reduction(gt, cov) / self._factor_scale
        var = np.clip(var, 0.0, None)
        m = gt.n_outputs
        if include_noise:
            var = var + np.r_[self.energy_noise_**2, np.full(m - 1, self.force_noise_**2)]
        sd = np.sqrt(var)
        if calibrated:
            scale = getattr(self, "std_scale_", None) or {"energy": 1.0, "forces": 1.0}
            sd[:, 0] *= scale["energy"]
            sd[:, 1:] *= scale["forces"]
        return sd

    def _posterior_mean(self, gt: Geometry, coeffs) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean energies ``(nt,)`` (without the constant) and forces ``(nt, 3A)``: ``K(x, X) alpha``
        matrix-free (:func:`sciml.gp.kernel_products.kernel_times`), ``O(N P D)`` per structure."""
        pt = self._permuted_training()
        cache = getattr(self, "_mean_cache", None)
        if cache is None or cache[0] is not self.alpha_:
            al = torch.from_numpy(np.ascontiguousarray(self.alpha_)).reshape(len(self._geo), -1, 1)
            cache = self._mean_cache = (self.alpha_, pt.weights(al))
        e, f = kernel_times(gt, coeffs, pt, cache[1])
        return e[:, 0], f[:, :, 0]

    # ------------------------------------------------------------------ calibration and scoring
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
        pos, e_ref, f_ref = frames_to_arrays(frames, labels=True, numbers=self.numbers_, source="calibration frames")
        overlap = shared_configurations(pos, self.positions_)
        if overlap:
            raise ValueError(f"calibration frames {overlap[:5]} are training configurations; calibrate on held-out data")
        E, F, Es, Fs = self.predict_positions(pos, return_std=True, include_noise=True, calibrated=False)
        z = norm.ppf(0.5 + coverage / 2)
        re = np.abs(E - e_ref) / Es
        rf = (np.abs(F - f_ref) / Fs).ravel()
        out = {"energy_coverage_before": float(np.mean(re <= z)), "forces_coverage_before": float(np.mean(rf <= z))}
        if len(pos) < 20:
            warnings.warn(f"calibrating on only {len(pos)} frames: the factors are rough", stacklevel=2)
        self.std_scale_ = {"energy": float(np.quantile(re, coverage) / z), "forces": float(np.quantile(rf, coverage) / z)}
        self.calibration_ = {**self.std_scale_, **out, "n_frames": len(pos), "coverage": float(coverage)}
        return {**self.std_scale_, **out}

    def score(self, frames: Sequence[Atoms]) -> float:
        """Coefficient of determination R^2 of the force components on labelled frames (scikit-learn's
        regressor convention: a float, 1 is perfect). For every metric use :func:`sciml.gp.evaluate`."""
        self._check_fitted()
        pos, _, f_ref = frames_to_arrays(frames, labels=True, numbers=self.numbers_, source="scored frames")
        _, F, _, _ = self.predict_positions(pos, return_std=False)
        return float(1.0 - np.sum((F - f_ref) ** 2) / np.sum((f_ref - f_ref.mean()) ** 2))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, store_factor: bool = False) -> Path:
        """Save what prediction needs to one file (atomic); see :mod:`sciml.gp.model_file`.

        The solver's factor is stored only with ``store_factor=True`` (``8 (N M)^2`` bytes for
        Cholesky); otherwise it is rebuilt on the first uncertainty prediction after :meth:`load`.
        """
        self._check_fitted()
        return save_global(self, path, store_factor=store_factor)

    @classmethod
    def load(cls, path: str | Path) -> "GPPotential":
        """Load a model written by :meth:`save`."""
        return load_global(cls, path)
