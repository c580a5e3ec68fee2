"""Training settings (:class:`TrainConfig`): one dataclass, validated in one place.

The loss of a batch (in ASE units; see :mod:`sciml.potentials.loss`) is

``L = energy_weight * mean_b((E_b - E*_b) / N_b)^2 + forces_weight * mean_{atoms, xyz}(F - F*)^2
+ stress_weight * mean_{periodic b, 3x3}(sigma - sigma*)^2``

with energies per atom in eV/atom, forces in eV/Å and stress in eV/Å^3, so the weights carry units
(eV/Å^3 is 160 GPa: a stress error of 0.03 GPa is 1.9e-4 eV/Å^3).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

from .model import _DTYPES, ModelConfig


@dataclass
class TrainConfig:
    """Training settings (YAML keys of ``--config`` must match these fields; ``model`` holds
    :class:`~sciml.potentials.model.ModelConfig` fields except ``species``).

    Optimiser and schedule: ``optimizer`` "adam" or "adamw" (``weight_decay`` defaults to 0 for
    Adam and 0.01 for AdamW when left at ``None``); ``scheduler`` "cosine" lowers the learning rate
    from ``lr`` to ``min_lr`` along half a cosine of the training *progress*: the largest of
    step/``max_steps``, elapsed/``max_time`` and epoch/``max_epochs`` (so with a wall-clock budget
    the rate reaches ``min_lr`` when the budget ends); "plateau" multiplies it by
    ``plateau_factor`` after ``plateau_patience`` validations without improvement; "none" keeps it.
    ``warmup_steps`` ramps the rate linearly from 0 at the start (any scheduler).
    The model kept is the EMA (``ema_decay``) of the weights with the lowest validation loss;
    ``early_stopping_patience`` validations without improvement end training.

    Loss weights can change once (a second training stage, as MACE's "stage two"):
    ``stage_two = {"start": 0.75, "energy_weight": 1000.0, "stress_weight": 1e5}`` switches to the
    given weights (others unchanged) when the training progress (as for the cosine schedule)
    reaches ``start``; the model kept is then the best of the second stage.
    """

    model: dict = field(default_factory=dict)
    batch_size: int = 5
    lr: float = 0.01
    optimizer: str = "adam"  # adam | adamw
    weight_decay: Optional[float] = None  # None: 0 for adam, 0.01 for adamw
    scheduler: str = "plateau"  # plateau | cosine | none
    plateau_factor: float = 0.5
    plateau_patience: int = 5  # validations without improvement before the LR drops
    min_lr: float = 1e-5
    warmup_steps: int = 0
    max_epochs: int = 1000
    max_steps: Optional[int] = None
    max_time: Optional[float] = None  # seconds of wall-clock for this invocation
    energy_weight: float = 1.0  # on (eV/atom)^2
    forces_weight: float = 100.0  # on (eV/Å)^2
    stress_weight: float = 10.0  # on (eV/Å^3)^2
    stage_two: Optional[dict] = None  # {"start": progress fraction, "energy_weight"/"forces_weight"/"stress_weight"}
    ema_decay: float = 0.99
    early_stopping_patience: int = 30  # validations without improvement
    valid_every: int = 1  # epochs
    valid_max_steps: Optional[int] = None  # also validate every N steps (useful for large sets)
    checkpoint_every: int = 100  # steps
    seed: int = 0
    dtype: str = "float64"
    device: Optional[str] = None
    progress: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a mapping; unknown keys raise a ``ValueError`` listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s) {unknown}; known keys: {sorted(known)}")
        cfg = cls(**d)
        return cfg.validate()

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        """Read a YAML mapping of :class:`TrainConfig` keys (``model: {...}`` for the network)."""
        import yaml

        with open(path) as fh:
            d = yaml.safe_load(fh) or {}
        if not isinstance(d, dict):
            raise ValueError(f"config file {str(path)!r} must contain a mapping of keys to values")
        return cls.from_dict(d)

    @property
    def effective_weight_decay(self) -> float:
        """The weight decay used: ``weight_decay`` or, when ``None``, 0 (Adam) / 0.01 (AdamW)."""
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.01 if self.optimizer == "adamw" else 0.0

    def validate(self) -> "TrainConfig":
        """Check every setting; raise ``ValueError`` naming the first bad key."""
        mknown = {f.name for f in fields(ModelConfig)} - {"species"}
        bad = sorted(set(self.model) - mknown)
        if bad:
            raise ValueError(f"unknown model config key(s) {bad}; known keys: {sorted(mknown)}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(f"scheduler must be 'plateau', 'cosine' or 'none', got {self.scheduler!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        for name in ("batch_size", "max_epochs", "checkpoint_every", "valid_every", "early_stopping_patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {self.max_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must be in [0, lr={self.lr}], got {self.min_lr!r}")
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0 or None, got {self.weight_decay!r}")
        for name in ("energy_weight", "forces_weight", "stress_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.stage_two is not None:
            st = self.stage_two
            allowed = {"start", "energy_weight", "forces_weight", "stress_weight"}
            if not isinstance(st, dict) or "start" not in st or set(st) - allowed:
                raise ValueError(f"stage_two must be a mapping with 'start' and optional weights {sorted(allowed - {'start'})}, "
                                 f"got {st!r}")
            if not 0.0 < st["start"] < 1.0:
                raise ValueError(f"stage_two['start'] must be a progress fraction in (0, 1), got {st['start']!r}")
            for k in allowed - {"start"}:
                if k in st and not st[k] >= 0:
                    raise ValueError(f"stage_two[{k!r}] must be >= 0, got {st[k]!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time must be positive seconds, got {self.max_time!r}")
        return self
