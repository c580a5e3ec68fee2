"""Resumable training checkpoints: one atomic file with weights, EMA, optimiser, schedule and loop state.

A checkpoint records a *fingerprint* of the data and settings it was written for (model
hyperparameters, number of frames, the sum of the training energies, batch size, seed, dtype);
resuming with anything else is refused with a ``ValueError`` instead of mixing two runs. The
loop state holds the epoch, the position inside the epoch (``batch``) and the partial epoch loss,
so a run killed in the middle of an epoch continues with the next batch of the same permutation.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import torch

from .graph import AtomicGraph
from .model import FILE_FORMAT_VERSION, ModelConfig
from .train_config import TrainConfig

CHECKPOINT_FORMAT = "sciml-checkpoint"


def fingerprint(mcfg: ModelConfig, cfg: TrainConfig, train_graphs: Sequence[AtomicGraph],
                valid_graphs: Sequence[AtomicGraph]) -> dict:
    """What must match for a checkpoint to be resumed."""
    return {
        "format_version": FILE_FORMAT_VERSION,
        "model": mcfg.to_dict(),
        "n_train": len(train_graphs),
        "n_valid": len(valid_graphs),
        "train_energy_sum": round(float(sum(float(g.energy[0]) for g in train_graphs)), 6),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "dtype": cfg.dtype,
    }


def checkpoint_paths(out: Optional[Path]) -> tuple[Optional[Path], Optional[Path]]:
    """``(OUT-stem.ckpt, OUT-stem.metrics.csv)`` next to the model file ``out`` (``None`` without one)."""
    if out is None:
        return None, None
    out = Path(out)
    return out.with_name(out.stem + ".ckpt"), out.with_name(out.stem + ".metrics.csv")


def save_checkpoint(path: Path, fp: dict, cfg: TrainConfig, model, ema_model, optimizer, schedule, state: dict) -> None:
    """Write the checkpoint atomically (a kill during the write leaves the previous one intact)."""
    from .._io import atomic_torch_save

    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fp,
            "config": asdict(cfg),
            "model": model.state_dict(),
            "ema": ema_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "state": state,
        },
        path,
    )


def load_checkpoint(path: Path, fp: dict, model, ema_model, optimizer, schedule) -> dict:
    """Restore weights, EMA, optimiser and schedule from ``path``; return the saved loop state.

    Raises ``ValueError`` when ``path`` is not a sciml checkpoint or was written for other data or settings.
    """
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a sciml training checkpoint")
    if ck["fingerprint"] != fp:
        diff = sorted(k for k in set(fp) | set(ck["fingerprint"]) if fp.get(k) != ck["fingerprint"].get(k))
        raise ValueError(
            f"checkpoint {path} was written for different data or settings (differs in {diff}); delete it or "
            f"pass resume=False (--no-resume) to start again"
        )
    model.load_state_dict(ck["model"])
    ema_model.load_state_dict(ck["ema"])
    optimizer.load_state_dict(ck["optimizer"])
    sched = ck.get("scheduler")
    if isinstance(sched, dict) and "base_lr" in sched:  # older checkpoints held torch scheduler states
        schedule.load_state_dict(sched)
    return dict(ck["state"])
