#!/usr/bin/env python
"""Benchmark: mixed-model selection gradients with a cluster bootstrap, sciml vs a statsmodels loop.

n = 2,000 individuals in 50 years, 5 traits; relative fitness with random year intercepts;
beta from the linear and gamma from the full quadratic mixed model (REML), 2,000 bootstrap
replicates resampling whole years. sciml: the call the README shows,
``lande_arnold(df, "W", traits, random_effects="year", bootstrap=2000)``, end to end (point
fits, cluster bootstrap of beta, gamma, S, C and variance components, BCa jackknife, canonical
analysis). Reference: the usual loop -- draw years with replacement (a year drawn twice becomes two
levels), recompute relative fitness and the standardisation, fit statsmodels ``MixedLM`` (REML,
its default optimiser) for the linear and the quadratic model -- timed on ``--loop`` replicates
and extrapolated to 2,000. "Same numbers": the statsmodels fits of those replicates are
compared with sciml's replicate estimates for the same resamples.

    python workflows/benchmarks/selection_mixed_bootstrap.py [--n 2000] [--years 50] [--traits 5]
        [--replicates 2000] [--loop 30]

Raw results: ``workflows/benchmarks/results/selection_mixed_bootstrap.json``.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)


def simulate(n: int, years: int, p: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    year = np.repeat(np.arange(years), n // years)
    Z = rng.normal(size=(len(year), p))
    eta = 0.25 * Z[:, 0] - 0.15 * Z[:, 1] - 0.1 * Z[:, 2] ** 2 + rng.normal(0, 0.3, years)[year]
    W = np.exp(eta) * rng.gamma(4, 0.25, len(year))
    df = pd.DataFrame(10 + 2 * Z, columns=[f"z{i + 1}" for i in range(p)])
    return df.assign(W=W, year=year)


def statsmodels_replicate(df: pd.DataFrame, counts: np.ndarray, names: list, traits: list[str]):
    """beta, gamma and the year variance of one cluster-bootstrap resample, by statsmodels MixedLM."""
    import statsmodels.formula.api as smf

    parts = [df[df["year"].astype(str) == names[j]].assign(level=f"{j}_{r}")
             for j in np.flatnonzero(counts) for r in range(int(counts[j]))]
    d = pd.concat(parts, ignore_index=True)
    Z = d[traits].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    x = pd.DataFrame(U, columns=traits).assign(w=d["W"] / d["W"].mean(), level=d["level"])
    quad = [f"I({a}*{b})" for i, a in enumerate(traits) for b in traits[i:]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lin = smf.mixedlm("w ~ " + " + ".join(traits), x, groups="level").fit(reml=True)
        qf = smf.mixedlm("w ~ " + " + ".join(traits + quad), x, groups="level").fit(reml=True)
    p = len(traits)
    c = qf.fe_params.to_numpy()[1 + p:]
    g = np.zeros((p, p))
    k = 0
    for i in range(p):
        for j in range(i, p):
            g[i, j] = g[j, i] = 2 * c[k] if i == j else c[k]
            k += 1
    return lin.fe_params.to_numpy()[1:], g, float(lin.cov_re.iloc[0, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--years", type=int, default=50)
    ap.add_argument("--traits", type=int, default=5)
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--loop", type=int, default=30, help="statsmodels replicates actually timed")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from threadpoolctl import threadpool_info, threadpool_limits

    from sciml.selection import lande_arnold
    from sciml.selection.mixed_bootstrap import MixedEngine

    df = simulate(args.n, args.years, args.traits)
    traits = [f"z{i + 1}" for i in range(args.traits)]
    B = args.replicates
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    doc: dict = {"n": len(df), "years": args.years, "traits": args.traits, "replicates": B,
                 "statsmodels_loop_timed": args.loop, "cpu_count": os.cpu_count(),
                 "blas_threads": blas[0]["num_threads"] if blas else None,
                 "model": "w ~ z + (1 | year) and w ~ z + z_i z_j + (1 | year), REML; cluster bootstrap over years"}
    print(f"n = {len(df)}, {args.years} years, {args.traits} traits, {B} cluster-bootstrap replicates")

    lande_arnold(df.iloc[:400], "W", traits[:2], random_effects="year", bootstrap=50, seed=0, progress=False)  # warm-up
    times, res = [], None
    for r in range(args.repeats):
        la = bc.loadavg()
        t = time.perf_counter()
        res = lande_arnold(df, "W", traits, random_effects="year", bootstrap=B, seed=0, progress=False)
        times.append(time.perf_counter() - t)
        print(f"sciml lande_arnold(..., random_effects='year', bootstrap={B}) end to end: {times[-1]:.2f} s "
              f"[loadavg {la}]")
    doc["sciml_seconds"] = times
    best = min(times)

    # the same resamples as sciml's first replicates (run_bootstrap draws chunks of 1000 from one generator)
    names = res.models["lmm_linear"].re.cluster_names
    eng = MixedEngine(df["W"].to_numpy(), df[traits].to_numpy(), "sd", res.models["lmm_linear"].re, True,
                      res.models["lmm_linear"].theta, res.models["lmm_quadratic"].theta)
    K = eng.draw(np.random.default_rng(0), min(1000, B))[:args.loop]

    # point estimates against a full-data MixedLM fit
    import statsmodels.formula.api as smf

    U = (df[traits] - df[traits].mean()) / df[traits].std(ddof=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = smf.mixedlm("w ~ " + " + ".join(traits), U.assign(w=df.W / df.W.mean(), year=df.year), groups="year").fit()
    doc["point_max_abs_diff_beta"] = float(np.abs(full.fe_params.to_numpy()[1:] - res.beta["estimate"].to_numpy()).max())

    # statsmodels loop: default BLAS threads and one thread; the faster is the reference
    statsmodels_replicate(df, K[0], names, traits)                       # warm-up
    per, diffs = {}, {"beta": [], "gamma": [], "year_variance": []}
    for threads in (None, 1):
        la = bc.loadavg()
        with threadpool_limits(limits=threads):
            t = time.perf_counter()
            out = [statsmodels_replicate(df, K[b], names, traits) for b in range(args.loop)]
            dt = (time.perf_counter() - t) / args.loop
        per[f"blas_{threads or 'default'}"] = dt
        print(f"statsmodels MixedLM loop (linear + quadratic), BLAS threads {threads or 'default'}: {dt:.3f} s/replicate "
              f"-> {dt * B:.0f} s for {B} (extrapolated from {args.loop}) [loadavg {la}]")
        if threads is None:
            vc = res.bootstrap_samples["vc"]
            for b, (beta, gamma, s2) in enumerate(out):
                diffs["beta"].append(np.abs(beta - res.bootstrap_samples["beta"][b]).max())
                diffs["gamma"].append(np.abs(gamma - res.bootstrap_samples["gamma"][b]).max())
                diffs["year_variance"].append(abs(s2 - vc[b, 0]))
    doc["statsmodels_seconds_per_replicate"] = per
    doc["statsmodels_extrapolated_seconds"] = min(per.values()) * B
    doc["speedup"] = min(per.values()) * B / best
    doc["replicate_max_abs_diff"] = {k: float(np.max(v)) for k, v in diffs.items()}
    print(f"same resamples, sciml vs statsmodels: max |d beta| = {doc['replicate_max_abs_diff']['beta']:.1e}, "
          f"max |d gamma| = {doc['replicate_max_abs_diff']['gamma']:.1e}, "
          f"max |d var(year)| = {doc['replicate_max_abs_diff']['year_variance']:.1e}; "
          f"full data: max |d beta| = {doc['point_max_abs_diff_beta']:.1e}")
    print(f"speed-up of sciml over the faster statsmodels loop: {doc['speedup']:.0f}x")
    doc["loadavg_end"] = bc.loadavg()
    print(f"results: {bc.save_result('selection_mixed_bootstrap', doc, threads=doc['blas_threads'])}")


if __name__ == "__main__":
    main()
