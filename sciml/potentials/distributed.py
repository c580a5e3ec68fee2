"""Data-parallel training support: join a process group under torchrun or srun, all-reduce sums.

When ``WORLD_SIZE`` (torchrun) or ``SLURM_NTASKS`` (srun) is > 1 every process takes a strided
share of each global batch; gradients are all-reduced (summed with the global normalisation, so
the update equals single-process training with the same global batch); only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class DistInfo:
    """Rank, world size and local rank of this process (a single process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join a process group when launched by ``torchrun`` or ``srun`` (otherwise single process).

    torchrun sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT. Under srun we read
    SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID; MASTER_ADDR must be set (e.g. in the sbatch script:
    ``export MASTER_ADDR=$(scontrol show hostnames $SLURM_NODELIST | head -n1)``), MASTER_PORT
    defaults to 29500. Backend: gloo on CPU, NCCL on CUDA.

    Example
    -------
    >>> init_distributed("cpu").world  # outside torchrun/srun  # doctest: +SKIP
    1
    """
    import torch.distributed as dist

    env = os.environ
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(env.get("LOCAL_RANK", 0)), False)
    if int(env.get("WORLD_SIZE", "1")) > 1:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    elif int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env and "SLURM_STEP_ID" in env:
        rank, world, local = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0))
        if "MASTER_ADDR" not in env:
            addr = env.get("SLURM_LAUNCH_NODE_IPADDR")
            if not addr:
                raise ValueError("srun launch: set MASTER_ADDR to the first node's address")
            os.environ["MASTER_ADDR"] = addr
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    else:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return DistInfo(rank, world, local, True)


def all_reduce_(t: torch.Tensor, dist_info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over all processes in place (a no-op for a single process); returns ``t``."""
    if dist_info.world > 1:
        import torch.distributed as dist

        if dist.get_backend() == "nccl" and t.device.type != "cuda":  # NCCL reduces CUDA tensors only
            on_gpu = t.to(torch.device("cuda", torch.cuda.current_device()))
            dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
            t.copy_(on_gpu.to(t.device))
        else:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_grads_(params: Sequence[torch.nn.Parameter], dist_info: DistInfo) -> None:
    """Sum the gradients of ``params`` over all processes (one flat all-reduce)."""
    if dist_info.world <= 1:
        return
    flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype,
                      device=p.device) for p in params])
    all_reduce_(flat, dist_info)
    o = 0
    for p in params:
        n = p.numel()
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.copy_(flat[o : o + n].view_as(p))
        o += n


def max_over_ranks(value: float, dist_info: DistInfo) -> float:
    """The largest ``value`` over all processes (every rank gets the same number), e.g. a clock reading,
    so that decisions taken from it (stop at the time budget, the learning rate) agree on every rank."""
    if dist_info.world <= 1:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def finish_distributed(dist_info: DistInfo) -> None:
    """Leave the process group if :func:`init_distributed` created it."""
    if dist_info.initialized_here:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
