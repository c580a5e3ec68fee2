"""Data-parallel training with 2 gloo processes matches single-process training (same global batch)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pandas as pd
import pytest
import torch

from sciml.atoms import write_frames
from sciml.potentials import load_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory, ethanol_frames):
    d = tmp_path_factory.mktemp("ddp")
    write_frames(d / "train.extxyz", ethanol_frames[:14])  # 14 frames, batch 4: last batch has 2
    write_frames(d / "valid.extxyz", ethanol_frames[100:105])
    (d / "cfg.yaml").write_text(
        "batch_size: 4\nmax_epochs: 3\nlr: 0.005\nmodel: {num_channels: 8, cutoff: 4.0, radial_hidden: 8}\n"
    )
    return d


def _train_args(d, out):
    return ["potential", "train", "--train", str(d / "train.extxyz"), "--valid", str(d / "valid.extxyz"),
            "--out", str(out), "--config", str(d / "cfg.yaml"), "--threads", "1", "--quiet", "--no-resume"]


def _env():
    env = dict(os.environ)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_ID"):
        env.pop(k, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _compare(single_dir, multi_dir):
    a = pd.read_csv(single_dir / "model.metrics.csv")
    b = pd.read_csv(multi_dir / "model.metrics.csv")
    assert len(a) == len(b) == 3
    for col in ("train_loss", "valid_loss", "valid_forces_mae_meV_per_A"):
        pd.testing.assert_series_equal(a[col], b[col], rtol=1e-7, check_exact=False)
    ma, mb = load_model(single_dir / "model.pt"), load_model(multi_dir / "model.pt")
    for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=1e-6, atol=1e-9), k


@pytest.fixture(scope="module")
def single(data):
    out = data / "single" / "model.pt"
    subprocess.run([sys.executable, "-m", "sciml", *_train_args(data, out)], check=True, env=_env(), timeout=300)
    return out.parent


def test_torchrun_two_gloo_processes_match_single_process(data, single):
    out = data / "torchrun" / "model.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "sciml", *_train_args(data, out)]
    subprocess.run(cmd, check=True, env=_env(), timeout=300)
    _compare(single, out.parent)
    assert sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")) == [
        "model.ckpt", "model.metrics.csv", "model.pt"]


def test_srun_style_environment_two_processes(data, single):
    """What srun provides (SLURM_PROCID/SLURM_NTASKS + MASTER_ADDR), without a Slurm cluster."""
    out = data / "srun" / "model.pt"
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = _env()
        env.update(SLURM_NTASKS="2", SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_STEP_ID="0",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(subprocess.Popen([sys.executable, "-m", "sciml", *_train_args(data, out)], env=env))
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0]
    _compare(single, out.parent)
