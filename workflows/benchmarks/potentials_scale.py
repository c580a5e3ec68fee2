#!/usr/bin/env python
"""Cost per atom per MD step and peak memory of sciml.potentials on large periodic alloy cells.

For each size (random fcc solid solutions of the 7 alloy elements, Vegard lattice constant, atoms
displaced by 0.05 Å; cubic ``Atoms.repeat`` cells of 1,008 / 10,192 / 100,920 / 1,000,188 atoms,
the sizes of issue 14) and each precision, a fresh process builds the cell, attaches
``SciMLCalculator(model, dtype=...)`` and times ``repeats`` steps of energy + forces + stress
(atoms moved before every step, so the neighbour list is rebuilt as in MD). Reported per row:
wall and CPU microseconds per atom per step (median step), the neighbour-list share, and the
process's peak resident memory (``ru_maxrss``: everything, Python and the cell included).

    python workflows/benchmarks/potentials_scale.py --threads 1                        # 10^3..10^5
    python workflows/benchmarks/potentials_scale.py --sizes 63,63,63 --dtype float32 --out results/potentials_scale_1e6.json
    python workflows/benchmarks/potentials_scale.py --max-edges 0 --sizes 6,6,7 14,14,13   # one-pass (unchunked) evaluation

Timing does not depend on the weights: without ``--model`` an untrained default-size model
(``ModelConfig`` defaults) is used.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

ALLOY_Z = [13, 29, 47, 79, 28, 46, 78]  # Al Cu Ag Au Ni Pd Pt


def alloy_cell(repeat: tuple[int, int, int], seed: int = 0):
    """Random fcc solid solution of the 7 alloy elements: ``4 * prod(repeat)`` atoms."""
    import numpy as np
    from ase.build import bulk
    from ase.data import chemical_symbols

    from sciml.datasets.alloys import ALLOY_ELEMENTS

    rng = np.random.default_rng(seed)
    symbols = [chemical_symbols[z] for z in ALLOY_Z]
    a0 = float(np.mean([ALLOY_ELEMENTS[s] for s in symbols]))
    atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat(repeat)
    atoms.numbers = rng.choice(ALLOY_Z, size=len(atoms))
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _model(path: str | None):
    import torch

    from sciml.potentials import EquivariantPotential, ModelConfig, load_model

    if path:
        return load_model(path, device="cpu"), path
    torch.manual_seed(0)
    m = EquivariantPotential(ModelConfig(species=ALLOY_Z)).double()
    with torch.no_grad():
        m.avg_num_neighbors.fill_(42.0)
    return m, "untrained default ModelConfig (7 alloy elements)"


def one(a) -> dict:
    """One size and precision in this process (the parent runs each in a fresh one)."""
    import resource

    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    from sciml.potentials import SciMLCalculator
    from sciml.potentials.graph import neighbor_list

    rep = tuple(int(x) for x in a.one.split(","))
    model, desc = _model(a.model)
    calc = SciMLCalculator(model, dtype=a.dtype[0], max_edges=a.max_edges or None)
    del model
    atoms = alloy_cell(rep)
    n = len(atoms)
    atoms.calc = calc
    rng = np.random.default_rng(1)
    x0 = atoms.positions.copy()
    t0 = time.perf_counter()
    atoms.get_forces()
    first = time.perf_counter() - t0
    wall, cpu = [], []
    before = bc.loadavg()
    for _ in range(a.repeats):
        atoms.positions = x0 + rng.normal(scale=1e-3, size=x0.shape)
        t0, c0 = time.perf_counter(), time.process_time()
        atoms.get_forces()
        atoms.get_stress()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    after = bc.loadavg()
    t0 = time.perf_counter()
    i, _, _ = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, calc.cutoff)
    t_nl = time.perf_counter() - t0
    w, c = statistics.median(wall), statistics.median(cpu)
    return {
        "n_atoms": n, "repeat": list(rep), "n_edges": int(len(i)), "dtype": a.dtype[0],
        "max_edges": a.max_edges or None, "model": desc, "steps_timed": a.repeats,
        "us_per_atom_step": 1e6 * w / n, "cpu_us_per_atom_step": 1e6 * c / n,
        "seconds_per_step": w, "first_call_seconds": first, "neighbor_list_seconds": t_nl,
        "neighbor_list_share": t_nl / w,
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "loadavg_before": before, "loadavg_after": after,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: an untrained default-size model)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    p.add_argument("--sizes", nargs="+", default=["6,6,7", "14,14,13", "29,29,30"],
                   help="cubic fcc repeats (4 atoms each): 6,6,7 = 1,008 atoms ... 63,63,63 = 1,000,188")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per row (median reported)")
    p.add_argument("--max-edges", type=int, default=None,
                   help="SciMLCalculator(max_edges=...); default: the calculator's; 0: one pass (unchunked)")
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "potentials_scale.json"))
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    if a.one:
        if a.max_edges is None:
            from sciml.potentials.chunked import DEFAULT_MAX_EDGES

            a.max_edges = DEFAULT_MAX_EDGES
        print(json.dumps(one(a)))
        return 0
    rows = []
    for size in a.sizes:
        for dt in a.dtype:
            cmd = [sys.executable, __file__, "--one", size, "--dtype", dt, "--threads", str(a.threads),
                   "--repeats", str(a.repeats)]
            if a.model:
                cmd += ["--model", a.model]
            if a.max_edges is not None:
                cmd += ["--max-edges", str(a.max_edges)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                row = {"repeat": size, "dtype": dt, "error": (r.stderr or r.stdout)[-2000:], "returncode": r.returncode}
            else:
                row = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    bc.write_json(a.out, {"run": bc.run_info(a.threads), "rows": rows}, echo=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
