"""Test workflow: one job per value computing ``scale * x**power``; the report sums them.

Knobs make jobs fail (raise while a marker file exists) or die (SIGKILL their own process,
so no error.json is written) to exercise failure reporting and resubmission.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from sciml._io import atomic_write_json, atomic_write_text
from sciml.workflows.engine import Job


@dataclass
class Config:
    values: list[int] = field(default_factory=lambda: [1, 2, 3])
    power: int = 2
    scale: float = 1.0
    fail_values: list[int] = field(default_factory=list)
    fail_marker: str | None = None
    die_values: list[int] = field(default_factory=list)
    gpu: bool = False
    label: str = "squares"
    sleep_s: float = 0.0
    allreduce: bool = False

    def __post_init__(self) -> None:
        if self.power < 0:
            raise ValueError(f"power must be >= 0, got {self.power}")


def demo_config() -> Config:
    return Config(values=[1, 2], power=3)


def power_job(x: int, power: int, scale: float, fail: bool, fail_marker: str | None, die: bool,
              workdir: Path, sleep_s: float = 0.0, allreduce: bool = False) -> dict:
    with open(workdir / "calls.txt", "a") as fh:  # counts executions (idempotency tests)
        fh.write(f"{os.getpid()}\n")
    print(f"computing {x}**{power}")
    time.sleep(sleep_s)
    if die:
        os.kill(os.getpid(), signal.SIGKILL)
    if fail and (fail_marker is None or Path(fail_marker).exists()):
        raise RuntimeError(f"job for x={x} failed on purpose")
    (workdir / "model.txt").write_text(f"{x}\n")
    extra = {}
    if allreduce:  # a DDP-style step: every rank joins a gloo group through the env the engine sets
        import torch
        import torch.distributed as dist

        rank, world = int(os.environ.get("SLURM_PROCID", 0)), int(os.environ.get("SLURM_NTASKS", 1))
        dist.init_process_group("gloo", rank=rank, world_size=world, init_method="env://")
        t = torch.tensor([float(rank + 1)])
        dist.all_reduce(t)
        dist.destroy_process_group()
        print(f"rank {rank} of {world}: allreduce {t.item()}")
        extra = {"world": world, "allreduce": t.item(), "master_port": os.environ["MASTER_PORT"]}
    return {**extra, "x": x, "y": scale * x**power, "host": socket.gethostname(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), "gpus": os.environ.get("SLURM_GPUS_ON_NODE"),
            "slurm_array": "{}_{}".format(os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID"))}


def plan(cfg: Config) -> list[Job]:
    return [
        Job(f"x{v}", power_job, {"x": v, "power": cfg.power, "scale": cfg.scale, "fail": v in cfg.fail_values,
                                 "fail_marker": cfg.fail_marker, "die": v in cfg.die_values, **({"sleep_s": cfg.sleep_s} if cfg.sleep_s else {}),
                                 **({"allreduce": True} if cfg.allreduce else {})},
            gpu=cfg.gpu)
        for v in cfg.values
    ]


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    total = sum(r["y"] for r in results.values())
    metrics = {"n_jobs": len(results), "total": total, "label": cfg.label}
    atomic_write_json(out / "metrics.json", metrics)
    rows = "\n".join(f"{n},{r['x']},{r['y']}" for n, r in sorted(results.items()))
    atomic_write_text(out / "values.csv", "job,x,y\n" + rows + "\n")
    atomic_write_text(out / "report.md", f"# {cfg.label}\n\nTotal: {total}\n")
    return metrics
