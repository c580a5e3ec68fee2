"""Training: :func:`train_potential` on energies per atom, forces and stress, in named steps.

1. prepare the data (checks, species, neighbour lists once: :meth:`_TrainingRun.__init__` via
   :func:`_prepare_data`);
2. build the model and set its statistics (least-squares element energies, scale, shift:
   :mod:`~sciml.potentials.statistics`), the optimiser, schedule and EMA (:mod:`~sciml.potentials.optim`);
3. resume from a checkpoint when one exists for the same data and settings (:mod:`~sciml.potentials.checkpoint`);
4. epochs of optimiser steps on the loss of :mod:`~sciml.potentials.loss` (:meth:`_TrainingRun.step`),
   validation of the EMA weights after every epoch (:meth:`_TrainingRun.validate`), checkpoints, limits;
5. the best EMA weights as the result (:meth:`_TrainingRun.finish`).

Files written next to ``out`` (``model.pt``): ``model.ckpt`` (checkpoint, every
``checkpoint_every`` steps and at the end, atomic), ``model.metrics.csv`` (one row per
validation), and ``out`` itself (the EMA weights with the best validation loss, updated
whenever validation improves). Re-running the same command resumes from ``model.ckpt``.
Data parallel under torchrun/srun: see :mod:`~sciml.potentials.distributed`.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .checkpoint import CHECKPOINT_FORMAT, checkpoint_paths, fingerprint, load_checkpoint, save_checkpoint
from .distributed import (
    DistInfo,
    all_reduce_,
    all_reduce_grads_,
    finish_distributed,
    init_distributed,
    max_over_ranks,
)
from .evaluation import check_stress_labels, error_sums, evaluate, metrics_with_loss, predict_graphs
from .graph import frames_to_graphs
from .loss import batch_counts, batch_loss
from .model import _DTYPES, EquivariantPotential, ModelConfig, save_model
from .optim import ExponentialMovingAverage, LRSchedule, build_optimizer
from .statistics import fit_statistics
from .train_config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train_potential", "evaluate", "predict_graphs", "fit_statistics",
           "CHECKPOINT_FORMAT", "DistInfo", "init_distributed"]


@dataclass
class TrainResult:
    """What :func:`train_potential` returns."""

    model_path: Optional[Path]
    model: EquivariantPotential
    history: list
    best_valid: dict
    steps: int
    epochs: int
    stop_reason: str
    wall_time_s: float
    statistics: dict

    def to_dict(self) -> dict:
        return {
            "model_path": str(self.model_path) if self.model_path else None,
            "best_valid": self.best_valid,
            "steps": self.steps,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "wall_time_s": self.wall_time_s,
            "num_parameters": self.model.num_parameters(),
            "statistics": self.statistics,
        }


def _write_csv(path: Path, rows: list[dict]) -> None:
    from .._io import atomic_write_text

    if not rows:
        return
    cols = list(rows[0].keys())
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _prepare_data(train_frames: Sequence, valid_frames: Sequence, cfg: TrainConfig, dtype: torch.dtype):
    """Check the frames, choose the species and build the graphs (neighbour lists once)."""
    if len(train_frames) == 0:
        raise ValueError("train_frames is empty")
    if len(valid_frames) == 0:
        raise ValueError("valid_frames is empty: training needs a validation set for EMA selection/early stopping")
    check_stress_labels(train_frames, "train_frames")
    check_stress_labels(valid_frames, "valid_frames")
    species = sorted({int(z) for a in list(train_frames) + list(valid_frames) for z in a.numbers})
    mcfg = ModelConfig(species=species, **cfg.model).validate()
    train_graphs = frames_to_graphs(train_frames, mcfg.cutoff, species, labels=True, dtype=dtype)
    valid_graphs = frames_to_graphs(valid_frames, mcfg.cutoff, species, labels=True, dtype=dtype)
    return mcfg, train_graphs, valid_graphs


def _fresh_state() -> dict:
    return {
        "step": 0, "epoch": 0, "batch": 0, "history": [], "best_loss": math.inf, "best_valid": {},
        "bad_validations": 0, "epoch_loss_sum": 0.0, "epoch_loss_n": 0, "elapsed": 0.0, "stopped": None,
        "best_state": None, "stage": 1,
    }


class _TrainingRun:
    """One invocation of :func:`train_potential`: the model, optimiser, data and loop state."""

    def __init__(self, train_frames, valid_frames, out, cfg: TrainConfig, callback) -> None:
        from .._runtime import resolve_device, seed_everything

        self.t_start = time.perf_counter()
        self.cfg, self.callback = cfg, callback
        device = resolve_device(cfg.device)
        self.dist = init_distributed(device.type)
        if device.type == "cuda" and self.dist.world > 1:
            device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(device)
        self.device, self.dtype = device, _DTYPES[cfg.dtype]
        seed_everything(cfg.seed)
        self.mcfg, self.train_graphs, self.valid_graphs = _prepare_data(train_frames, valid_frames, cfg, self.dtype)
        torch.manual_seed(cfg.seed)
        model = EquivariantPotential(self.mcfg).to(self.dtype)
        self.stats = fit_statistics(model, self.train_graphs)
        self.model = model.to(device)
        self.weights = (cfg.energy_weight, cfg.forces_weight, cfg.stress_weight)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = build_optimizer(self.params, cfg)
        self.n_batches = math.ceil(len(self.train_graphs) / cfg.batch_size)
        self.schedule = LRSchedule(self.opt, cfg, self.n_batches)
        self.ema = ExponentialMovingAverage(self.model, cfg.ema_decay)
        self.out = Path(out) if out is not None else None
        self.ckpt_path, self.csv_path = checkpoint_paths(self.out)
        self.fingerprint = fingerprint(self.mcfg, cfg, self.train_graphs, self.valid_graphs)
        self.state = _fresh_state()
        self.now = 0.0  # seconds since t_start, the same on every rank (for max_time and the schedule)

    # -- files ---------------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from the checkpoint next to ``out`` if there is one (same data and settings only)."""
        if self.ckpt_path is None or not self.ckpt_path.exists():
            return
        self.state.update(load_checkpoint(self.ckpt_path, self.fingerprint, self.model, self.ema.model, self.opt,
                                          self.schedule))
        self.weights = self.stage_weights(self.state.get("stage", 1))
        if self.state["stopped"] in ("max_time", "max_steps", "callback"):
            self.state["stopped"] = None  # a new budget continues the run

    def elapsed(self) -> float:
        """Training wall time summed over resumed invocations."""
        return self.elapsed_base + time.perf_counter() - self.t_run

    def checkpoint(self) -> None:
        if self.ckpt_path is None or not self.dist.is_main:
            return
        self.state["elapsed"] = self.elapsed()
        save_checkpoint(self.ckpt_path, self.fingerprint, self.cfg, self.model, self.ema.model, self.opt,
                        self.schedule, self.state)

    def write_model(self, m: EquivariantPotential) -> None:
        if self.out is None or not self.dist.is_main:
            return
        s = self.state
        save_model(m, self.out, metadata={"statistics": self.stats, "train_config": asdict(self.cfg),
                                          "best_valid": s["best_valid"], "step": s["step"], "epoch": s["epoch"],
                                          "n_train": len(self.train_graphs)})

    # -- validation ----------------------------------------------------------------------------

    def validate(self) -> dict:
        """Errors of the EMA weights on the validation set; keeps them (and writes ``out``) when better."""
        s, ema = self.state, self.ema.model
        ema.eval()
        m = metrics_with_loss(error_sums(ema, self.valid_graphs, self.dist, max(self.cfg.batch_size, 16)),
                              self.weights)
        row = {
            "epoch": s["epoch"], "step": s["step"], "time_s": round(self.elapsed(), 3),
            "lr": self.opt.param_groups[0]["lr"], "stage": s["stage"],
            "train_loss": s["epoch_loss_sum"] / max(s["epoch_loss_n"], 1),
            "valid_loss": m["loss"],
        }
        for key in ("energy_mae_meV_per_atom", "energy_rmse_meV_per_atom", "forces_mae_meV_per_A",
                    "forces_rmse_meV_per_A", "stress_mae_GPa", "stress_rmse_GPa"):
            if key in m:
                row[f"valid_{key}"] = m[key]
        row["best"] = improved = m["loss"] < s["best_loss"]
        s["history"].append(row)
        if improved:
            s["best_loss"], s["best_valid"], s["bad_validations"] = m["loss"], dict(m), 0
            s["best_state"] = {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}
            self.write_model(ema)
        else:
            s["bad_validations"] += 1
        self.schedule.after_validation(m["loss"])
        if self.csv_path is not None and self.dist.is_main:
            _write_csv(self.csv_path, s["history"])
        self.model.train()
        return row

    # -- the loop ------------------------------------------------------------------------------

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of ``epoch``: a permutation seeded by ``seed + epoch`` (the same after a resume)."""
        perm = np.random.default_rng(self.cfg.seed + epoch).permutation(len(self.train_graphs))
        return [perm[k : k + self.cfg.batch_size] for k in range(0, len(perm), self.cfg.batch_size)]

    def step(self, idx: np.ndarray) -> float:
        """One optimiser step on the global batch ``idx`` (this rank computes its strided share)."""
        s, d = self.state, self.dist
        batch = [self.train_graphs[k] for k in idx]
        mine = batch[d.rank :: d.world]
        self.schedule.before_step(s["step"], self.now)
        self.maybe_start_stage_two()
        self.opt.zero_grad(set_to_none=False)
        if mine:
            loss = batch_loss(self.model, mine, batch_counts(batch), self.weights, self.device, self.dtype)
            loss.backward()
            lval = loss.detach().double().cpu()
        else:
            lval = torch.zeros((), dtype=torch.float64)
        all_reduce_grads_(self.params, d)
        if d.world > 1:
            lval = all_reduce_(lval.reshape(1), d)[0]
        self.opt.step()
        self.ema.update(self.model, s["step"])
        s["step"] += 1
        s["batch"] += 1
        s["epoch_loss_sum"] += float(lval)
        s["epoch_loss_n"] += 1
        if self.cfg.max_time is not None:
            self.now = max_over_ranks(time.perf_counter() - self.t_start, d)
        return float(lval)

    def stage_weights(self, stage: int) -> tuple[float, float, float]:
        cfg = self.cfg
        w = {"energy_weight": cfg.energy_weight, "forces_weight": cfg.forces_weight, "stress_weight": cfg.stress_weight}
        if stage == 2:
            w.update({k: float(v) for k, v in cfg.stage_two.items() if k != "start"})
        return (w["energy_weight"], w["forces_weight"], w["stress_weight"])

    def maybe_start_stage_two(self) -> None:
        """Switch to the second-stage loss weights when the progress reaches ``stage_two['start']``; the best
        model is then chosen among second-stage validations only (their loss is another function)."""
        s, st = self.state, self.cfg.stage_two
        if st is None or s["stage"] == 2 or self.schedule.progress(s["step"], self.now) < st["start"]:
            return
        s["stage"], s["best_loss"], s["bad_validations"] = 2, math.inf, 0
        self.weights = self.stage_weights(2)
        self.schedule.best, self.schedule.num_bad = math.inf, 0

    def after_step(self, loss: float) -> Optional[str]:
        """Progress, callback, in-epoch validation, checkpoint and limits after a step; a stop reason or None."""
        s, cfg = self.state, self.cfg
        lr = self.opt.param_groups[0]["lr"]
        self.bar.set_postfix(loss=f"{loss:.3g}", F_mae=f"{self.last_row.get('valid_forces_mae_meV_per_A', math.nan):.1f}",
                             lr=f"{lr:.2g}", refresh=False)
        stop = None
        if self.callback is not None and self.callback(
                {"step": s["step"], "epoch": s["epoch"], "batch": s["batch"], "loss": loss, "lr": lr}):
            stop = "callback"
        if cfg.valid_max_steps and s["step"] % cfg.valid_max_steps == 0:
            self.last_row = self.validate()
        if s["step"] % cfg.checkpoint_every == 0:
            self.checkpoint()
        if cfg.max_steps is not None and s["step"] >= cfg.max_steps:
            stop = stop or "max_steps"
        if cfg.max_time is not None and self.now >= cfg.max_time:
            stop = stop or "max_time"
        return stop

    def run_epoch(self) -> Optional[str]:
        """Steps from the current position to the end of the epoch (or a stop); a stop reason or None."""
        batches = self.batches(self.state["epoch"])
        while self.state["batch"] < len(batches):
            loss = self.step(batches[self.state["batch"]])
            stop = self.after_step(loss)
            if stop is not None:
                return stop
        return None

    def end_epoch(self, stop: Optional[str]) -> Optional[str]:
        """Count the epoch, validate when due and apply early stopping / the LR floor."""
        s, cfg = self.state, self.cfg
        s["epoch"] += 1
        s["batch"] = 0
        self.bar.update(1)
        if s["epoch"] % cfg.valid_every == 0 or stop is not None or s["epoch"] >= cfg.max_epochs:
            self.last_row = row = self.validate()
            self.bar.set_postfix(loss=f"{row['train_loss']:.3g}", F_mae=f"{row['valid_forces_mae_meV_per_A']:.1f}",
                                 lr=f"{self.opt.param_groups[0]['lr']:.2g}")
            s["epoch_loss_sum"], s["epoch_loss_n"] = 0.0, 0
            if s["bad_validations"] >= cfg.early_stopping_patience:
                stop = stop or "early_stopping"
            if self.schedule.at_minimum() and s["bad_validations"] >= cfg.plateau_patience:
                stop = stop or "lr_below_min"
        return stop

    def run(self) -> str:
        """Train until a limit is reached; returns the stop reason."""
        from tqdm.auto import tqdm

        from .._runtime import quiet_progress

        s, cfg = self.state, self.cfg
        self.t_run, self.elapsed_base = time.perf_counter(), float(s["elapsed"])
        show = cfg.progress and not quiet_progress() and self.dist.is_main
        self.bar = tqdm(total=cfg.max_epochs, initial=s["epoch"], desc="train", unit="epoch", disable=not show,
                        dynamic_ncols=True)
        self.last_row = s["history"][-1] if s["history"] else {}
        stop = s["stopped"]
        if s["bad_validations"] >= cfg.early_stopping_patience:
            stop = stop or "early_stopping"
        self.model.train()
        while stop is None and s["epoch"] < cfg.max_epochs:
            stop = self.run_epoch()
            if s["batch"] >= self.n_batches:
                stop = self.end_epoch(stop)
            elif stop is not None and s["epoch_loss_n"] > 0:
                self.last_row = self.validate()  # stopped mid-epoch: validate what we have
        self.bar.close()
        return stop or "max_epochs"

    def finish(self, stop: str) -> TrainResult:
        """Final checkpoint; the best EMA weights as the result model."""
        s = self.state
        s["stopped"] = stop
        self.checkpoint()
        best = EquivariantPotential(self.mcfg).to(self.dtype)
        best.load_state_dict(s["best_state"] if s["best_state"] is not None else self.ema.model.state_dict())
        best = best.to(self.device).eval()
        finish_distributed(self.dist)
        return TrainResult(
            model_path=self.out, model=best, history=list(s["history"]), best_valid=dict(s["best_valid"]),
            steps=s["step"], epochs=s["epoch"], stop_reason=stop, wall_time_s=time.perf_counter() - self.t_start,
            statistics=self.stats,
        )


def train_potential(
    train_frames: Sequence,
    valid_frames: Sequence,
    out: Optional[str | Path] = None,
    config: Optional[TrainConfig] = None,
    resume: bool = True,
    callback: Optional[Callable[[dict], Optional[bool]]] = None,
) -> TrainResult:
    """Train an :class:`EquivariantPotential` on labelled ``ase.Atoms`` frames.

    Frames may mix elements, cell sizes, periodic and non-periodic structures; stress labels are
    used for fully periodic frames (a stress label on another frame is a ``ValueError``).
    ``out`` is the model file (best EMA weights); its ``.ckpt`` and ``.metrics.csv`` siblings are
    written too. With ``resume=True`` an existing checkpoint for the same data and settings is
    continued. ``callback(info)`` is called after each optimisation step (``info`` holds
    ``step``, ``epoch``, ``batch``, ``loss``, ``lr``); returning ``True`` stops training cleanly
    (``stop_reason == "callback"``), raising interrupts it.

    Example
    -------
    >>> from sciml.potentials import train_potential, TrainConfig
    >>> res = train_potential(train, valid, "model.pt", TrainConfig(max_time=600))  # doctest: +SKIP
    >>> res.best_valid["forces_mae_meV_per_A"]  # doctest: +SKIP
    """
    cfg = (config or TrainConfig()).validate()
    run = _TrainingRun(train_frames, valid_frames, out, cfg, callback)
    if resume:
        run.restore()
    return run.finish(run.run())
