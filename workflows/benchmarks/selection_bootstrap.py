#!/usr/bin/env python
"""Benchmark: case bootstrap of the full Lande--Arnold analysis (beta and gamma).

n = 1,000 individuals, 5 traits (20 regression terms + intercept in the quadratic model),
10,000 bootstrap replicates. sciml resamples with counts-as-weights in batched normal equations
(:class:`sciml.selection.bootstrap.MomentEngine`); the reference is the usual loop that resamples
rows and refits statsmodels OLS each time (timed on a subset of replicates and extrapolated).
Both recompute relative fitness and the SD standardisation inside every replicate.

    python workflows/benchmarks/selection_bootstrap.py [--n 1000] [--traits 5] [--replicates 10000] [--loop 300]

Raw results: ``workflows/benchmarks/results/selection_bootstrap.json`` (via ``bench_common.save_result``).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)



def statsmodels_replicate(W, Z, idx, quadratic=True):
    import statsmodels.api as sm

    w = W[idx] / W[idx].mean()
    Zb = Z[idx]
    U = (Zb - Zb.mean(0)) / Zb.std(0, ddof=1)
    p = U.shape[1]
    Xl = sm.add_constant(U, has_constant="add")
    beta = sm.OLS(w, Xl).fit().params[1:]
    if not quadratic:
        return beta, None
    quad = [U[:, i] * U[:, j] for i in range(p) for j in range(i, p)]
    c = sm.OLS(w, np.column_stack([Xl] + quad)).fit().params[1 + p:]
    g = np.zeros((p, p))
    k = 0
    for i in range(p):
        for j in range(i, p):
            g[i, j] = g[j, i] = 2 * c[k] if i == j else c[k]
            k += 1
    return beta, g


def blas_threads() -> int | None:
    """Threads of the BLAS numpy uses (threadpoolctl), recorded with the results."""
    from threadpoolctl import threadpool_info

    info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return info[0]["num_threads"] if info else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--traits", type=int, default=5)
    ap.add_argument("--replicates", type=int, default=10000)
    ap.add_argument("--loop", type=int, default=300, help="statsmodels replicates actually timed")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from sciml.selection import lande_arnold
    from sciml.selection.bootstrap import MomentEngine, bootstrap_counts, run_bootstrap

    rng = np.random.default_rng(0)
    n, p, B = args.n, args.traits, args.replicates
    Z = rng.normal(size=(n, p))
    W = np.exp(0.3 * Z[:, 0] - 0.1 * Z[:, 1] ** 2) * rng.gamma(4, 0.25, n)
    codes = np.zeros(n, int)
    doc: dict = {"n": n, "traits": p, "replicates": B, "statsmodels_loop_timed": args.loop,
                 "blas_threads": blas_threads(), "cpu_count": os.cpu_count()}
    print(f"machine: {os.cpu_count()} CPUs; n = {n}, traits = {p}, bootstrap replicates = {B}")

    # correctness: one replicate from both routes
    eng = MomentEngine(W, Z, codes, "sd")
    K = bootstrap_counts(np.random.default_rng(1), 1, codes)
    idx = np.repeat(np.arange(n), K[0].astype(int))
    o = eng.estimate(K)
    b_sm, g_sm = statsmodels_replicate(W, Z, idx)
    doc["check_max_abs_diff"] = {"beta": float(np.abs(o["beta"][0] - b_sm).max()),
                                 "gamma": float(np.abs(o["gamma"][0] - g_sm).max())}
    print(f"check vs statsmodels on one replicate: max |d beta| = {doc['check_max_abs_diff']['beta']:.2e}, "
          f"max |d gamma| = {doc['check_max_abs_diff']['gamma']:.2e}")

    # sciml: engine only (beta, gamma, S, C of every replicate)
    run_bootstrap(eng, 1000, seed=0, progress=False)  # warm-up
    times = []
    for r in range(args.repeats):
        la = bc.loadavg()
        t = time.perf_counter()
        run_bootstrap(MomentEngine(W, Z, codes, "sd"), B, seed=r, progress=False)
        times.append(time.perf_counter() - t)
        print(f"sciml vectorised bootstrap, {B} replicates (beta+gamma+S+C): {times[-1]:.3f} s   [loadavg {la}]")
    best = min(times)
    doc["sciml_engine_seconds"] = times

    # sciml: the full user call with percentile intervals and with BCa (jackknife of n)
    import pandas as pd

    df = pd.DataFrame(Z, columns=[f"z{i + 1}" for i in range(p)]).assign(W=W)
    doc["sciml_lande_arnold_seconds"] = {}
    for ci in ("percentile", "bca"):
        la = bc.loadavg()
        t = time.perf_counter()
        lande_arnold(df, "W", list(df.columns[:p]), bootstrap=B, seed=0, ci_method=ci, progress=False)
        dt = time.perf_counter() - t
        doc["sciml_lande_arnold_seconds"][ci] = dt
        print(f"sciml lande_arnold(..., bootstrap={B}, ci_method={ci!r}) end to end: {dt:.3f} s   [loadavg {la}]")

    # statsmodels loop on a subset, extrapolated; BLAS with its default threads and with one
    # thread (small fits are often faster single-threaded); the faster one is the reference
    from threadpoolctl import threadpool_limits

    rng2 = np.random.default_rng(2)
    for _ in range(5):                                   # warm-up (imports, first-call costs)
        statsmodels_replicate(W, Z, rng2.integers(0, n, n), True)
    doc["statsmodels_ms_per_replicate"] = {}
    for quadratic, label in ((False, "linear model only"), (True, "linear + quadratic")):
        per = []
        for threads in (None, 1):
            la = bc.loadavg()
            with threadpool_limits(limits=threads):
                t = time.perf_counter()
                for _ in range(args.loop):
                    statsmodels_replicate(W, Z, rng2.integers(0, n, n), quadratic)
                dt = (time.perf_counter() - t) / args.loop
            per.append(dt)
            doc["statsmodels_ms_per_replicate"][f"{'quadratic' if quadratic else 'linear'}_blas_{threads or 'default'}"] = 1e3 * dt
            print(f"statsmodels loop, {label}, BLAS threads {threads or 'default'}: {dt * 1e3:.2f} ms/replicate -> "
                  f"{dt * B:.1f} s for {B} (extrapolated from {args.loop})   [loadavg {la}]")
        if quadratic:
            doc["statsmodels_extrapolated_seconds"] = min(per) * B
            doc["speedup_engine_vs_statsmodels"] = min(per) * B / best
            print(f"speed-up of sciml over the faster statsmodels loop (beta+gamma): {min(per) * B / best:.0f}x")
    doc["loadavg_end"] = bc.loadavg()
    print(f"loadavg at end: {doc['loadavg_end']}")
    print(f"results: {bc.save_result('selection_bootstrap', doc, threads=doc['blas_threads'])}")


if __name__ == "__main__":
    main()
