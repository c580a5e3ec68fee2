"""Model files of the global GP: what prediction needs, one atomic ``torch.save`` file.

Stored: the format key (``"sciml.gp.GPPotential/2"``), the constructor parameters, atomic
numbers, training positions (the descriptors are recomputed from them: ``3 n_atoms`` numbers per
frame instead of ``n_atoms (n_atoms - 1) / 2``), permutations, descriptor weights (standardisation
and, with ARD length-scales, the kernel's feature weights), the fitted hyperparameters, the weights ``alpha`` (``N (1 + 3 n_atoms)`` numbers), calibration factors, the
optimisation trace and the Laplace result. The size is ``~8 N (6 n_atoms + 1)`` bytes plus the trace
(~7-50 kB; 1000 ethanol frames: 0.45 MB; 1000 aspirin frames: 1.0 MB). The solver's factor for predictive
variances is rebuilt on the first uncertainty prediction after loading (what a fit's final solve
costs) unless it was stored on request (``store_factor=True``: ``8 (N M)^2`` bytes more, Cholesky
only). Training labels are not stored (prediction does not need them). Version-1 files (which
also held labels and often the factor) still load.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .descriptors import Geometry, Permutations
from .hyperparameters import EnergyScale, unpack
from .laplace import LaplaceResult

__all__ = ["FORMAT", "read_format", "save_global", "load_global"]

FORMAT = "sciml.gp.GPPotential/2"
_READABLE = ("sciml.gp.GPPotential/1", FORMAT)


def read_format(path: str | Path) -> tuple[str, dict]:
    """The format key and the state dict of a sciml GP model file; ``ValueError`` when it is none."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{str(path)!r} is not a sciml GP model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("format"), str):
        raise ValueError(f"{str(path)!r} is not a sciml GP model file (no format key)")
    return state["format"], state


def save_global(model, path: str | Path, store_factor: bool = False) -> Path:
    """Write ``model`` (a fitted :class:`~sciml.gp.GPPotential`) to ``path``; returns the path."""
    from sciml._io import atomic_torch_save

    solver = getattr(model, "_solver", None)
    if store_factor and getattr(model, "solver_", "cholesky") != "cholesky":
        raise ValueError("store_factor=True stores a Cholesky factor; this model was solved by CG")
    if store_factor and solver is None:
        model._factorize()
        solver = model._solver
    state = dict(
        format=FORMAT,
        params=model.get_params(),
        numbers=torch.as_tensor(model.numbers_),
        positions=torch.as_tensor(model.positions_),
        permutations=torch.as_tensor(model.permutations_),
        descriptor_weights=torch.as_tensor(model.descriptor_weights_),
        feature_weights=torch.as_tensor(model.feature_weights_),
        lengthscales=torch.as_tensor(model.lengthscales_),
        variance_fractions=torch.as_tensor(model.variance_fractions_),
        length_scale_groups=list(model.length_scale_groups_),
        group_lengthscales=None if model.group_lengthscales_ is None else torch.as_tensor(model.group_lengthscales_),
        nlml_shared=model.nlml_shared_,
        theta=torch.as_tensor(model.theta_),
        scales=[model._scales.e_mean, model._scales.e_std],
        alpha=torch.as_tensor(model.alpha_),
        jitter_rel=float(model.jitter_rel_),
        solver=model.solver_,
        solver_info=getattr(model, "solver_info_", None),
        std_scale=dict(getattr(model, "std_scale_", None) or {"energy": 1.0, "forces": 1.0}),
        calibration=getattr(model, "calibration_", None),
        final=[model.signal_std_, model.energy_noise_, model.force_noise_, model.mean_energy_],
        tune_indices=torch.as_tensor(model.tune_indices_),
        trace=model._trace,
        nlml=float(model.nlml_),
        converged=bool(model.converged_),
        optimizer_message=str(model.optimizer_message_),
        fit_time=float(model.fit_time_),
        tune_time=float(model.tune_time_),
        laplace=None if model.laplace_ is None else model.laplace_.to_dict(),
        factor=torch.from_numpy(solver.factor) if store_factor else None,
        factor_scale=float(model._factor_scale) if store_factor else 1.0,
    )
    return atomic_torch_save(state, path)


def _restore_solver(gp, state: dict) -> None:
    from .solvers import CholeskySolver

    gp._solver, gp._factor_scale = None, 1.0
    if state.get("factor") is not None:
        solver = CholeskySolver(gp.chunk_size)
        solver.factor = state["factor"].numpy()
        gp._solver, gp._factor_scale = solver, float(state["factor_scale"])


def load_global(cls, path: str | Path):
    """Read a file written by :func:`save_global` into a new ``cls`` instance."""
    fmt, state = read_format(path)
    if fmt not in _READABLE:
        raise ValueError(f"{str(path)!r} is a {fmt!r} file, not a sciml.gp.GPPotential model")
    params = dict(state["params"])
    params.setdefault("n_scales", 1)  # version-1 files written before mixtures: one length-scale
    params.setdefault("descriptor_power", 1.0)  # files written before the option: plain inverse distances
    gp = cls(**params)
    gp.numbers_ = state["numbers"].numpy()
    gp.positions_ = state["positions"].numpy()
    gp.permutations_ = state["permutations"].numpy()
    gp._perms = Permutations(gp.permutations_, len(gp.numbers_))
    gp.descriptor_weights_ = state["descriptor_weights"].numpy()
    gp.feature_weights_ = state["feature_weights"].numpy() if "feature_weights" in state else gp.descriptor_weights_
    gp._geo = Geometry.from_positions(gp.positions_, gp.feature_weights_, gp.descriptor_power)
    gp.n_train_ = len(gp.positions_)
    gp._scales = EnergyScale(*state["scales"])
    gp.theta_ = state["theta"].numpy()
    if "lengthscales" in state:  # written with ARD support: the kernel's length-scales as fitted
        ls, fr = state["lengthscales"], state["variance_fractions"]
    else:
        ls, fr, _, _, _, _ = unpack(torch.as_tensor(gp.theta_), gp._scales)
    gp.lengthscales_, gp.variance_fractions_ = ls.numpy(), fr.numpy()
    gp.lengthscale_ = float(ls[0])
    gl = state.get("group_lengthscales")
    gp.group_lengthscales_ = None if gl is None else gl.numpy()
    gp.length_scale_groups_ = list(state.get("length_scale_groups", ["all"]))
    gp.nlml_shared_ = state.get("nlml_shared")
    gp.alpha_ = state["alpha"].numpy()
    gp.jitter_rel_ = state["jitter_rel"]
    gp.solver_ = state.get("solver", "cholesky")
    gp.solver_info_ = state.get("solver_info")
    gp.signal_std_, gp.energy_noise_, gp.force_noise_, gp.mean_energy_ = state["final"]
    gp.tune_indices_ = state["tune_indices"].numpy()
    gp._trace, gp.nlml_ = state["trace"], state["nlml"]
    gp.converged_ = state.get("converged", True)
    gp.optimizer_message_ = state.get("optimizer_message", "")
    gp.fit_time_, gp.tune_time_ = state["fit_time"], state["tune_time"]
    gp.laplace_ = None if state["laplace"] is None else LaplaceResult.from_dict(state["laplace"])
    gp.std_scale_ = dict(state.get("std_scale") or {"energy": 1.0, "forces": 1.0})
    gp.calibration_ = state.get("calibration")
    if "energies" in state:  # version 1 kept the labels
        gp.energies_, gp.forces_ = state["energies"].numpy(), state["forces"].numpy()
    _restore_solver(gp, state)
    return gp
