#!/usr/bin/env python
"""One short GPU check of sciml.potentials (prepared for a lent GPU machine; about 8 minutes).

1. trains for ``--train-seconds`` (default 120) on the bundled alloy subset with ``--device cuda``
   (the ``sciml potential train`` code path), then evaluates the held-out trajectories on the GPU;
2. data-parallel smoke test: ``torchrun --nproc_per_node=<GPUs>`` training for one epoch with NCCL;
3. MD throughput (ASE velocity Verlet, ``SciMLCalculator(device="cuda")``) at 10^3, 10^4 and 10^5
   atoms in float32 and float64, with the GPU's peak memory and where the neighbour list ran.

Writes one JSON (``--out``, default ``results/gpu_check.json``). Exits 2 with a message when no
CUDA device is visible.

    python workflows/benchmarks/gpu_check.py --out "$OUT/gpu_check.json"
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from potentials_scale import alloy_cell  # noqa: E402

MD_SIZES = {"1008": (6, 6, 7), "10192": (14, 14, 13), "100920": (29, 29, 30)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-seconds", type=float, default=120.0)
    p.add_argument("--md-steps", type=int, default=10)
    p.add_argument("--workdir", default=str(bc.WORK_DIR / "gpu_check"))
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "gpu_check.json"))
    a = p.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; nothing to do", file=sys.stderr)
        return 2
    from ase.io import write

    from sciml.atoms import split_by_trajectory
    from sciml.datasets import load_alloys
    from sciml.potentials import SciMLCalculator, TrainConfig, evaluate, load_model, train_potential

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"run": bc.run_info(), "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0),
                 "n_gpus": torch.cuda.device_count()}

    def save() -> None:
        bc.write_json(a.out, res, echo=False)

    # 1. training and evaluation on the GPU
    train, valid, test = split_by_trajectory(load_alloys(), 140, 20, seed=0)
    model_path = work / "alloy_gpu.pt"
    t0 = time.perf_counter()
    tr = train_potential(train, valid, model_path,
                         TrainConfig(device="cuda", max_time=a.train_seconds, progress=False, seed=0), resume=False)
    res["train"] = {"wall_s": time.perf_counter() - t0, "result": tr.to_dict(), "n_train": len(train)}
    model = load_model(model_path, device="cuda")
    res["eval_test_cuda"] = evaluate(model, test)
    save()

    # 2. DDP with NCCL (one process per visible GPU), one epoch
    write(work / "train.extxyz", train)
    write(work / "valid.extxyz", valid)
    cmd = ["torchrun", f"--nproc_per_node={torch.cuda.device_count()}", "-m", "sciml", "potential", "train",
           "--train", str(work / "train.extxyz"), "--valid", str(work / "valid.extxyz"),
           "--out", str(work / "ddp.pt"), "--device", "cuda", "--max-epochs", "1", "--quiet", "--no-resume"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    res["ddp_nccl"] = {"command": " ".join(cmd), "returncode": r.returncode, "wall_s": time.perf_counter() - t0,
                       "tail": (r.stdout + r.stderr)[-1500:]}
    save()

    # 3. MD throughput on the GPU
    res["md"] = []
    for name, rep in MD_SIZES.items():
        atoms = alloy_cell(rep)
        for dt in ("float32", "float64"):
            torch.cuda.reset_peak_memory_stats()
            calc = SciMLCalculator(str(model_path), device="cuda", dtype=dt)
            try:
                row = bc.md_throughput(calc, atoms, steps=a.md_steps, warmup=2, repeats=3)
            except RuntimeError as exc:  # e.g. out of GPU memory: record, go on
                row = {"n_atoms": len(atoms), "error": str(exc)[:500]}
            row.update(dtype=dt, neighbor_list_device=calc.neighbor_list_device,
                       gpu_peak_memory_MiB=torch.cuda.max_memory_allocated() / 2**20)
            res["md"].append(row)
            print(json.dumps(row), flush=True)
            save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
