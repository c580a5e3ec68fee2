#!/usr/bin/env python
"""Speed of sciml's motif census called as the README shows it, next to igraph and networkx.

1. Census, side by side in one run, on the same graphs: ``sciml.motifs.motif_census(G, size)``
   on a ``networkx.DiGraph`` (the README call: conversion included, default engine, recorded)
   vs igraph ``Graph.motifs_randesu(size)`` on a prebuilt igraph graph (construction not timed)
   and, for 3 nodes, ``networkx.triadic_census``. The pure-numpy engine (``engine="numpy"``,
   what runs without numba) is timed as well.
   Graphs: n = 1,000 / 3,000 / 10,000 nodes, m = 5 n directed edges (mean in- and out-degree
   5) placed uniformly at random on distinct node pairs, of which a fraction ``r`` = 0 % or
   20 % are reciprocated: r m / 2 mutual pairs (2 edges each) plus (1 - r) m single edges.
   Counts are checked class by class: 3-node against ``networkx.triadic_census``, 4-node
   against igraph (classes matched by isomorphism), for both engines.
2. 1,000 null graphs (mutual-edge-preserving switching, 10 switches per edge) with full
   3-node statistics (``motif_significance``) for the circuit of a 256-unit RNN at 10 %
   edge density (a random-initialised 256 x 256 weight matrix; timing depends on the
   graph size, not on the weights); the engine is recorded.

Every figure is the median of ``--repeat`` runs (calls interleaved: sciml, igraph, sciml, ...)
and carries the load average, because the machine is shared. All timed code is
single-threaded. Prints a table and writes ``results/motifs_census.json``.

    python workflows/benchmarks/motifs_census.py
    python workflows/benchmarks/motifs_census.py --sizes 1000 --repeat 3 --json bench-data/motifs.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from importlib.metadata import version

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)


def make_graph(n: int, mean_degree: float, reciprocated: float, seed: int):
    """networkx DiGraph on 0..n-1 with m = mean_degree * n edges, a share ``reciprocated`` in mutual pairs."""
    import networkx as nx
    import numpy as np

    rng = np.random.default_rng(seed)
    m = int(round(mean_degree * n))
    n_mut = int(round(reciprocated * m / 2))
    n_single = m - 2 * n_mut
    need = n_mut + n_single
    pairs = np.zeros((0, 2), dtype=np.int64)
    while len(pairs) < need:  # distinct unordered pairs, uniformly at random
        u = rng.integers(0, n, size=2 * need)
        v = rng.integers(0, n, size=2 * need)
        ok = u != v
        cand = np.stack([np.minimum(u, v)[ok], np.maximum(u, v)[ok]], axis=1)
        pairs = np.unique(np.concatenate([pairs, cand]), axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:need]]
    mutual, single = pairs[:n_mut], pairs[n_mut:]
    flip = rng.random(len(single)) < 0.5
    single = np.where(flip[:, None], single[:, ::-1], single)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(map(tuple, single.tolist()))
    G.add_edges_from(map(tuple, mutual.tolist()))
    G.add_edges_from(map(tuple, mutual[:, ::-1].tolist()))
    return G


def igraph_class_keys(size: int) -> dict[int, object]:
    """igraph isoclass id -> sciml motif key (by canonical adjacency), connected classes only."""
    import igraph as ig
    import networkx as nx

    from sciml.motifs import motif_census

    out = {}
    for k in range(16 if size == 3 else 218):  # igraph's directed isoclasses of 3 and 4 nodes
        g = ig.Graph.Isoclass(size, k, directed=True)
        H = nx.DiGraph(g.get_edgelist())
        H.add_nodes_from(range(size))
        if nx.is_weakly_connected(H):
            counts = motif_census(H, size=size)
            out[k] = next(key for key, c in counts.items() if c == 1)
    return out


def timed(fns: dict, repeat: int) -> tuple[dict, dict]:
    """Median seconds of each callable, calls interleaved round-robin; and each one's last output."""
    times = {k: [] for k in fns}
    outs = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def census_rows(args, iso: dict) -> list[dict]:
    import igraph as ig
    import networkx as nx

    from sciml.motifs import TRIAD_CODES, motif_census

    rows = []
    for n in args.sizes:
        for r in args.reciprocated:
            G = make_graph(n, args.mean_degree, r, seed=1)
            g = ig.Graph(n=n, edges=list(G.edges()), directed=True)
            recip = sum(1 for u, v in G.edges() if G.has_edge(v, u)) / G.number_of_edges()
            la0 = bc.loadavg()
            row = {"n": n, "m": G.number_of_edges(), "reciprocity": recip, "load_before": la0}
            for size in (3, 4):
                t, out = timed({"sciml": lambda: motif_census(G, size=size),
                                "igraph": lambda: g.motifs_randesu(size=size),
                                "sciml_numpy": lambda: motif_census(G, size=size, engine="numpy")},
                               args.repeat if size == 3 or n < 10000 else max(3, args.repeat // 2))
                ref = {iso[size][k]: int(v) for k, v in enumerate(out["igraph"]) if k in iso[size]}
                assert out["sciml"] == ref, f"{size}-node counts differ from igraph (n={n}, r={r})"
                assert out["sciml_numpy"] == ref, f"numpy-engine {size}-node counts differ from igraph"
                row.update({f"sciml{size}_s": t["sciml"], f"igraph{size}_s": t["igraph"],
                            f"sciml{size}_numpy_engine_s": t["sciml_numpy"],
                            f"igraph{size}_over_sciml{size}": t["igraph"] / t["sciml"]})
                if size == 3:
                    tn, nxc = timed({"nx": lambda: nx.triadic_census(G)}, 1)
                    assert [nxc["nx"][k] for k in TRIAD_CODES] == list(out["sciml"].values()), \
                        "3-node counts differ from networkx.triadic_census"
                    row["networkx3_s"] = tn["nx"]
            row["load_after"] = bc.loadavg()
            rows.append(row)
            print(f"{n:>6} {row['m']:>6} {recip:5.2f} | {1e3 * row['sciml3_s']:8.2f} {1e3 * row['igraph3_s']:8.2f} "
                  f"{row['igraph3_over_sciml3']:6.2f}x {1e3 * row['sciml3_numpy_engine_s']:8.2f} "
                  f"{1e3 * row['networkx3_s']:9.1f} | {1e3 * row['sciml4_s']:8.1f} {1e3 * row['igraph4_s']:8.1f} "
                  f"{row['igraph4_over_sciml4']:6.2f}x {1e3 * row['sciml4_numpy_engine_s']:8.1f} | "
                  f"{la0} -> {row['load_after']}", flush=True)
    return rows


def rnn_nulls(args) -> dict:
    import networkx as nx
    import numpy as np

    from sciml.motifs import motif_census, motif_significance, weights_to_graph

    H = args.rnn_units
    W = np.random.default_rng(0).normal(0, 1 / np.sqrt(H), size=(H, H))
    G = weights_to_graph(W, threshold=args.rnn_density, mode="density")
    la0 = bc.loadavg()
    t = time.perf_counter()
    df = motif_significance(G, size=3, null="mutual", n_random=args.n_random, seed=0, progress=False,
                            engine=args.null_engine)
    t_null = time.perf_counter() - t
    la1 = bc.loadavg()
    t = time.perf_counter()
    nx.triadic_census(G)
    t_nx1 = time.perf_counter() - t
    t_one, _ = timed({"one": lambda: motif_census(G, 3)}, args.repeat)
    rnn = dict(units=H, density=args.rnn_density, edges=G.number_of_edges(), n_random=args.n_random,
               engine=df.attrs["engine"], null="mutual", switches_per_edge=10, significance_s=t_null,
               networkx_one_census_s=t_nx1, sciml_one_census_s=t_one["one"], z_030T=float(df.loc["030T", "z"]),
               load_before=la0, load_after=la1)
    print(f"\nRNN {H} units, density {args.rnn_density} ({G.number_of_edges()} edges): {args.n_random} null graphs "
          f"+ full 3-node statistics in {t_null:.2f} s (engine {rnn['engine']}; load {la0} -> {la1}); one census: "
          f"sciml {t_one['one'] * 1e3:.2f} ms, networkx {t_nx1:.2f} s")
    return rnn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--reciprocated", type=float, nargs="+", default=[0.0, 0.2],
                    help="share of edges in mutual pairs")
    ap.add_argument("--mean-degree", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rnn-units", type=int, default=256)
    ap.add_argument("--rnn-density", type=float, default=0.1)
    ap.add_argument("--n-random", type=int, default=1000)
    ap.add_argument("--null-engine", default="auto", help="engine of the null-model section: auto | numba | numpy")
    ap.add_argument("--json", default=str(bc.RESULTS_DIR / "motifs_census.json"), help="write the JSON result here")
    args = ap.parse_args()

    from sciml.motifs import motif_census, motif_significance, resolve_engine

    engine = resolve_engine("auto")
    # warm-up: imports, lookup tables, compiled kernels (numba's on-disk cache)
    Gw = make_graph(200, 5, 0.2, seed=0)
    for size in (3, 4):
        motif_census(Gw, size), motif_census(Gw, size, engine="numpy")
    motif_significance(Gw, n_random=2, progress=False, engine=args.null_engine)
    iso = {3: igraph_class_keys(3), 4: igraph_class_keys(4)}
    assert len(iso[3]) == 13 and len(iso[4]) == 199

    print(f"census engine (motif_census default): {engine}; times in ms (median of {args.repeat})")
    print(f"{'n':>6} {'m':>6} {'recip':>5} | {'sciml3':>8} {'igraph3':>8} {'ig/sc':>7} {'numpy3':>8} {'nx3':>9} | "
          f"{'sciml4':>8} {'igraph4':>8} {'ig/sc':>7} {'numpy4':>8} | load")
    rows = census_rows(args, iso)
    rnn = rnn_nulls(args)
    versions = {p: version(p) for p in ("networkx", "python-igraph", "numpy", "numba")}
    doc = {"census_engine": engine, "call": "sciml.motifs.motif_census(G: networkx.DiGraph, size)",
           "igraph_call": "igraph.Graph.motifs_randesu(size) on a prebuilt graph",
           "graphs": "m = 5 n directed edges on distinct random node pairs; 'reciprocity' = share of edges "
                     "whose reverse is present", "versions": versions, "census": rows, "rnn_nulls": rnn}
    print(json.dumps({"census_engine": engine, "versions": versions}, indent=1))
    bc.write_json(args.json, {"run": bc.run_info(threads=1), **doc}, echo=False)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
