"""Benchmark sciml.gp on the bundled ethanol GFN2-xTB set (learning curve, timings, memory).

Split: ``split_frames(load_pes("ethanol_gfn2_500K"), 1000, 100, seed=0)``; training
sets are the first N of the train split, the test set is the remaining 400 frames.
For each N a fresh subprocess fits ``GPPotential`` (hyperparameters by the exact
marginal likelihood on min(N, n_tune) frames, then one Cholesky solve on all N)
and reports test MAEs, fit time (including hyperparameter optimisation),
prediction time per structure (energies + forces; and with uncertainties on the
first ``--std-frames`` test frames), the peak resident memory of that
subprocess, and the load average before and after.

Usage::

    python workflows/benchmarks/gp_scaling.py                      # N = 50 100 200 500 1000
    python workflows/benchmarks/gp_scaling.py --n 50 100 --threads 1 --out /tmp/bench_gp.json

Prints one JSON document and writes it to ``--out`` (default ``results/gp_scaling.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)



def run_one(n: int, kernel: str, n_tune: int, std_frames: int, seed: int) -> dict:
    """Fit on the first ``n`` training frames and evaluate on the 400 test frames (runs in this process)."""
    import resource

    import numpy as np

    from sciml.atoms import split_frames
    from sciml.datasets import load_pes
    from sciml.gp import GPPotential
    from sciml.gp import evaluate

    frames = load_pes("ethanol_gfn2_500K")
    train, _valid, test = split_frames(frames, 1000, 100, seed=0)
    la0 = bc.loadavg()
    t0 = time.perf_counter()
    gp = GPPotential(kernel=kernel, n_tune=n_tune, seed=seed, progress=False).fit(train[:n])
    fit_s = time.perf_counter() - t0
    metrics = evaluate(gp, test, max_std_structures=std_frames)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    lap = gp.laplace_.table() if gp.laplace_ is not None else None
    return dict(
        n_train=n,
        kernel=kernel,
        n_tune=int(min(n, n_tune)),
        n_permutations=int(len(gp.permutations_)),
        fit_time_s=fit_s,
        tune_time_s=gp.tune_time_,
        solve_time_s=fit_s - gp.tune_time_,
        nlml_evaluations=len(gp.trace_),
        optimizer_message=gp.optimizer_message_,
        hyperparameters=dict(lengthscale=gp.lengthscale_, signal_std_eV=gp.signal_std_,
                             energy_noise_eV=gp.energy_noise_, force_noise_eV_per_A=gp.force_noise_,
                             mean_energy_eV=gp.mean_energy_),
        laplace_std_err_log=None if lap is None else {k: float(v) for k, v in lap["std_err"].items()},
        peak_rss_MB=peak_mb,
        covariance_MB=(n * gp._geo.n_outputs) ** 2 * 8 / 2**20,
        loadavg_before=la0,
        loadavg_after=bc.loadavg(),
        torch_threads=__import__("torch").get_num_threads(),
        **metrics,
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50, 100, 200, 500, 1000])
    ap.add_argument("--kernel", default="matern52", choices=["matern52", "rbf"])
    ap.add_argument("--n-tune", type=int, default=25)
    ap.add_argument("--std-frames", type=int, default=100, help="test frames used for uncertainty metrics")
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS threads in each subprocess")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(bc.RESULTS_DIR / "gp_scaling.json"))
    ap.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.single is not None:
        import torch

        torch.set_num_threads(args.threads)
        res = run_one(args.single, args.kernel, args.n_tune, args.std_frames, args.seed)
        print(json.dumps(res))
        return res
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), SCIML_QUIET="1")
    results = []
    for n in args.n:
        cmd = [sys.executable, __file__, "--single", str(n), "--kernel", args.kernel, "--n-tune", str(args.n_tune),
               "--std-frames", str(args.std_frames), "--threads", str(args.threads), "--seed", str(args.seed)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            results.append(dict(n_train=n, error=proc.stderr[-2000:]))
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    doc = dict(run=bc.run_info(args.threads), benchmark="sciml.gp on ethanol_gfn2_500K",
               split="split_frames(frames, 1000, 100, seed=0); test = 400", results=results)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        bc.write_json(args.out, doc, echo=False)
    return doc


if __name__ == "__main__":
    main()
