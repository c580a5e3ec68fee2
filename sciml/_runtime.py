"""Seeding and device choice shared by the torch-based submodules."""
from __future__ import annotations

import os
import random


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and torch (if imported) random generators."""
    if seed is None:
        return
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import numpy as np

    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


def resolve_device(device: str | None = None) -> "torch.device":  # noqa: F821
    """Return a ``torch.device``: ``None``/``"auto"`` picks CUDA when available, else CPU.

    Asking for ``"cuda"`` on a machine without CUDA raises a clear ``ValueError``.
    """
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


def quiet_progress() -> bool:
    """True when progress bars should be hidden (env ``SCIML_QUIET=1``)."""
    return os.environ.get("SCIML_QUIET", "") not in ("", "0", "false", "False")
