"""Shared tiny models and data for the potentials tests (float64, fixed seeds)."""
from __future__ import annotations

import pytest
import torch

from potentials_testlib import tiny_model

# Tiny graphs gain nothing from intra-op threads, and on a shared 2-core machine two threads
# oversubscribe the cores (8x slower measured); keep the tests single-threaded.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mol_model():
    return tiny_model()


@pytest.fixture(scope="session")
def cu_model():
    return tiny_model(species=(29,), cutoff=4.5)


@pytest.fixture(scope="session")
def ethanol_frames():
    from sciml.datasets import load_pes

    return load_pes("ethanol_gfn2_500K", index=":200")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, ethanol_frames):
    """A briefly trained ethanol model (about 10 s on one core)."""
    from sciml.potentials import TrainConfig, train_potential

    out = tmp_path_factory.mktemp("trained") / "model.pt"
    train, valid = ethanol_frames[:40], ethanol_frames[150:170]
    cfg = TrainConfig(model=dict(num_channels=16, cutoff=4.0, radial_hidden=16), batch_size=4, lr=0.01,
                      max_epochs=12, progress=False, seed=0, checkpoint_every=50)
    res = train_potential(train, valid, out, cfg, resume=False)
    return {"result": res, "path": out, "train": train, "valid": valid, "config": cfg}
