"""Benchmark sciml.gp on the bundled ethanol GFN2-xTB set (learning curve, timings, memory).

Split: ``split_frames(load_pes("ethanol_gfn2_500K"), 1000, 100, seed=0)``; training
sets are the first N of the train split, the test set is the remaining 400 frames.
For each N a fresh subprocess fits ``GPPotential`` (hyperparameters by the exact
marginal likelihood on min(N, n_tune) frames, then one Cholesky solve on all N)
and reports test MAEs, fit time (including hyperparameter optimisation),
prediction time per structure (energies + forces; and with uncertainties on the
first ``--std-frames`` test frames), the peak resident memory of that
subprocess, and the load average before and after.

Other data (``--data`` an extxyz file or a bundled set's name; split ``split_frames(frames,
n_train_split, n_valid, seed=0)``), solver choice (``--solver``, ``--max-memory``, ``--n-pivots``),
and ``--compare-cholesky``: also solve the same model (same tuned hyperparameters, same
``--min-noise``) by Cholesky and report the largest relative difference of the predictions (the
CG = Cholesky check of issue 12).

Usage::

    python workflows/benchmarks/gp_scaling.py                      # N = 50 100 200 500 1000
    python workflows/benchmarks/gp_scaling.py --n 50 100 --threads 1 --out bench-data/gp_scaling_test.json
    # 1,000 aspirin frames (64,000 outputs) by CG in 12 GB:
    python workflows/benchmarks/gp_scaling.py --data bench-data/aspirin_gfn2_500K/aspirin_gfn2_500K.extxyz \
        --split 1200 100 --n 1000 --solver cg --max-memory 12GB --out results/gp_aspirin_cg.json
    # CG vs Cholesky at N = 300 (ethanol):
    python workflows/benchmarks/gp_scaling.py --n 300 --solver cg --compare-cholesky --out results/gp_cg_vs_cholesky.json

Prints one JSON document and writes it to ``--out`` (default ``results/gp_scaling.json``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)



def _load(data: str, split: tuple[int, int]):
    from sciml.atoms import read_frames, split_frames
    from sciml.datasets import load_pes

    frames = read_frames(data) if data.endswith((".extxyz", ".xyz", ".db")) else load_pes(data)
    return split_frames(frames, split[0], split[1], seed=0)


def _compare_with_cholesky(gp, test) -> dict:
    """Solve the same model by Cholesky and compare predictions (energies relative to the mean, forces)."""
    import copy

    import numpy as np

    E1, F1, _, _ = gp.predict(test, return_std=False)
    ref = copy.copy(gp)
    ref.solver_, ref._solver = "cholesky", None
    ref.signal_std_ /= math.sqrt(gp._factor_scale)  # back to the tuned values, then re-solve and reprofile
    ref.energy_noise_ /= math.sqrt(gp._factor_scale)
    ref.force_noise_ /= math.sqrt(gp._factor_scale)
    t0 = time.perf_counter()
    ref._solve_weights(reprofile=True)
    E0, F0, _, _ = ref.predict(test, return_std=False)
    de = np.abs((E1 - gp.mean_energy_) - (E0 - ref.mean_energy_)).max() / np.abs(E0 - ref.mean_energy_).max()
    df = np.abs(F1 - F0).max() / np.abs(F0).max()
    return dict(cholesky_solve_time_s=time.perf_counter() - t0, max_rel_diff_energy=float(de),
                max_rel_diff_forces=float(df), max_rel_diff=float(max(de, df)))


def run_one(n: int, a) -> dict:
    """Fit on the first ``n`` training frames and evaluate on the test frames (runs in this process)."""
    import resource

    from sciml.gp import GPPotential, evaluate

    train, valid, test = _load(a.data, tuple(a.split))
    la0 = bc.loadavg()
    t0 = time.perf_counter()
    gp = GPPotential(kernel=a.kernel, n_tune=a.n_tune, seed=a.seed, progress=False, solver=a.solver,
                     max_memory=a.max_memory, n_pivots=a.n_pivots, min_noise=a.min_noise,
                     cg_tol=a.cg_tol, cg_max_iter=a.cg_max_iter).fit(train[:n])
    fit_s = time.perf_counter() - t0
    peak_fit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    cal = gp.calibrate(valid) if a.calibrate else None
    metrics = evaluate(gp, test, max_std_structures=a.std_frames)
    lap = gp.laplace_.table() if gp.laplace_ is not None else None
    out = dict(
        n_train=n, data=a.data, kernel=a.kernel, n_tune=int(min(n, a.n_tune)),
        n_permutations=int(len(gp.permutations_)), n_outputs=int(n * gp._geo.n_outputs), solver=gp.solver_,
        solver_info=gp.solver_info_, max_memory=a.max_memory, min_noise=a.min_noise,
        fit_time_s=fit_s, tune_time_s=gp.tune_time_, solve_time_s=fit_s - gp.tune_time_,
        nlml_evaluations=len(gp.trace_), optimizer_message=gp.optimizer_message_, converged=gp.converged_,
        hyperparameters=dict(lengthscale=gp.lengthscale_, signal_std_eV=gp.signal_std_,
                             energy_noise_eV=gp.energy_noise_, force_noise_eV_per_A=gp.force_noise_,
                             tuned_noise=list(gp.tuned_noise_), mean_energy_eV=gp.mean_energy_),
        laplace_std_err_log=None if lap is None else {k: float(v) for k, v in lap["std_err"].items()},
        peak_rss_fit_MB=peak_fit_mb, dense_covariance_MB=(n * gp._geo.n_outputs) ** 2 * 8 / 2**20,
        calibration=cal, loadavg_before=la0, loadavg_after=bc.loadavg(),
        torch_threads=__import__("torch").get_num_threads(), **metrics,
    )
    if a.compare_cholesky:
        out["cg_vs_cholesky"] = _compare_with_cholesky(gp, test[:50])
    out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def _forward(argv: list[str]) -> list[str]:
    """The command line without ``--n`` and ``--out`` (each N runs in its own process)."""
    out, skip = [], False
    for x in argv:
        if x in ("--n", "--out"):
            skip = True
            continue
        if skip and not x.startswith("--"):
            continue
        skip = False
        out.append(x)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50, 100, 200, 500, 1000])
    ap.add_argument("--kernel", default="matern52", choices=["matern52", "rbf"])
    ap.add_argument("--n-tune", type=int, default=25)
    ap.add_argument("--std-frames", type=int, default=100, help="test frames used for uncertainty metrics")
    ap.add_argument("--threads", type=int, default=1, help="torch/BLAS threads in each subprocess")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="ethanol_gfn2_500K", help="bundled set name or extxyz file")
    ap.add_argument("--split", type=int, nargs=2, default=[1000, 100], help="train and valid sizes of the split")
    ap.add_argument("--solver", default="auto", choices=["auto", "cholesky", "cg"])
    ap.add_argument("--max-memory", default=None, help="e.g. 12GB (default: half the machine)")
    ap.add_argument("--n-pivots", type=int, default=None)
    ap.add_argument("--min-noise", type=float, default=None)
    ap.add_argument("--cg-tol", type=float, default=1e-7)
    ap.add_argument("--cg-max-iter", type=int, default=3000)
    ap.add_argument("--calibrate", action="store_true", help="calibrate on the validation frames first")
    ap.add_argument("--compare-cholesky", action="store_true")
    ap.add_argument("--out", default=str(bc.RESULTS_DIR / "gp_scaling.json"))
    ap.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.single is not None:
        import torch

        torch.set_num_threads(args.threads)
        res = run_one(args.single, args)
        print(json.dumps(res))
        return res
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), SCIML_QUIET="1")
    results = []
    for n in args.n:
        cmd = [sys.executable, __file__, "--single", str(n)] + _forward(argv if argv is not None else sys.argv[1:])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            results.append(dict(n_train=n, error=proc.stderr[-2000:]))
        else:
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    doc = dict(run=bc.run_info(args.threads), benchmark=f"sciml.gp on {args.data}",
               command="python workflows/benchmarks/gp_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               split=f"split_frames(frames, {args.split[0]}, {args.split[1]}, seed=0)", results=results)
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        bc.write_json(args.out, doc, echo=False)
    return doc


if __name__ == "__main__":
    main()
