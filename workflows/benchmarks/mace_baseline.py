"""MACE baseline for the sciml.potentials benchmarks (ethanol: issue 4; multi-element alloys: issue 14).

Run with the MACE virtual environment (mace-torch pins e3nn 0.4.4, so it lives
apart from sciml's e3nn 0.6):

    python3 -m venv --system-site-packages .venv-mace
    .venv-mace/bin/pip install mace-torch        # reuses the system torch 2.13.0+cpu
    .venv-mace/bin/python workflows/benchmarks/mace_baseline.py \\
        --train T.extxyz --valid V.extxyz --test TEST.extxyz \\
        --workdir bench-data/mace --max-time 600 --threads 1 --out mace.json

Training is MACE's own pipeline (``mace.cli.run_train.run``, i.e. exactly what
``mace_run_train`` does) with the arguments listed in ``mace_args`` below; the
only addition is a wall-clock budget, which MACE lacks: the clock starts at the
first optimiser step, and once ``--max-time`` seconds have passed the next step
is not taken. At that point the current EMA weights are scored on the
validation set and kept if they beat MACE's best checkpoint (MACE itself keeps
the EMA weights of the best validation epoch). MACE then writes its model file
as usual, and this script measures:

* test energy / force (/ stress) MAE and RMSE (meV, meV/atom, meV/Å, GPa) with the MACE ASE calculator
  (``--phase test`` stops here);
* parameter count;
* MD throughput (velocity Verlet, ASE) for one ethanol and a periodic 27-ethanol box;
* time of one energy+forces evaluation per atom for growing periodic ethanol boxes.

Default "small" configuration (documented in the JSON output): 32 channels,
max_L=1 (hidden irreps 32x0e+32x1o), correlation order 3, 2 interactions,
spherical harmonics up to l=3, 8 Bessel radial functions, r_max 5 Å, radial MLP
[64, 64, 64], loss ``weighted`` (energy weight 1, forces weight 100: MACE's
defaults), Adam (amsgrad) lr 0.01, batch 10, EMA 0.99, ReduceLROnPlateau, E0s
by least squares ("average"). Training dtype float64 (MACE's default);
inference is measured in float64 and float32. For periodic data with stress labels use
``--loss stress --stress-weight W`` (MACE's loss for energy + forces + stress: the same three
mean-squared terms, energy per atom, forces per component, stress per component in eV/Å^3,
as sciml's loss, so equal weights mean an equal objective).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


class _BudgetExhausted(Exception):
    pass


def _install_budget(max_time: float, info: dict) -> None:
    """Patch MACE's training loop so that it stops after ``max_time`` seconds of training."""
    import numpy as np
    import mace.tools
    from contextlib import nullcontext

    tmod = sys.modules["mace.tools.train"]
    orig_take_step = tmod.take_step
    orig_train_one_epoch = tmod.train_one_epoch
    orig_evaluate = tmod.evaluate
    orig_train = tmod.train
    info.update(steps=0, epochs_started=0, valid_losses=[], t_start=None)

    def take_step(*a, **k):
        now = time.perf_counter()
        if info["t_start"] is None:
            info["t_start"] = now
        elif now - info["t_start"] >= max_time:
            raise _BudgetExhausted
        info["steps"] += 1
        return orig_take_step(*a, **k)

    def train_one_epoch(*a, **k):
        info["epoch"] = k.get("epoch")
        info["epochs_started"] += 1
        return orig_train_one_epoch(*a, **k)

    def evaluate(*a, **k):
        out = orig_evaluate(*a, **k)
        if info["epochs_started"] > 0:  # MACE's checkpointing only considers in-loop evaluations
            info["valid_losses"].append(float(out[0]))
        return out

    def train(**kw):
        try:
            return orig_train(**kw)
        except _BudgetExhausted:
            info["t_train"] = time.perf_counter() - info["t_start"]
            ema = kw.get("ema")
            ctx = ema.average_parameters() if ema is not None else nullcontext()
            with ctx:
                losses = [
                    float(orig_evaluate(model=kw["model"], loss_fn=kw["loss_fn"], data_loader=dl,
                                        output_args=kw["output_args"], device=kw["device"])[0])
                    for dl in kw["valid_loaders"].values()
                ]
                best = min(info["valid_losses"], default=np.inf)
                info["final_partial_epoch_valid_loss"] = losses[-1]
                if losses[-1] < best:
                    info["kept"] = "weights at the budget (better than best checkpoint)"
                    kw["checkpoint_handler"].save(
                        state=mace.tools.CheckpointState(kw["model"], kw["optimizer"], kw["lr_scheduler"]),
                        epochs=int(info.get("epoch") or 0) + 1,
                        keep_last=False,
                    )
                else:
                    info["kept"] = "best-validation checkpoint"
        else:
            info["t_train"] = time.perf_counter() - info["t_start"]
            info["kept"] = "best-validation checkpoint (max epochs reached)"

    tmod.take_step = take_step
    tmod.train_one_epoch = train_one_epoch
    tmod.evaluate = evaluate
    mace.tools.train = train  # run_train calls ``tools.train(...)``


def mace_args(a, workdir: Path) -> list[str]:
    return [
        "--name", "mace_small",
        "--seed", str(a.seed),
        "--train_file", str(a.train),
        "--valid_file", str(a.valid),
        "--energy_key", a.energy_key,
        "--forces_key", a.forces_key,
        "--E0s", "average",
        "--model", "MACE",
        "--num_channels", str(a.channels),
        "--max_L", str(a.max_L),
        "--correlation", str(a.correlation),
        "--num_interactions", str(a.num_interactions),
        "--max_ell", str(a.max_ell),
        "--num_radial_basis", "8",
        "--r_max", str(a.r_max),
        "--batch_size", str(a.batch_size),
        "--valid_batch_size", "20",
        "--lr", "0.01",
        "--loss", a.loss,
        "--energy_weight", str(a.energy_weight),
        "--forces_weight", str(a.forces_weight),
        *(["--stress_weight", str(a.stress_weight), "--stress_key", "stress", "--compute_stress", "True"]
          if a.loss == "stress" else []),
        "--ema", "--ema_decay", "0.99",
        "--amsgrad",
        "--scheduler", "ReduceLROnPlateau",
        "--eval_interval", "1",
        "--max_num_epochs", "100000",
        "--default_dtype", a.dtype,
        "--device", "cpu",
        "--error_table", "PerAtomMAEstressvirials" if a.loss == "stress" else "TotalMAE",
        "--plot", "False",
        "--save_cpu",
        "--work_dir", str(workdir),
        "--model_dir", str(workdir),
        "--log_dir", str(workdir / "logs"),
        "--checkpoints_dir", str(workdir / "checkpoints"),
        "--results_dir", str(workdir / "results"),
    ]


def train(a, workdir: Path) -> dict:
    from mace import tools
    from mace.cli.run_train import run

    info: dict = {}
    _install_budget(a.max_time, info)
    args = mace_args(a, workdir)
    parsed = tools.build_default_arg_parser().parse_args(args)
    before = bc.loadavg()
    t0 = time.perf_counter()
    run(parsed)
    wall = time.perf_counter() - t0
    return {
        "mace_run_train_args": args,
        "max_time_s": a.max_time,
        "train_seconds": info.get("t_train"),
        "wall_seconds_including_setup_and_final_tables": wall,
        "optimizer_steps": info["steps"],
        "epochs_started": info["epochs_started"],
        "best_valid_loss": min(info["valid_losses"], default=None),
        "valid_loss_trace": info["valid_losses"],
        "weights_kept": info.get("kept"),
        "loadavg_before": before,
        "loadavg_after": bc.loadavg(),
    }


def test_only(a, model_path: Path) -> dict:
    """Parameter count and test-set errors (float64 calculator), no speed measurements."""
    import torch
    from mace.calculators import MACECalculator

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float64")
    return {"n_parameters": int(sum(p.numel() for p in model.parameters())), "model_file": str(model_path),
            "test": bc.test_errors(calc, a.test)}


def bench(a, model_path: Path) -> dict:
    import torch
    from mace.calculators import MACECalculator

    model = torch.load(model_path, map_location="cpu", weights_only=False)
    n_params = int(sum(p.numel() for p in model.parameters()))
    out: dict = {"n_parameters": n_params, "model_file": str(model_path)}

    calc64 = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype="float64")
    out["test"] = bc.test_errors(calc64, a.test)
    print("test:", out["test"], flush=True)

    for dtype in a.md_dtypes:
        calc = calc64 if dtype == "float64" else MACECalculator(model_paths=str(model_path), device="cpu", default_dtype=dtype)
        res = {
            "md_ethanol": bc.md_throughput(calc, bc.ethanol(), steps=a.md_steps_small),
            "md_27_ethanol_box": bc.md_throughput(calc, bc.ethanol_box(3), steps=a.md_steps_box),
            "eval_scaling": bc.eval_scaling(calc, ns_per_side=a.scaling_sizes),
        }
        out[f"inference_{dtype}"] = res
        print(dtype, {k: v for k, v in res.items() if k != "eval_scaling"}, flush=True)
    torch.set_default_dtype(torch.float64)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--out", help="JSON result file (also printed)")
    p.add_argument("--phase", choices=["all", "train", "test", "bench"], default="all",
                   help="train; test (test-set errors only); bench (test errors + speed); all (train + bench)")
    p.add_argument("--max-time", type=float, default=600.0, help="training wall-clock budget (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="training dtype")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--max-L", dest="max_L", type=int, default=1)
    p.add_argument("--r-max", dest="r_max", type=float, default=5.0)
    p.add_argument("--correlation", type=int, default=3, help="MACE body order - 1 of the product basis")
    p.add_argument("--max-ell", dest="max_ell", type=int, default=3, help="largest l of edge spherical harmonics")
    p.add_argument("--num-interactions", type=int, default=2)
    p.add_argument("--loss", choices=["weighted", "stress"], default="weighted",
                   help="MACE loss: weighted (energy + forces) or stress (energy + forces + stress)")
    p.add_argument("--energy-weight", type=float, default=1.0)
    p.add_argument("--forces-weight", type=float, default=100.0)
    p.add_argument("--stress-weight", type=float, default=1.0, help="with --loss stress (MACE's default 1)")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--energy-key", default="energy")
    p.add_argument("--forces-key", default="forces")
    p.add_argument("--md-steps-small", type=int, default=200)
    p.add_argument("--md-steps-box", type=int, default=30)
    p.add_argument("--md-dtypes", nargs="+", default=["float64", "float32"])
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=[2, 3, 4, 5])
    a = p.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    import mace

    torch.set_num_threads(a.threads)
    a.workdir.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "baseline": "MACE",
        "mace_version": mace.__version__,
        "torch_version": torch.__version__,
        "threads": a.threads,
        "train_dtype": a.dtype,
        "config": {"num_channels": a.channels, "max_L": a.max_L, "correlation": a.correlation,
                   "num_interactions": a.num_interactions, "max_ell": a.max_ell, "num_radial_basis": 8, "r_max": a.r_max,
                   "batch_size": a.batch_size, "radial_MLP": [64, 64, 64],
                   "loss": f"{a.loss} (E {a.energy_weight:g}, F {a.forces_weight:g}"
                           + (f", S {a.stress_weight:g})" if a.loss == "stress" else ")"),
                   "lr": 0.01, "ema_decay": 0.99},
        "data": {"train": str(a.train), "valid": str(a.valid), "test": str(a.test)},
        "machine": bc.machine_info(),
    }
    model_path = a.workdir / "mace_small.model"
    if a.phase in ("all", "train"):
        result["training"] = train(a, a.workdir)
    if a.phase == "test":
        result.update(test_only(a, model_path))
    if a.phase in ("all", "bench"):
        result.update(bench(a, model_path))
    result["peak_rss_MiB"] = bc.peak_rss_mb()
    bc.write_json(a.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
