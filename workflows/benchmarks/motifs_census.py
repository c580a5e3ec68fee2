#!/usr/bin/env python
"""Speed figures of sciml.motifs next to networkx and igraph, on the same graphs.

1. 3- and 4-node census of random directed graphs (G(n, m), m = mean_degree * n, i.e.
   mean out-degree = mean in-degree = ``--mean-degree``) with n = 100, 1,000, 3,000,
   10,000: sciml (from edge arrays, and from the networkx graph incl. conversion) vs
   ``networkx.triadic_census`` and igraph ``motifs_randesu`` (graph construction not timed).
   Counts are cross-checked (3-node equal to networkx, 4-node totals equal to igraph).
2. 1,000 null graphs (mutual-edge-preserving switching, 10 switches per edge) with full
   3-node statistics (``motif_significance``) for the circuit of a 256-unit RNN at 10 %
   edge density (a random-initialised 256 x 256 weight matrix; timing depends on the
   graph size, not on the weights).

Every figure is the median of ``--repeat`` runs and carries the load average, because the
machine is shared. Prints a table and one JSON object (written to ``--json``, default
``results/motifs_census.json``).

    python workflows/benchmarks/motifs_census.py          # writes results/motifs_census.json
    python workflows/benchmarks/motifs_census.py --sizes 100 1000 --repeat 5 --json /tmp/motifs.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)



def timeit(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000, 10000])
    ap.add_argument("--mean-degree", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-networkx-above", type=int, default=10000, help="skip networkx for larger graphs")
    ap.add_argument("--rnn-units", type=int, default=256)
    ap.add_argument("--rnn-density", type=float, default=0.1)
    ap.add_argument("--n-random", type=int, default=1000)
    ap.add_argument("--json", default=str(bc.RESULTS_DIR / "motifs_census.json"), help="write the JSON result here")
    ap.add_argument("--no-numba", action="store_true", help="use the pure-numpy null-model engine")
    args = ap.parse_args()
    if args.no_numba:
        import sciml.motifs.nulls

        sciml.motifs.nulls._USE_NUMBA = False

    import igraph as ig
    import networkx as nx
    import numpy as np

    from sciml.motifs import motif_census, motif_significance, weights_to_graph
    from sciml.motifs.census import census_vector, graph_to_arrays

    # warm-up (imports, lookup tables, numba cache)
    Gw = nx.gnm_random_graph(50, 200, directed=True, seed=0)
    motif_census(Gw, 3), motif_census(Gw, 4)
    motif_significance(Gw, n_random=2, progress=False)

    rows = []
    print(f"{'n':>6} {'m':>7} | {'sciml3':>8} {'sciml3+nx':>9} {'nx3':>8} {'igraph3':>8} | "
          f"{'sciml4':>8} {'igraph4':>8} | {'nx/sciml3':>9} {'ig/sciml3':>9} {'sciml4/ig4':>10} | load")
    for n in args.sizes:
        m = int(args.mean_degree * n)
        G = nx.gnm_random_graph(n, m, directed=True, seed=1)
        src, dst, nn, _ = graph_to_arrays(G)
        g = ig.Graph(n=n, edges=list(zip(src.tolist(), dst.tolist())), directed=True)
        la0 = bc.loadavg()
        t3, c3 = timeit(lambda: census_vector(src, dst, n, 3), args.repeat)
        t3g, _ = timeit(lambda: motif_census(G, 3), args.repeat)
        ti3, r3 = timeit(lambda: g.motifs_randesu(size=3), args.repeat)
        t4, c4 = timeit(lambda: census_vector(src, dst, n, 4), args.repeat)
        ti4, r4 = timeit(lambda: g.motifs_randesu(size=4), args.repeat)
        tnx = None
        if n <= args.no_networkx_above:
            tnx, rnx = timeit(lambda: nx.triadic_census(G), 1)
            from sciml.motifs import TRIAD_CODES

            assert [rnx[k] for k in TRIAD_CODES] == c3.tolist(), "3-node counts differ from networkx"
        assert int(np.nansum(r4)) == int(c4.sum()), "4-node total differs from igraph"
        assert int(np.nansum(r3)) == int(c3.sum()), "3-node total differs from igraph"
        row = dict(n=n, m=m, sciml3_s=t3, sciml3_from_networkx_s=t3g, networkx3_s=tnx, igraph3_s=ti3,
                   sciml4_s=t4, igraph4_s=ti4, load_before=la0, load_after=bc.loadavg())
        rows.append(row)
        f = lambda v: f"{v:8.4f}" if v is not None else f"{'-':>8}"  # noqa: E731
        print(f"{n:>6} {m:>7} | {f(t3)} {t3g:9.4f} {f(tnx)} {f(ti3)} | {f(t4)} {f(ti4)} | "
              f"{(tnx / t3 if tnx else float('nan')):9.1f} {ti3 / t3:9.2f} {t4 / ti4:10.2f} | {la0} -> {row['load_after']}")

    # RNN-sized null-model statistics
    H = args.rnn_units
    W = np.random.default_rng(0).normal(0, 1 / np.sqrt(H), size=(H, H))
    G = weights_to_graph(W, threshold=args.rnn_density, mode="density")
    la0 = bc.loadavg()
    t = time.perf_counter()
    df = motif_significance(G, size=3, null="mutual", n_random=args.n_random, seed=0, progress=False)
    t_null = time.perf_counter() - t
    la1 = bc.loadavg()
    t = time.perf_counter()
    nx.triadic_census(G)
    t_nx1 = time.perf_counter() - t
    src, dst, nn, _ = graph_to_arrays(G)
    t_one, _ = timeit(lambda: census_vector(src, dst, nn, 3), args.repeat)
    from sciml.motifs import nulls

    rnn = dict(units=H, density=args.rnn_density, edges=G.number_of_edges(), n_random=args.n_random,
               engine="numba" if nulls._USE_NUMBA else "numpy", null="mutual", switches_per_edge=10, significance_s=t_null, networkx_one_census_s=t_nx1,
               sciml_one_census_s=t_one, z_030T=float(df.loc["030T", "z"]), load_before=la0, load_after=la1)
    print(f"\nRNN {H} units, density {args.rnn_density} ({G.number_of_edges()} edges): {args.n_random} null graphs "
          f"+ full 3-node statistics in {t_null:.2f} s (load {la0} -> {la1}); one census: sciml {t_one * 1e3:.2f} ms, "
          f"networkx {t_nx1:.2f} s")
    result = {"census": rows, "rnn_nulls": rnn}
    print(json.dumps(result, indent=1))
    if args.json:
        bc.write_json(args.json, {"run": bc.run_info(threads=None), **result}, echo=False)


if __name__ == "__main__":
    main()
