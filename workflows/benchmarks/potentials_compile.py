#!/usr/bin/env python
"""torch.compile on the energy-and-force evaluation: exactness and speed, side by side with eager.

On a random fcc alloy cell (``--repeat``, default 3,3,3 = 108 atoms) with a default-size model:

1. ``torch.compile(model, dynamic=False)``: time of the first (compiling) call; CPU time per atom of
   energy + forces + stress, eager and compiled alternately (median of ``--repeats``); largest
   energy / force differences from eager;
2. the same after one atom moves so that the number of neighbour pairs changes, as it does in MD
   (static shapes: a recompilation);
3. ``torch.compile(model, dynamic=True)`` (shape-generic), recording the error if it fails.

    python workflows/benchmarks/potentials_compile.py --threads 1 --dtype float32
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from potentials_scale import _model, alloy_cell  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeat", default="3,3,3")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "potentials_compile.json"))
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from sciml.potentials.forces import compute_properties
    from sciml.potentials.graph import atoms_to_graph

    dt = getattr(torch, a.dtype)
    model, desc = _model(None)
    model = model.to(dt).eval()
    for q in model.parameters():
        q.requires_grad_(False)
    atoms = alloy_cell(tuple(int(x) for x in a.repeat.split(",")))
    g = atoms_to_graph(atoms, model.cutoff, model.species, dtype=dt)

    def run(m, graph):
        return compute_properties(m, graph, stress=True)

    def cpu_time(fn) -> float:
        c0 = time.process_time()
        fn()
        return time.process_time() - c0

    ref = run(model, g)
    res = {"model": desc, "dtype": a.dtype, "n_atoms": len(atoms), "n_edges": int(g.edge_index.shape[1]),
           "torch": torch.__version__, "loadavg_before": bc.loadavg()}
    static = torch.compile(model, dynamic=False)
    res["static_first_call_cpu_s"] = cpu_time(lambda: run(static, g))
    out = run(static, g)
    res["static_max_force_diff_eV_per_A"] = float((out["forces"] - ref["forces"]).abs().max())
    res["static_max_energy_diff_eV"] = float((out["energy"] - ref["energy"]).abs().max())
    res["static_max_stress_diff_eV_per_A3"] = float((out["stress"] - ref["stress"]).abs().max())
    eager, comp = [], []
    for _ in range(a.repeats):
        eager.append(cpu_time(lambda: run(model, g)))
        comp.append(cpu_time(lambda: run(static, g)))
    res["eager_cpu_us_per_atom"] = 1e6 * statistics.median(eager) / len(atoms)
    res["static_cpu_us_per_atom"] = 1e6 * statistics.median(comp) / len(atoms)
    res["static_speedup"] = statistics.median(eager) / statistics.median(comp)
    moved = atoms.copy()
    moved.positions[0] += [0.6, 0.0, 0.0]  # changes the number of pairs within the cutoff
    g2 = atoms_to_graph(moved, model.cutoff, model.species, dtype=dt)
    res["n_edges_after_move"] = int(g2.edge_index.shape[1])
    res["static_call_after_edge_count_change_cpu_s"] = cpu_time(lambda: run(static, g2))
    dyn = torch.compile(model, dynamic=True)
    try:
        res["dynamic_first_call_cpu_s"] = cpu_time(lambda: run(dyn, g))
        out = run(dyn, g)
        res["dynamic_max_force_diff_eV_per_A"] = float((out["forces"] - ref["forces"]).abs().max())
        res["dynamic_cpu_us_per_atom"] = 1e6 * statistics.median([cpu_time(lambda: run(dyn, g)) for _ in range(a.repeats)]) / len(atoms)
    except Exception as exc:  # noqa: BLE001 - the failure itself is the measurement
        res["dynamic_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    res["loadavg_after"] = bc.loadavg()
    bc.write_json(a.out, {"run": bc.run_info(a.threads), **res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
