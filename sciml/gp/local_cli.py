"""The ``--kind local`` branch of ``sciml gp train`` and the local-GP branch of ``sciml gp eval``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .local_gp import FORMAT, LocalGPPotential, evaluate_local

__all__ = ["train_local", "eval_local", "is_local_model"]


def train_local(train: Path, out: Path, n_train: Optional[int], n_sparse: int, cutoff: float,
                valid: Optional[Path], seed: int, quiet: bool) -> dict:
    """Fit a :class:`LocalGPPotential` on ``train``, calibrate on ``valid`` (held-out frames), save to ``out``.

    Returns the JSON summary the command prints (hyperparameters, Laplace standard errors,
    calibration, fit time).
    """
    from sciml.atoms import read_frames

    frames = read_frames(train)
    if n_train is not None:
        if n_train < 2 or n_train > len(frames):
            raise ValueError(f"--n-train must be in [2, {len(frames)}] for {str(train)!r}, got {n_train}")
        frames = frames[:n_train]
    model = LocalGPPotential(n_sparse=n_sparse, cutoff=cutoff, seed=seed, progress=not quiet).fit(frames)
    calibration = model.calibrate(read_frames(valid)) if valid is not None else None
    model.save(out)
    return dict(
        model=str(out), kind="local", format=FORMAT, n_train=model.n_train_, n_envs=model.n_envs_,
        n_sparse=int(len(model.inducing_)), cutoff=model.cutoff, species=model.species_,
        targets=list(model.targets_), lengthscale=model.lengthscale_, signal_std_eV=model.signal_std_,
        noise=model.noise_, nlml=model.nlml_, fit_time_s=model.fit_time_, tune_time_s=model.tune_time_,
        calibration=calibration,
        laplace_std_err=None if model.laplace_ is None else
        {k: float(v) for k, v in model.laplace_.table()["std_err"].items()},
        tune_laplace_std_err=None if model.tune_laplace_ is None else
        {k: float(v) for k, v in model.tune_laplace_.table()["std_err"].items()},
    )


def is_local_model(path: Path) -> bool:
    """Whether ``path`` holds a saved :class:`LocalGPPotential` (by its format key)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- not a torch file: the caller's own loader reports it
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


def eval_local(model: Path, data: Path, std_frames: Optional[int]) -> dict:
    """Test metrics of a saved local GP on labelled frames (keys of :mod:`sciml.metrics`)."""
    from sciml.atoms import read_frames

    gp = LocalGPPotential.load(model)
    frames = read_frames(data)
    return evaluate_local(gp, frames, max_std_structures=None if (std_frames is None or std_frames < 0)
                          else std_frames)
