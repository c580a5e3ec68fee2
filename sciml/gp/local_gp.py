"""Local-environment sparse GP potential for materials (:class:`LocalGPPotential`).

The model
---------
``E(frame) = sum_i e0[Z_i] + sum_i e(x_i) + sum_{i<j} f_{Z_i Z_j}(r_ij)``: per-element reference energies ``e0`` (least
squares on the training energies, as GAP's ``e0``) plus a Gaussian-process local energy of
each atom's environment within ``cutoff`` (SOAP power spectrum, :mod:`sciml.gp.soap`;
kernel ``sigma^2 exp(-sum_d w_d (x_d - x'_d)^2 / (2 l^2))`` between environments with the same
centre element, ``w_d = 1 / (D var_d)`` from the training environments (``descriptor_weights_``),
:mod:`sciml.gp.sparse_features`), plus (``pair_term=True``, the default) a two-body GP term: one
function of the distance per pair of elements (:mod:`sciml.gp.pair_term`, GAP's ``distance_2b``),
its prior std ``pair_signal_std_`` and length-scale ``pair_lengthscale_`` (Å) by marginal likelihood.
Forces and stress are the exact derivatives of the predicted energy (autograd through the
descriptor and the pair distances, mapped to atoms and strain).

Why the pair term: without it the model could not learn the seven-element EMT alloys at all
(test force MAE 300-600 meV/Å, training forces ~300 meV/Å even with every environment inducing;
a three-element Morse pair potential: 64 % of the mean |F|). Multi-species power spectra of
different compositions are nearly orthogonal, so the environments are far apart in the kernel
and the DTC basis ``k(., u_m)`` (``m`` parameters for ``3 n_env`` force components) cannot carry
the force field; the per-pair-type functions share data across all compositions.

Training targets energies, forces and (periodic frames) stress with a projected-process /
DTC sparse GP on ``n_sparse`` inducing environments (:mod:`sciml.gp.sparse`):

0. per-element energies: ``e0`` by ridge regression of the energies on the element counts, towards
   the mean energy per atom (combinations the training compositions do not determine fall back
   to it), as the prior mean; the GP adds a per-element constant with prior variance
   ``100 sigma^2`` (extra columns of the design matrix: atom counts in energy rows, zero in force
   and stress rows), so that the constants are estimated jointly with the local energies -- with
   ``e0`` fixed beforehand, multi-element fits had to absorb the mismatch as energy noise;
1. inducing environments: k-means++ seeding (D^2 sampling) on the normalised descriptors,
   per centre element in proportion to its share of the training environments (seeded);
2. hyperparameters -- length-scale ``l``, signal ``sigma``, pair length-scale and pair signal (with the
   pair term), energy noise (eV per sqrt(atom), at most 50 meV), force noise (eV/Å), stress noise
   (eV/Å^3) -- by L-BFGS-B on the exact sparse negative log
   marginal likelihood and its exact autograd gradient, first all of them on a seeded subset of
   ``n_tune`` frames with ``n_sparse_tune`` inducing environments of their own (the
   length-scale-dependent design rows of the subset are kept, so every evaluation is cheap),
   then ``sigma`` and the noises again on all training frames at that length-scale (from the
   ``m x m`` sufficient statistics; ``l`` would need all design rows rebuilt per evaluation);
3. Laplace standard errors from the exact Hessian of the NLML: ``laplace_`` (all training
   frames; ``sigma`` and noises, conditional on ``l``) and ``tune_laplace_`` (the subset; all five).

Memory: the design rows of one batch of frames (``batch_atoms`` atoms) at a time, ``O(n_env_batch m)``,
plus the ``m x m`` statistics and the training descriptors (``n_env x D``, for the selection):
never ``N^2``. Cost: ``O(n_pairs m F)`` for the rows (F = (l_max+1) n_max K), ``O(m^3)`` per
likelihood evaluation.

Uncertainty: per atom the DTC standard deviation of the local energy, per frame that of the
total energy, and for forces the projected part (see :mod:`sciml.gp.sparse`); with
``include_noise`` the fitted noise is added. :meth:`LocalGPPotential.calibrate` rescales them on
held-out frames (variance scaling to 95 % coverage) and refuses training frames.

Example
-------
>>> from sciml.datasets import load_alloys
>>> from sciml.atoms import split_by_trajectory
>>> train, valid, test = split_by_trajectory(load_alloys(), 100, 40, seed=0)   # doctest: +SKIP
>>> gp = LocalGPPotential(n_sparse=400).fit(train)                           # doctest: +SKIP
>>> gp.calibrate(valid)                                                       # doctest: +SKIP
>>> pred = gp.predict(test[:5], return_std=True)                             # doctest: +SKIP
>>> pred.energy, pred.forces[0].shape, pred.local_energy_std[0].shape         # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from ..metrics import error_metrics, uncertainty_metrics
from .laplace import LaplaceResult
from .pair_term import PairTerm
from .soap import SOAPDescriptor, build_environments, check_frames, pair_gradient_to_forces_stress
from .sparse import SufficientStats, kmeanspp, posterior, sparse_nlml
from .sparse_features import VOIGT, assemble_rows, kernel0, prepare_batch, raw_rows, stress_rows

__all__ = ["LocalGPPotential", "LocalGPPrediction", "evaluate_local", "FORMAT", "DESCRIPTOR_PRESETS"]

FORMAT = "sciml.gp.LocalGPPotential/1"
#: Named descriptor settings (``sciml gp train --kind local --descriptor NAME``): ``"soap"`` the defaults
#: (unit-length SOAP, l <= 4); ``"radial"`` the choice for metals made on the alloy set's train/validation
#: frames (workflows/benchmarks/local_gp_alloy_tuning.py): unnormalised products of species-resolved
#: radial densities (l = 0, 6 radial functions) and an energy noise of at most 10 meV/sqrt(atom).
DESCRIPTOR_PRESETS = {"soap": {}, "radial": dict(normalise=False, l_max=0, n_max=6, energy_noise_max=0.01)}
_TARGETS = ("energy", "forces", "stress")
#: Prior variance of the per-element energy constants, relative to sigma^2 (see "Per-element constants").
_CONST_VAR = 100.0
#: Initial pair length-scale (Å) and pair-energy prior std (eV) of the two-body term; upper bound of the former.
_PAIR_THETA0, _PAIR_RHO0, _PAIR_THETA_MAX = 0.5, 0.3, 3.0
#: Floor of the per-component descriptor variance, relative to the median (weights 1 / (D var)).
_VAR_FLOOR = 1e-3
#: Upper bound of the length-scale (standardised units, where random environments of one element are
#: ~sqrt(2) apart): beyond it the kernel is nearly linear and unseen environments are extrapolated
#: linearly instead of reverting to the per-element energy.
_MAX_LENGTHSCALE = float(__import__("os").environ.get("SCIML_LOCALGP_MAX_LS", "100"))
#: Lower bound of the SOAP length-scale (standardised units). Below it the SOAP part stops generalising and
#: memorises per-environment energies: on 20 alloy training frames the likelihood chose 0.04, fitted the
#: training energies to 0.005 meV/atom and missed validation energies by 160 meV/atom (49 with the bound).
_MIN_LENGTHSCALE = 0.5
#: Bounds of the (log) noise stds: energy eV/sqrt(atom), forces eV/Å, stress eV/Å^3. The lower bounds
#: (1e-4 eV, 1 meV/Å, 1e-5 eV/Å^3 = 1.6 MPa) are far below the model error of any local GP of
#: deterministic reference labels and keep the whitened system numerically positive definite.
#: The energy noise is capped at 50 meV/sqrt(atom): with thousands of force components and a few dozen
#: energies, the likelihood otherwise explains the energies away as noise (5-40 eV/sqrt(atom) on the alloy set,
#: energies off by 0.5-5 eV/atom) -- GAP fixes its energy sigma for the same reason.
_NOISE_BOUNDS = {"energy": (np.log(1e-3), np.log(5e-2)), "forces": (np.log(2e-3), np.log(1e2)),
                 "stress": (np.log(5e-5), np.log(1e1))}


def frame_key(a: Atoms) -> str:
    """A hash of numbers, positions (1e-6 Å) and cell: identifies a training frame."""
    h = hashlib.sha1()
    h.update(np.asarray(a.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(a.positions, dtype=float), 6).tobytes())
    h.update(np.round(np.asarray(a.cell.array, dtype=float), 6).tobytes())
    return h.hexdigest()


class LocalGPPrediction(dict):
    """Predictions for a list of frames (ASE units: eV, eV/Å, eV/Å^3); a dict with attribute access.

    ``energy`` (n,), ``forces`` list of (n_atoms_k, 3), ``stress`` list of Voigt 6-vectors (``None``
    for non-periodic frames), ``local_energy`` list of (n_atoms_k,); with ``return_std``:
    ``energy_std`` (n,), ``forces_std`` list of (n_atoms_k, 3), ``local_energy_std`` list of
    (n_atoms_k,) (latent, per atom), else ``None``.
    """

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _labels(frames: Sequence[Atoms], targets: Sequence[str], source: str) -> dict:
    from sciml.atoms import frame_labels

    out = {t: [] for t in targets}
    for k, a in enumerate(frames):
        lab = frame_labels(a)
        for t in targets:
            v = lab[t]
            if v is None:
                raise ValueError(f"{source}[{k}] has no {t} label, but {t} is a training target "
                                 f"(pass targets without {t!r}, or label the frame)")
            v = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{source}[{k}] has a non-finite {t} label")
            if t == "forces" and v.shape != (len(a), 3):
                raise ValueError(f"{source}[{k}]: forces have shape {v.shape}, expected {(len(a), 3)}")
            if t == "stress":
                if not a.pbc.all():
                    raise ValueError(f"{source}[{k}] is not periodic in all directions: stress is not a target for it")
                if v.shape != (6,):
                    raise ValueError(f"{source}[{k}]: stress has shape {v.shape}, expected Voigt (6,)")
            out[t].append(v)
    return out


def _batches(frames: Sequence[Atoms], batch_atoms: int) -> list[list[int]]:
    out, cur, n = [], [], 0
    for k, a in enumerate(frames):
        if cur and n + len(a) > batch_atoms:
            out.append(cur)
            cur, n = [], 0
        cur.append(k)
        n += len(a)
    if cur:
        out.append(cur)
    return out


class LocalGPPotential:
    """Sparse GP on local atomic environments: energies, forces, stress and their uncertainties.

    Parameters
    ----------
    cutoff, n_max, l_max, species_channels:
        SOAP descriptor (Å; radial functions; largest angular momentum; ``None`` = one channel
        per element, ``C`` = compressed to C channels), see :class:`~sciml.gp.soap.SOAPDescriptor`.
    kernel, zeta:
        ``"se"`` (default): squared exponential on the standardised power spectrum, length-scale by
        marginal likelihood; ``"dot"``: GAP/FLARE's ``(x . x')^zeta`` on the normalised power spectrum
        (integer ``zeta``; no length-scale, signal and noises by marginal likelihood).
    n_sparse:
        Inducing environments ``m`` (capped at the number of training environments).
    targets:
        ``"auto"`` (energies, forces if every frame has them, stress if every frame is periodic
        with stress) or a list out of ``"energy", "forces", "stress"``.
    n_tune, n_sparse_tune:
        Frames and inducing environments of the subset on which the length-scale is tuned.
    batch_atoms:
        Atoms per batch of design rows (memory).
    seed, progress, max_iter:
        Seed of the subset and inducing selection; progress bars; L-BFGS-B iterations.
    pair_term, pair_spacing:
        Add the two-body GP term (:mod:`sciml.gp.pair_term`) with inducing distances every
        ``pair_spacing`` Å from just below the shortest training distance to ``cutoff``.
    normalise:
        Compare unit-length power spectra (``True``, GAP/FLARE) or the power spectra themselves
        (``False``: the kernel also sees the overall neighbour density, what the embedding energy of
        metals depends on; with ``l_max=0`` the descriptor is the products of species-resolved
        radial densities). ``kernel="dot"`` needs ``True``.
    energy_noise_max:
        Upper bound of the energy noise std (eV per sqrt(atom)) in the marginal-likelihood fit
        (see ``_NOISE_BOUNDS``; GAP fixes its energy sigma for the same reason).

    Attributes (after ``fit``)
    --------------------------
    ``species_``, ``e0_`` (eV per element), ``lengthscale_``, ``signal_std_`` (eV),
    ``noise_`` (dict: energy eV/sqrt(atom), forces eV/Å, stress eV/Å^3), ``inducing_`` (m, D),
    ``inducing_species_``, ``weights_``, ``nlml_``, ``laplace_``, ``tune_laplace_``,
    ``n_train_``, ``n_envs_``, ``targets_``, ``fit_time_``, ``std_scale_``, ``pair_`` (the
    :class:`~sciml.gp.pair_term.PairTerm` or ``None``), ``pair_lengthscale_`` (Å), ``pair_signal_std_`` (eV).
    """

    def __init__(self, cutoff: float = 5.0, n_max: int = 5, l_max: int = 4, species_channels: int | None = None,
                 kernel: str = "se", zeta: int = 2, n_sparse: int = 1000, targets: str | Sequence[str] = "auto", n_tune: int = 20,
                 n_sparse_tune: int = 300, batch_atoms: int = 600, seed: int = 0, progress: bool = True,
                 max_iter: int = 100, pair_term: bool = True, pair_spacing: float = 0.2, normalise: bool = True,
                 energy_noise_max: float = 0.05):
        self.cutoff = cutoff
        self.energy_noise_max = energy_noise_max
        self.normalise = normalise
        self.pair_term = pair_term
        self.pair_spacing = pair_spacing
        self.n_max = n_max
        self.l_max = l_max
        self.species_channels = species_channels
        self.kernel = kernel
        self.zeta = zeta
        self.n_sparse = n_sparse
        self.targets = targets
        self.n_tune = n_tune
        self.n_sparse_tune = n_sparse_tune
        self.batch_atoms = batch_atoms
        self.seed = seed
        self.progress = progress
        self.max_iter = max_iter

    # ------------------------------------------------------------------ sklearn plumbing
    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in ("cutoff", "n_max", "l_max", "species_channels", "kernel", "zeta",
                                              "n_sparse", "targets",
                                              "n_tune", "n_sparse_tune", "batch_atoms", "seed", "progress",
                                              "max_iter", "pair_term", "pair_spacing", "normalise",
                                              "energy_noise_max")}

    def set_params(self, **params) -> "LocalGPPotential":
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"unknown parameter {k!r} for LocalGPPotential")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"LocalGPPotential(cutoff={self.cutoff}, n_sparse={self.n_sparse})"

    def _validate_params(self) -> None:
        for name in ("n_sparse", "n_tune", "n_sparse_tune", "batch_atoms", "max_iter", "n_max"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.kernel not in ("se", "dot"):
            raise ValueError(f"kernel must be 'se' or 'dot', got {self.kernel!r}")
        if not (isinstance(self.energy_noise_max, (int, float)) and self.energy_noise_max > 1e-3):
            raise ValueError(f"energy_noise_max must be a number > 1e-3 (eV per sqrt(atom)), got {self.energy_noise_max!r}")
        if self.kernel == "dot" and not self.normalise:
            raise ValueError("kernel='dot' compares unit-length power spectra: it needs normalise=True")
        if self.kernel == "dot" and (not isinstance(self.zeta, (int, np.integer)) or self.zeta < 1):
            raise ValueError(f"zeta must be a positive integer for kernel='dot', got {self.zeta!r}")
        if not (isinstance(self.cutoff, (int, float)) and self.cutoff > 0):
            raise ValueError(f"cutoff must be a positive number (Å), got {self.cutoff!r}")

    def _show(self) -> bool:
        from sciml._runtime import quiet_progress

        return bool(self.progress) and not quiet_progress()

    def _resolve_targets(self, frames: Sequence[Atoms]) -> tuple[str, ...]:
        from sciml.atoms import frame_labels

        if self.targets == "auto":
            labs = [frame_labels(a) for a in frames]
            t = ["energy"]
            if all(lab["forces"] is not None for lab in labs):
                t.append("forces")
            if all(lab["stress"] is not None and a.pbc.all() for lab, a in zip(labs, frames)):
                t.append("stress")
            return tuple(t)
        t = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        bad = [x for x in t if x not in _TARGETS]
        if bad or not t:
            raise ValueError(f"targets must be 'auto' or a subset of {_TARGETS}, got {self.targets!r}")
        if "energy" not in t:
            raise ValueError("targets must include 'energy' (the per-element reference energies are fitted to it)")
        return tuple(x for x in _TARGETS if x in t)

    # ------------------------------------------------------------------ fit
    def fit(self, frames: Sequence[Atoms], y: None = None) -> "LocalGPPotential":
        """Fit to labelled frames (``ase.Atoms`` with energy, forces and optionally stress); returns self."""
        t0 = time.perf_counter()
        self._validate_params()
        frames = list(frames)
        if len(frames) < 2:
            raise ValueError(f"need at least 2 training frames, got {len(frames)}")
        check_frames(frames, source="frames")
        self.targets_ = self._resolve_targets(frames)
        labels = _labels(frames, self.targets_, "frames")
        self.species_ = sorted(set(int(z) for a in frames for z in a.numbers))
        self.descriptor_ = SOAPDescriptor(self.species_, self.cutoff, self.n_max, self.l_max,
                                          self.species_channels, self.seed, normalise=self.normalise)
        self._fit_offsets(frames, np.asarray(labels["energy"]))
        rng = np.random.default_rng(self.seed)
        X, Xs = self._descriptors(frames)
        var = X.var(axis=0)
        floor = _VAR_FLOOR * float(np.median(var[var > 0])) if np.any(var > 0) else 1.0
        self.descriptor_weights_ = torch.as_tensor(1.0 / (X.shape[1] * np.maximum(var, floor))) \
            if self.kernel == "se" else None
        self.n_train_, self.n_envs_ = len(frames), len(X)
        self.pair_ = self._make_pair_term(frames)
        m = min(int(self.n_sparse), len(X))
        idx = self._select(X, Xs, m, rng)
        self.inducing_ = torch.as_tensor(X[idx])
        self.inducing_species_ = torch.as_tensor(Xs[idx])
        self.train_keys_ = [frame_key(a) for a in frames]
        t1 = time.perf_counter()
        if self.kernel == "se":
            self._tune(frames, labels, rng)
        else:                      # dot product: no length-scale; signal and noises on all frames below
            init = self._initial(labels, None)
            self.lengthscale_, self.tune_laplace_, self.tune_nlml_ = float("nan"), None, float("nan")
            self.tune_indices_ = np.zeros(0, dtype=np.int64)
            self.pair_lengthscale_ = _PAIR_THETA0 if self.pair_ is not None else float("nan")
            self._tune_x = np.log([1.0, init["sigma"]] + ([init["pair"]] if self.pair_ is not None else [])
                                  + [init[t] for t in self.targets_])
        self.tune_time_ = time.perf_counter() - t1
        stats = self._statistics(frames, labels, self.inducing_, self.inducing_species_, self.lengthscale_)
        self._refit_on_all(stats, self._tune_x[1:])
        self.std_scale_ = {"energy": 1.0, "forces": 1.0}
        self.fit_time_ = time.perf_counter() - t0
        return self

    def refit(self, frames: Sequence[Atoms], add_inducing: Sequence[tuple[int, Sequence[int]]] = (),
              retune: bool = False) -> "LocalGPPotential":
        """Refit on ``frames`` (the full training set, e.g. grown by on-the-fly learning), keeping the
        inducing set and adding the environments ``add_inducing`` = ``[(frame index, atom indices), ...]``.

        ``retune``: also re-optimise all hyperparameters (subset NLML, then signal and noises on all
        frames); otherwise the length-scale is kept and only the signal and noise stds are refitted
        (cheap: ``O(m^3)`` per evaluation on the statistics). Returns self.
        """
        self._check_fitted()
        t0 = time.perf_counter()
        frames = list(frames)
        check_frames(frames, self.species_, source="frames")
        labels = _labels(frames, self.targets_, "frames")
        self._fit_offsets(frames, np.asarray(labels["energy"]))
        U, Us = [self.inducing_], [self.inducing_species_]
        for k, atoms_idx in add_inducing:
            if not 0 <= int(k) < len(frames):
                raise ValueError(f"add_inducing: frame index {k} out of range for {len(frames)} frames")
            X, S = self.descriptors(frames[int(k)])
            sel = np.asarray(atoms_idx, dtype=np.int64)
            U.append(torch.as_tensor(X[sel]))
            Us.append(torch.as_tensor(S[sel]))
        self.inducing_, self.inducing_species_ = torch.cat(U), torch.cat(Us)
        self.train_keys_ = [frame_key(a) for a in frames]
        self.n_train_ = len(frames)
        self.n_envs_ = int(sum(len(a) for a in frames))
        x0 = np.log([self.signal_std_] + ([self.pair_signal_std_] if self.pair_ is not None else [])
                    + [self.noise_[t] for t in self.targets_])
        if retune and self.kernel == "se":
            self._tune(frames, labels, np.random.default_rng(self.seed + self.n_train_))
            x0 = self._tune_x[1:]
        stats = self._statistics(frames, labels, self.inducing_, self.inducing_species_, self.lengthscale_)
        self._refit_on_all(stats, x0)
        self.fit_time_ = time.perf_counter() - t0
        return self

    def descriptors(self, frames: Sequence[Atoms] | Atoms) -> tuple[np.ndarray, np.ndarray]:
        """Normalised SOAP descriptors ``(n_atoms, D)`` of every atom and the index of its element in ``species_``."""
        frames = [frames] if isinstance(frames, Atoms) else list(frames)
        check_frames(frames, self.species_, source="frames")
        return self._descriptors(frames)

    def _fit_offsets(self, frames: Sequence[Atoms], energies: np.ndarray) -> None:
        """Per-element energies by ridge regression towards the mean energy per atom: combinations of
        elements that the training compositions do not determine default to that mean."""
        counts = np.array([[np.sum(a.numbers == z) for z in self.species_] for a in frames], dtype=float)
        mean = energies.sum() / counts.sum()
        G = counts.T @ counts
        lam = 1e-6 * np.trace(G) / len(G)
        self.e0_ = np.linalg.solve(G + lam * np.eye(len(G)), counts.T @ energies + lam * mean)

    def _make_pair_term(self, frames: Sequence[Atoms]) -> PairTerm | None:
        """The pair-energy grid: from just below the shortest training distance to the cutoff."""
        if not self.pair_term:
            return None
        from ase.neighborlist import neighbor_list

        dmin = min(float(neighbor_list("d", a, self.cutoff).min(initial=self.cutoff)) for a in frames)
        r_min = max(0.5, np.floor((dmin - self.pair_spacing) / self.pair_spacing) * self.pair_spacing)
        return PairTerm(len(self.species_), self.cutoff, min(r_min, self.cutoff - 2 * self.pair_spacing),
                        self.pair_spacing)

    def _offset(self, numbers: np.ndarray) -> np.ndarray:
        lookup = {z: k for k, z in enumerate(self.species_)}
        return self.e0_[[lookup[int(z)] for z in numbers]]

    def _descriptors(self, frames: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray]:
        X, S = [], []
        with torch.no_grad():
            for b in _batches(frames, self.batch_atoms):
                env = build_environments([frames[k] for k in b], self.species_, self.cutoff)
                X.append(self.descriptor_.features(env.d, env).numpy())
                S.append(env.species.numpy())
        return np.concatenate(X), np.concatenate(S)

    def _select(self, X: np.ndarray, Xs: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
        """k-means++ per centre element, ``m`` in total in proportion to the element counts (each >= 1)."""
        species, counts = np.unique(Xs, return_counts=True)
        share = np.maximum(1, np.floor(m * counts / counts.sum())).astype(int)
        share = np.minimum(share, counts)
        while share.sum() < m and (share < counts).any():
            k = int(np.argmax(np.where(share < counts, counts / share, -1)))
            share[k] += 1
        out = []
        for s, k in zip(species, share):
            rows = np.nonzero(Xs == s)[0]
            out.append(rows[kmeanspp(X[rows], int(k), rng)])
        return np.concatenate(out)

    def _rows(self, frames: Sequence[Atoms], U, Us, lengthscale, keep_raw: bool = False):
        env = build_environments(frames, self.species_, self.cutoff)
        batch = prepare_batch(self.descriptor_, env)
        raw = raw_rows(self.descriptor_, batch, U, Us, forces=any(t != "energy" for t in self.targets_),
                       weights=self.descriptor_weights_)
        return raw

    def _add_rows(self, stats: SufficientStats, raw, lengthscale, frames: Sequence[Atoms], labels: dict,
                  idx: Sequence[int], theta=None) -> None:
        forces = any(t != "energy" for t in self.targets_)
        E, F, V = assemble_rows(raw, lengthscale, forces=forces, zeta=self._zeta())
        if self.pair_ is not None:
            E2, F2, V2 = self.pair_.rows(raw.batch.env, self.pair_lengthscale_ if theta is None else theta, forces)
            E = torch.cat([E, E2], dim=1)
            if forces:
                F, V = torch.cat([F, F2], dim=-1), torch.cat([V, V2], dim=-1)
        E, F, V = self._augment(E, F, V, [frames[k] for k in idx])
        n_at = torch.as_tensor([len(frames[k]) for k in idx], dtype=E.dtype)
        e_res = torch.as_tensor([labels["energy"][k] - self._offset(frames[k].numbers).sum() for k in idx])
        stats.add("energy", E / n_at.sqrt()[:, None], e_res / n_at.sqrt())
        stats.log_n_atoms += float(torch.log(n_at).sum())
        if "forces" in self.targets_:
            y = torch.as_tensor(np.concatenate([labels["forces"][k] for k in idx]).ravel())
            stats.add("forces", F.reshape(-1, F.shape[-1]), y)
        if "stress" in self.targets_:
            vols = [abs(np.linalg.det(frames[k].cell.array)) for k in idx]
            y = torch.as_tensor(np.concatenate([labels["stress"][k] for k in idx]))
            stats.add("stress", stress_rows(V, vols).reshape(-1, V.shape[-1]), y)

    def _augment(self, E, F, V, frames):
        """Append the per-element constant columns: atom counts in energy rows, zeros in force/stress rows."""
        counts = torch.as_tensor([[float(np.sum(a.numbers == z)) for z in self.species_] for a in frames],
                                 dtype=E.dtype)
        S = counts.shape[1]
        E = torch.cat([E, counts], dim=1)
        if F is not None:
            F = torch.cat([F, F.new_zeros(F.shape[:-1] + (S,))], dim=-1)
            V = torch.cat([V, V.new_zeros(V.shape[:-1] + (S,))], dim=-1)
        return E, F, V

    def _zeta(self) -> int | None:
        return int(self.zeta) if self.kernel == "dot" else None

    def _kernel_uu(self, U, Us, lengthscale, theta=None) -> torch.Tensor:
        """``K0`` of the inducing environments, block-diagonal with ``_CONST_VAR I`` for the element constants."""
        K = kernel0(U, Us, U, Us, lengthscale, self.descriptor_weights_, self._zeta())
        S = len(self.species_)
        blocks = [K] + ([self.pair_.kernel_uu(self.pair_lengthscale_ if theta is None else theta)]
                        if self.pair_ is not None else [])
        return torch.block_diag(*blocks, _CONST_VAR * torch.eye(S, dtype=K.dtype))

    def _col_scale(self, m: int, log_ratio) -> torch.Tensor:
        """Column scales: ``rho / sigma`` on the pair columns (their prior std relative to the signal), else 1."""
        ones = torch.ones(m, dtype=torch.float64)
        if self.pair_ is None:
            return ones
        return torch.where(self._pair_mask(m), torch.exp(torch.as_tensor(log_ratio, dtype=torch.float64)), ones)

    def _pair_mask(self, m: int) -> torch.Tensor:
        """Which of the ``m`` columns (inducing environments, pair grid, element constants) are pair columns."""
        mask = torch.zeros(m, dtype=torch.bool)
        if self.pair_ is not None:
            mask[m - len(self.species_) - self.pair_.n_columns: m - len(self.species_)] = True
        return mask

    def _statistics(self, frames, labels, U, Us, lengthscale) -> SufficientStats:
        from tqdm.auto import tqdm

        stats = SufficientStats(len(U) + (self.pair_.n_columns if self.pair_ is not None else 0) + len(self.species_))
        for b in tqdm(_batches(frames, self.batch_atoms), desc="local GP design rows", disable=not self._show()):
            raw = self._rows([frames[k] for k in b], U, Us, lengthscale)
            with torch.no_grad():
                self._add_rows(stats, raw, float(lengthscale), frames, labels, b)
        return stats

    def _initial(self, labels: dict, K0: torch.Tensor | None) -> dict:
        ell = 1.0
        if K0 is not None:
            off = K0[~torch.eye(len(K0), dtype=torch.bool)]
            off = off[off > 0]
            sq = -2.0 * torch.log(off.clamp(min=1e-300)) if len(off) else torch.tensor([1.0])
            ell = float(np.sqrt(max(float(torch.median(sq)), 1e-4)))
        init = dict(lengthscale=ell, sigma=1.0, energy=1e-2, pair_lengthscale=_PAIR_THETA0, pair=_PAIR_RHO0)
        if "forces" in labels:
            init["forces"] = 0.05 * float(np.std(np.concatenate([f.ravel() for f in labels["forces"]]))) + 1e-4
        if "stress" in labels:
            init["stress"] = 0.05 * float(np.std(np.concatenate(labels["stress"]))) + 1e-6
        return init

    def _tune(self, frames: Sequence[Atoms], labels: dict, rng: np.random.Generator) -> None:
        """All hyperparameters on a seeded subset (its own inducing set), exact NLML gradients."""
        n = min(int(self.n_tune), len(frames))
        sub = np.sort(rng.choice(len(frames), n, replace=False))
        self.tune_indices_ = sub
        fsub = [frames[k] for k in sub]
        X, Xs = self._descriptors(fsub)
        m = min(int(self.n_sparse_tune), len(X))
        idx = self._select(X, Xs, m, rng)
        U, Us = torch.as_tensor(X[idx]), torch.as_tensor(Xs[idx])
        raw = self._rows(fsub, U, Us, None)
        types = list(self.targets_)
        sub_labels = {t: [labels[t][k] for k in sub] for t in types}
        K0_unit = kernel0(U, Us, U, Us, 1.0, self.descriptor_weights_)
        init = self._initial(sub_labels, K0_unit)
        pair = self.pair_ is not None
        names = ["lengthscale", "signal_std"] + (["pair_lengthscale", "pair_signal_std"] if pair else []) \
            + [f"{t}_noise" for t in types]
        x0 = np.log([init["lengthscale"], init["sigma"]] + ([init["pair_lengthscale"], init["pair"]] if pair else [])
                    + [init[t] for t in types])
        bounds = [(np.log(_MIN_LENGTHSCALE), np.log(_MAX_LENGTHSCALE)), (np.log(1e-3), np.log(1e3))] \
            + ([(np.log(self.pair_.spacing), np.log(_PAIR_THETA_MAX)), (np.log(1e-4), np.log(1e2))] if pair else []) \
            + [self._noise_bounds()[t] for t in types]
        k0 = 4 if pair else 2
        m_all = len(U) + (self.pair_.n_columns if pair else 0) + len(self.species_)

        def nlml_t(theta: torch.Tensor) -> torch.Tensor:
            ell = torch.exp(theta[0])
            th2 = torch.exp(theta[2]) if pair else None
            st = SufficientStats(m_all)
            self._add_rows(st, raw, ell, fsub, {t: sub_labels[t] for t in types}, range(len(fsub)), theta=th2)
            K0 = self._kernel_uu(U, Us, ell, theta=th2)
            if pair:
                st = st.scaled(self._col_scale(m_all, theta[3] - theta[1]))
            return sparse_nlml(st, K0, theta[1], {t: theta[k0 + k] for k, t in enumerate(types)})

        res = _minimize_nlml(nlml_t, x0, bounds, self.max_iter)
        self.tune_result_ = res
        self.lengthscale_ = float(np.exp(res.x[0]))
        self.pair_lengthscale_ = float(np.exp(res.x[2])) if pair else float("nan")
        self._tune_x = np.delete(res.x, 2) if pair else res.x          # [l, sigma, (rho), noises...]
        self._tune_names = names
        H = _hessian(nlml_t, res.x)
        self.tune_laplace_ = _laplace(res.x, H, _at_bound(res.x, bounds, names), names)
        self.tune_nlml_ = float(res.fun)

    def _noise_bounds(self) -> dict:
        """Log-bounds of the noise stds; the energy's upper bound is ``energy_noise_max``."""
        lo = _NOISE_BOUNDS["energy"][0]
        return {**_NOISE_BOUNDS, "energy": (lo, float(np.log(max(float(self.energy_noise_max), np.exp(lo) * 1.01))))}

    def _refit_on_all(self, stats: SufficientStats, x0: np.ndarray) -> None:
        """Signal and noise stds on all training frames at the tuned length-scale; posterior weights."""
        types = stats.types
        self._stats = stats
        K0 = self._kernel_uu(self.inducing_, self.inducing_species_, self.lengthscale_)
        self._K0 = K0
        pair = self.pair_ is not None
        names = ["signal_std"] + (["pair_signal_std"] if pair else []) + [f"{t}_noise" for t in types]
        bounds = [(np.log(1e-3), np.log(1e3))] + ([(np.log(1e-4), np.log(1e2))] if pair else []) \
            + [self._noise_bounds()[t] for t in types]
        k0 = 2 if pair else 1
        m_all = len(K0)

        def nlml_t(theta: torch.Tensor) -> torch.Tensor:
            st = stats.scaled(self._col_scale(m_all, theta[1] - theta[0])) if pair else stats
            return sparse_nlml(st, K0, theta[0], {t: theta[k0 + k] for k, t in enumerate(types)})

        res = _minimize_nlml(nlml_t, x0, bounds, self.max_iter)
        self.refit_result_ = res
        self.nlml_ = float(res.fun)
        self.signal_std_ = float(np.exp(res.x[0]))
        self.pair_signal_std_ = float(np.exp(res.x[1])) if pair else float("nan")
        self.noise_ = {t: float(np.exp(res.x[k0 + k])) for k, t in enumerate(types)}
        H = _hessian(nlml_t, res.x)
        at = _at_bound(res.x, bounds, names)
        if at:
            warnings.warn(f"LocalGPPotential: {', '.join(at)} at an optimisation bound", stacklevel=3)
        self.laplace_ = _laplace(res.x, H, at, names)
        self._set_posterior()

    def _set_posterior(self) -> None:
        m_all = len(self._K0)
        ratio = np.log(self.pair_signal_std_ / self.signal_std_) if self.pair_ is not None else 0.0
        self._colscale = self._col_scale(m_all, ratio)
        post = posterior(self._stats.scaled(self._colscale), self._K0, self.signal_std_, self.noise_)
        self.weights_ = post["weights"] * self._colscale           # against the unscaled rows
        self._chol_B, self._chol_K = post["chol_B"], post["chol_K"]

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise ValueError("this LocalGPPotential is not fitted yet: call fit(frames) first")

    def predict(self, frames: Sequence[Atoms] | Atoms, return_std: bool = False, include_noise: bool = True,
                forces_std: bool = True) -> LocalGPPrediction:
        """Energies, forces, stress and local energies of ``frames`` (one ``Atoms`` or a list).

        With ``return_std``: standard deviations of energies, forces and local energies (calibrated
        when :meth:`calibrate` was run; ``include_noise`` adds the fitted label noise to energies
        and forces). ``forces_std=False`` skips the force stds (they cost ``m`` projections per atom).
        """
        self._check_fitted()
        frames = [frames] if isinstance(frames, Atoms) else list(frames)
        check_frames(frames, self.species_, source="frames")
        out = dict(energy=[], forces=[], stress=[], local_energy=[], energy_std=[], forces_std=[], local_energy_std=[])
        for b in _batches(frames, self.batch_atoms):
            self._predict_batch([frames[k] for k in b], return_std, include_noise, forces_std, out)
        return LocalGPPrediction(
            energy=np.asarray(out["energy"]), forces=out["forces"], stress=out["stress"],
            local_energy=out["local_energy"],
            energy_std=np.asarray(out["energy_std"]) if return_std else None,
            forces_std=(out["forces_std"] if forces_std else None) if return_std else None,
            local_energy_std=out["local_energy_std"] if return_std else None)

    def _predict_batch(self, frames, return_std, include_noise, forces_std, out) -> None:
        env = build_environments(frames, self.species_, self.cutoff)
        d = env.d.clone().requires_grad_(True)
        x = self.descriptor_.features(d, env)
        k = kernel0(x, env.species, self.inducing_, self.inducing_species_, self.lengthscale_,
                    self.descriptor_weights_, self._zeta())
        parts = [k] + ([self.pair_.local_rows(env, d, self.pair_lengthscale_)] if self.pair_ is not None else [])
        k = torch.cat(parts + [torch.nn.functional.one_hot(env.species, len(self.species_)).to(k.dtype)], dim=1)
        local = k @ self.weights_ + torch.as_tensor(self._offset(env.numbers))
        E = torch.zeros(env.n_frames, dtype=local.dtype).index_add(0, env.frame, local)
        g, = torch.autograd.grad(E.sum(), d)
        E, local = E.detach(), local.detach()
        grad, vir = pair_gradient_to_forces_stress(env, g)
        starts = np.concatenate([[0], np.cumsum(env.frame_sizes)])
        for f in range(env.n_frames):
            sl = slice(starts[f], starts[f + 1])
            out["energy"].append(float(E[f]))
            out["forces"].append(-grad[sl].numpy())
            out["local_energy"].append(local[sl].detach().numpy())
            if np.isfinite(env.volumes[f]):
                s = 0.5 * (vir[f] + vir[f].T).numpy() / env.volumes[f]
                out["stress"].append(np.array([s[a, c] for a, c in VOIGT]))
            else:
                out["stress"].append(None)
        if return_std:
            self._predict_std(frames, env, x.detach(), k.detach(), starts, include_noise, forces_std, out)

    def _latent_var(self, rows: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """``sigma^2 (prior - phi K0^-1 phi^T + phi A^-1 phi^T)`` (diagonal) for rows ``phi`` (n, m).

        ``prior`` excludes the pair term, whose Nyström part on its dense grid is taken as exact
        (:mod:`sciml.gp.pair_term`): its block of ``phi K0^-1 phi^T`` (``K0`` is block-diagonal) is left out.
        """
        rows = rows * self._colscale
        a = torch.linalg.solve_triangular(self._chol_K, rows.T, upper=False)
        b = torch.linalg.solve_triangular(self._chol_B, a, upper=False)
        v = (b * b).sum(0)
        if prior is not None:
            keep = ~self._pair_mask(len(self._colscale))
            v = v + prior - (a[keep] * a[keep]).sum(0)
        return self.signal_std_**2 * v.clamp(min=0.0)

    def _predict_std(self, frames, env, x, k, starts, include_noise, forces_std, out) -> None:
        s_e, s_f = self.std_scale_["energy"], self.std_scale_["forces"]
        # per-atom std of the environment-dependent part (the per-element constants shift every atom of an
        # element alike, do not change forces, and only their sums over a frame are determined by data)
        m = len(self.inducing_) + (self.pair_.n_columns if self.pair_ is not None else 0)
        k_env = torch.cat([k[:, :m], torch.zeros_like(k[:, m:])], dim=1)
        lv = self._latent_var(k_env, torch.ones(len(k), dtype=k.dtype))
        Ef = torch.zeros((env.n_frames, k.shape[1]), dtype=k.dtype).index_add(0, env.frame, k)
        prior = torch.zeros(env.n_frames, dtype=k.dtype)
        for f in range(env.n_frames):
            sl = slice(starts[f], starts[f + 1])
            counts = torch.bincount(env.species[sl], minlength=len(self.species_)).to(k.dtype)
            prior[f] = kernel0(x[sl], env.species[sl], x[sl], env.species[sl], self.lengthscale_,
                               self.descriptor_weights_, self._zeta()).sum() + _CONST_VAR * (counts**2).sum()
        ev = self._latent_var(Ef, prior)
        if forces_std:
            batch = prepare_batch(self.descriptor_, env)
            raw = raw_rows(self.descriptor_, batch, self.inducing_, self.inducing_species_,
                           weights=self.descriptor_weights_)
            with torch.no_grad():
                _, F, _ = assemble_rows(raw, self.lengthscale_, zeta=self._zeta())
                if self.pair_ is not None:
                    F = torch.cat([F, self.pair_.rows(env, self.pair_lengthscale_)[1]], dim=-1)
            F = torch.cat([F, F.new_zeros(F.shape[:-1] + (len(self.species_),))], dim=-1)
            fv = self._latent_var(F.reshape(-1, F.shape[-1]), None).reshape(-1, 3)
        for f in range(env.n_frames):
            sl = slice(starts[f], starts[f + 1])
            n = starts[f + 1] - starts[f]
            e2 = float(ev[f]) + (n * self.noise_["energy"] ** 2 if include_noise else 0.0)
            out["energy_std"].append(s_e * np.sqrt(e2))
            out["local_energy_std"].append(np.sqrt(lv[sl].numpy()))
            if forces_std:
                f2 = fv[sl].numpy() + (self.noise_.get("forces", 0.0) ** 2 if include_noise else 0.0)
                out["forces_std"].append(s_f * np.sqrt(f2))

    def calculator_results(self, atoms: Atoms, uncertainty: bool = True, forces_std: bool = True,
                           include_noise: bool = False) -> dict:
        """ASE ``results`` for one structure: energy, free_energy, forces, stress (periodic), and with
        ``uncertainty`` ``energy_std``, ``local_energy_std`` (and ``forces_std`` if asked)."""
        p = self.predict([atoms], return_std=uncertainty, include_noise=include_noise, forces_std=forces_std)
        res = dict(energy=float(p.energy[0]), free_energy=float(p.energy[0]), forces=p.forces[0],
                   energies=p.local_energy[0])
        if p.stress[0] is not None:
            res["stress"] = p.stress[0]
        if uncertainty:
            res["energy_std"] = float(p.energy_std[0])
            res["local_energy_std"] = p.local_energy_std[0]
            if forces_std:
                res["forces_std"] = p.forces_std[0]
        return res

    def evaluate(self, frames: Sequence[Atoms], max_std_structures: int | None = None) -> dict:
        """Test-set metrics (:func:`evaluate_local`): what ``sciml gp eval --json`` prints."""
        return evaluate_local(self, frames, max_std_structures=max_std_structures)

    def score(self, frames: Sequence[Atoms]) -> float:
        """Coefficient of determination R^2 of the force components on labelled ``frames``."""
        from sciml.atoms import frame_labels

        p = self.predict(frames)
        ref = np.concatenate([frame_labels(a)["forces"].ravel() for a in frames])
        pred = np.concatenate([f.ravel() for f in p.forces])
        return float(1.0 - np.sum((pred - ref) ** 2) / np.sum((ref - ref.mean()) ** 2))

    # ------------------------------------------------------------------ calibration
    def calibrate(self, frames: Sequence[Atoms], coverage: float = 0.95) -> dict:
        """Rescale predicted stds on held-out labelled ``frames`` (not training frames) to ``coverage``.

        Variance scaling: the factor is the ``coverage`` quantile of |error| / std divided by the
        Gaussian ``z``. Returns the factors and the coverage on ``frames`` before and after.
        """
        from scipy.stats import norm

        from sciml.atoms import frame_labels

        self._check_fitted()
        frames = list(frames)
        if not frames:
            raise ValueError("calibrate needs at least one labelled frame")
        train = set(self.train_keys_)
        for k, a in enumerate(frames):
            if frame_key(a) in train:
                raise ValueError(f"calibration frames[{k}] is a training frame: calibrate on held-out frames")
        self.std_scale_ = {"energy": 1.0, "forces": 1.0}
        p = self.predict(frames, return_std=True, include_noise=True)
        labs = [frame_labels(a) for a in frames]
        z = norm.ppf(0.5 + coverage / 2)
        ze = np.abs(p.energy - np.array([lab["energy"] for lab in labs])) / p.energy_std
        zf = np.concatenate([np.abs(f - lab["forces"]).ravel() / s.ravel()
                             for f, s, lab in zip(p.forces, p.forces_std, labs)])
        scale = {"energy": float(np.quantile(ze, coverage) / z), "forces": float(np.quantile(zf, coverage) / z)}
        self.std_scale_ = scale
        return dict(scale=scale, n_frames=len(frames),
                    energy_coverage_raw=float(np.mean(ze <= z)), forces_coverage_raw=float(np.mean(zf <= z)),
                    energy_coverage=float(np.mean(ze <= z * scale["energy"])),
                    forces_coverage=float(np.mean(zf <= z * scale["forces"])))

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> Path:
        """Save what prediction needs (inducing descriptors, weights, factors, hyperparameters) atomically."""
        from sciml._io import atomic_torch_save

        self._check_fitted()
        state = dict(
            format=FORMAT, params=self.get_params(), species=list(self.species_), e0=torch.as_tensor(self.e0_),
            descriptor=self.descriptor_.config(), descriptor_weights=self.descriptor_weights_, inducing=self.inducing_, inducing_species=self.inducing_species_,
            weights=self.weights_, chol_B=self._chol_B, chol_K=self._chol_K, lengthscale=self.lengthscale_,
            signal_std=self.signal_std_, noise=dict(self.noise_), targets=list(self.targets_),
            std_scale=dict(self.std_scale_), train_keys=list(self.train_keys_), n_train=self.n_train_,
            n_envs=self.n_envs_, nlml=self.nlml_, tune_nlml=self.tune_nlml_, fit_time=self.fit_time_,
            tune_time=self.tune_time_, laplace=None if self.laplace_ is None else self.laplace_.to_dict(),
            tune_laplace=None if self.tune_laplace_ is None else self.tune_laplace_.to_dict(),
            tune_indices=torch.as_tensor(self.tune_indices_),
            pair=None if self.pair_ is None else self.pair_.config(), pair_lengthscale=self.pair_lengthscale_,
            pair_signal_std=self.pair_signal_std_)
        return atomic_torch_save(state, path)

    @classmethod
    def load(cls, path: str | Path) -> "LocalGPPotential":
        """Load a model written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"model file {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a {FORMAT} model file")
        gp = cls(**state["params"])
        gp.species_ = [int(z) for z in state["species"]]
        gp.e0_ = state["e0"].numpy()
        gp.descriptor_ = SOAPDescriptor(**state["descriptor"])
        gp.descriptor_weights_ = state["descriptor_weights"]
        gp.inducing_, gp.inducing_species_ = state["inducing"], state["inducing_species"]
        gp.weights_, gp._chol_B, gp._chol_K = state["weights"], state["chol_B"], state["chol_K"]
        gp.lengthscale_, gp.signal_std_ = state["lengthscale"], state["signal_std"]
        gp.noise_, gp.targets_ = dict(state["noise"]), tuple(state["targets"])
        gp.std_scale_, gp.train_keys_ = dict(state["std_scale"]), list(state["train_keys"])
        gp.n_train_, gp.n_envs_, gp.nlml_, gp.tune_nlml_ = state["n_train"], state["n_envs"], state["nlml"], \
            state["tune_nlml"]
        gp.fit_time_, gp.tune_time_ = state["fit_time"], state["tune_time"]
        gp.laplace_ = None if state["laplace"] is None else LaplaceResult.from_dict(state["laplace"])
        gp.tune_laplace_ = None if state["tune_laplace"] is None else LaplaceResult.from_dict(state["tune_laplace"])
        gp.tune_indices_ = state["tune_indices"].numpy()
        gp.pair_ = None if state.get("pair") is None else PairTerm(**state["pair"])
        gp.pair_lengthscale_ = state.get("pair_lengthscale", float("nan"))
        gp.pair_signal_std_ = state.get("pair_signal_std", float("nan"))
        ratio = np.log(gp.pair_signal_std_ / gp.signal_std_) if gp.pair_ is not None else 0.0
        gp._colscale = gp._col_scale(len(gp.weights_), ratio)
        return gp


def _hessian(f, x: np.ndarray) -> np.ndarray:
    """Exact Hessian of ``f`` at ``x`` (autograd); NaN where the factorisation fails there."""
    try:
        return torch.autograd.functional.hessian(f, torch.tensor(x, dtype=torch.float64)).numpy()
    except torch.linalg.LinAlgError:
        warnings.warn("LocalGPPotential: the NLML Hessian could not be computed at the optimum "
                      "(no Laplace standard errors)", stacklevel=3)
        return np.full((len(x), len(x)), np.nan)


def _laplace(x: np.ndarray, H: np.ndarray, at_bound: list[str], names: list[str]) -> LaplaceResult | None:
    return LaplaceResult(x, H, 1.0, 0.0, at_bound, names) if np.all(np.isfinite(H)) else None


def _at_bound(x: np.ndarray, bounds: list, names: list[str]) -> list[str]:
    return [n for v, (lo, hi), n in zip(x, bounds, names) if v <= lo + 1e-6 or v >= hi - 1e-6]


def evaluate_local(model: LocalGPPotential, frames: Sequence[Atoms], max_std_structures: int | None = None) -> dict:
    """Test-set metrics with the keys of :mod:`sciml.metrics` (energies, forces, stress when labelled).

    Coverage keys: ``forces_coverage_95`` / ``energy_coverage_95`` with the calibrated stds
    (identical to the raw ones when the model was not calibrated) and ``..._raw`` without.
    """
    from sciml.atoms import frame_labels

    frames = list(frames)
    labs = [frame_labels(a) for a in frames]
    for k, lab in enumerate(labs):
        if lab["energy"] is None or lab["forces"] is None:
            raise ValueError(f"frames[{k}] has no energy or forces label: cannot evaluate on it")
    t0 = time.perf_counter()
    p = model.predict(frames)
    dt = time.perf_counter() - t0
    e_ref = np.array([lab["energy"] for lab in labs])
    with_s = [k for k, (a, lab) in enumerate(zip(frames, labs)) if lab["stress"] is not None and a.pbc.all()]
    out = error_metrics(p.energy, e_ref, [len(a) for a in frames], p.forces, [lab["forces"] for lab in labs],
                        [p.stress[k] for k in with_s] or None, [labs[k]["stress"] for k in with_s] or None)
    k = len(frames) if max_std_structures is None else max(0, min(len(frames), int(max_std_structures)))
    if k > 0:
        t1 = time.perf_counter()
        ps = model.predict(frames[:k], return_std=True, include_noise=True)
        dts = time.perf_counter() - t1
        ef = np.concatenate([(ps.forces[i] - labs[i]["forces"]).ravel() for i in range(k)])
        sf = np.concatenate([s.ravel() for s in ps.forces_std])
        ee = ps.energy - e_ref[:k]
        fu = uncertainty_metrics(ef, sf, "forces")
        eu = uncertainty_metrics(ee, ps.energy_std, "energy")
        raw_f = sf / model.std_scale_["forces"]
        raw_e = ps.energy_std / model.std_scale_["energy"]
        out.update(
            forces_std_mean_meV_per_A=fu["forces_std_mean_meV_per_A"], forces_coverage_95=fu["forces_coverage_95"],
            energy_coverage_95=eu["energy_coverage_95"],
            forces_coverage_95_raw=uncertainty_metrics(ef, raw_f, "forces")["forces_coverage_95"],
            energy_coverage_95_raw=uncertainty_metrics(ee, raw_e, "energy")["energy_coverage_95"],
            n_structures_std=k, predict_std_time_s_per_structure=dts / k)
    out["predict_time_s_per_structure"] = dt / len(frames)
    out["calibrated"] = model.std_scale_ != {"energy": 1.0, "forces": 1.0}
    return out


def _minimize_nlml(nlml_t, x0: np.ndarray, bounds, max_iter: int):
    """L-BFGS-B on a torch NLML of the log-hyperparameters with its exact autograd gradient.

    A failed factorisation (``LinAlgError``) at a trial point is reported to the optimiser as a very
    large value, so the line search steps back instead of the fit stopping.
    """
    from scipy.optimize import minimize

    def f(x: np.ndarray):
        th = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        try:
            v = nlml_t(th)
            g, = torch.autograd.grad(v, th)
        except torch.linalg.LinAlgError:
            return 1e30, np.zeros_like(x)
        return float(v.detach()), g.numpy().astype(float)

    res = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=dict(maxiter=max_iter))
    if not res.success and res.nit < max_iter:       # not just out of iterations: say so, never silently
        from sciml._warnings import user_stacklevel

        warnings.warn(f"LocalGPPotential: the marginal-likelihood optimisation stopped after {res.nit} "
                      f"iteration(s) without converging ({res.message}); hyperparameters may be near "
                      "their starting values", RuntimeWarning, stacklevel=user_stacklevel())
    return res
