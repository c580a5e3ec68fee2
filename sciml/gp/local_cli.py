"""The ``--kind local`` branch of ``sciml gp train`` (``sciml gp eval`` loads either kind by its format key)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .local_gp import DESCRIPTOR_PRESETS, FORMAT, LocalGPPotential

__all__ = ["train_local"]


def train_local(train: Path, out: Path, n_train: Optional[int], n_sparse: int, cutoff: float,
                valid: Optional[Path], seed: int, quiet: bool, descriptor: str = "soap") -> dict:
    """Fit a :class:`LocalGPPotential` on ``train``, calibrate on ``valid`` (held-out frames), save to ``out``.

    ``descriptor`` names one of :data:`~sciml.gp.local_gp.DESCRIPTOR_PRESETS` (``soap`` or ``radial``).
    Returns the JSON summary the command prints (hyperparameters, Laplace standard errors,
    calibration, fit time).
    """
    from sciml.atoms import read_frames

    if descriptor not in DESCRIPTOR_PRESETS:
        raise ValueError(f"--descriptor must be one of {', '.join(DESCRIPTOR_PRESETS)}, got {descriptor!r}")
    frames = read_frames(train)
    if n_train is not None:
        if n_train < 2 or n_train > len(frames):
            raise ValueError(f"--n-train must be in [2, {len(frames)}] for {str(train)!r}, got {n_train}")
        frames = frames[:n_train]
    model = LocalGPPotential(n_sparse=n_sparse, cutoff=cutoff, seed=seed, progress=not quiet,
                             **DESCRIPTOR_PRESETS[descriptor]).fit(frames)
    calibration = model.calibrate(read_frames(valid)) if valid is not None else None
    model.save(out)
    return dict(
        model=str(out), kind="local", format=FORMAT, n_train=model.n_train_, n_envs=model.n_envs_,
        n_sparse=int(len(model.inducing_)), cutoff=model.cutoff, descriptor=descriptor, species=model.species_,
        targets=list(model.targets_), lengthscale=model.lengthscale_, signal_std_eV=model.signal_std_,
        pair_lengthscale_A=model.pair_lengthscale_, pair_signal_std_eV=model.pair_signal_std_,
        noise=model.noise_, nlml=model.nlml_, fit_time_s=model.fit_time_, tune_time_s=model.tune_time_,
        calibration=calibration,
        laplace_std_err=None if model.laplace_ is None else
        {k: float(v) for k, v in model.laplace_.table()["std_err"].items()},
        tune_laplace_std_err=None if model.tune_laplace_ is None else
        {k: float(v) for k, v in model.tune_laplace_.table()["std_err"].items()},
    )
