"""Optimiser (Adam/AdamW), learning-rate schedule (plateau, cosine over the training progress, warmup)
and the exponential moving average (EMA) of the weights that training keeps and validates.

The schedule is stateless apart from three numbers (``state_dict``), so a resumed run continues
exactly where it stopped.
"""
from __future__ import annotations

import copy
import math
from typing import Iterable, Optional

import torch

from .train_config import TrainConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (``cfg.optimizer == "adam"``) or AdamW (decoupled weight decay) at ``cfg.lr``.

    Example
    -------
    >>> opt = build_optimizer(model.parameters(), TrainConfig(optimizer="adamw"))  # doctest: +SKIP
    """
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(list(params), lr=cfg.lr, weight_decay=cfg.effective_weight_decay)


class LRSchedule:
    """Learning rate of every step: ``warmup(step) * base``, where ``base`` is

    - ``"cosine"``: ``min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2`` with ``p`` the training progress
      in [0, 1] (the largest of step/max_steps, seconds/max_time, step/(max_epochs * steps per epoch));
    - ``"plateau"``: ``lr``, multiplied by ``plateau_factor`` (not below ``min_lr``) whenever the
      validation loss has not improved by a relative 1e-4 for more than ``plateau_patience`` validations;
    - ``"none"``: ``lr``.

    ``warmup(step) = min(1, (step + 1) / warmup_steps)`` (1 without warmup).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.opt = optimizer
        self.cfg = cfg
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.base_lr = float(cfg.lr)
        self.best = math.inf
        self.num_bad = 0

    def progress(self, step: int, seconds: float) -> float:
        """Fraction of the training done: the largest fraction of any limit (capped at 1)."""
        c = self.cfg
        fr = [step / (c.max_epochs * self.steps_per_epoch)]
        if c.max_steps:
            fr.append(step / c.max_steps)
        if c.max_time:
            fr.append(seconds / c.max_time)
        return min(max(fr), 1.0)

    def lr_at(self, step: int, seconds: float) -> float:
        """The learning rate for optimiser step number ``step`` (0-based) after ``seconds`` of training."""
        c = self.cfg
        if c.scheduler == "cosine":
            p = self.progress(step, seconds)
            base = c.min_lr + (c.lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        else:
            base = self.base_lr
        if c.warmup_steps:
            base *= min(1.0, (step + 1) / c.warmup_steps)
        return base

    def before_step(self, step: int, seconds: float) -> float:
        """Set the optimiser's learning rate for the coming step; returns it."""
        lr = self.lr_at(step, seconds)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def after_validation(self, loss: float) -> None:
        """Plateau logic (a no-op for the other schedulers)."""
        if self.cfg.scheduler != "plateau":
            return
        if loss < self.best * (1.0 - 1e-4):
            self.best, self.num_bad = loss, 0
        else:
            self.num_bad += 1
        if self.num_bad > self.cfg.plateau_patience:
            self.base_lr = max(self.base_lr * self.cfg.plateau_factor, self.cfg.min_lr)
            self.num_bad = 0

    def at_minimum(self) -> bool:
        """True when the plateau schedule has reached ``min_lr``."""
        return self.cfg.scheduler == "plateau" and self.base_lr <= self.cfg.min_lr * 1.0001

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "best": self.best, "num_bad": self.num_bad}

    def load_state_dict(self, d: Optional[dict]) -> None:
        if d:
            self.base_lr, self.best, self.num_bad = float(d["base_lr"]), float(d["best"]), int(d["num_bad"])


class ExponentialMovingAverage:
    """A copy of the model whose weights follow ``w_ema <- d w_ema + (1 - d) w`` after every step,
    with ``d = min(decay, (1 + step) / (10 + step))`` (short memory at the start)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for pe, p in zip(self.model.parameters(), model.parameters()):
            pe.mul_(d).add_(p.detach(), alpha=1.0 - d)
