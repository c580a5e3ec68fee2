"""Shared fixtures for the sciml.gp tests: one torch thread (the machine is shared)."""
from __future__ import annotations

import pytest
import torch
from ase import Atoms

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ethanol_frames() -> list[Atoms]:
    """60 frames of the bundled ethanol GFN2-xTB set."""
    from sciml.datasets import load_pes

    return load_pes("ethanol_gfn2_500K", index=":60")
