#!/usr/bin/env python
"""MD steps per second and peak memory, sciml vs MACE, on 1,008- and 10,192-atom alloy cells.

Both sides run ASE velocity Verlet (0.5 fs, 300 K start) through their own ASE calculator, timed
by the same function (``bench_common.md_throughput``), one after the other in fresh processes
(peak RSS per process), with the same thread count. sciml: ``SciMLCalculator`` (default
block-wise evaluation) in float32 and float64; MACE: ``mace_md_speed.py`` in ``.venv-mace``
(issue-14 configuration 64x0e+64x1o, l <= 3, correlation 3; untrained) in float64, MACE's default.
The cells are written to ``bench-data/md/`` so both sides read identical structures.

    python workflows/benchmarks/potentials_md_speed.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from potentials_scale import alloy_cell  # noqa: E402

SIZES = {"1008": (6, 6, 7), "10192": (14, 14, 13)}


def sciml_side(a) -> dict:
    import ase.io
    import torch

    torch.set_num_threads(a.threads)
    from potentials_scale import _model

    from sciml.potentials import SciMLCalculator

    model, desc = _model(a.model)
    atoms = ase.io.read(a.sciml_one)
    calc = SciMLCalculator(model, dtype=a.dtype[0])
    steps = a.steps_small if len(atoms) < 5000 else a.steps_large
    r = bc.md_throughput(calc, atoms, steps=steps, warmup=2, repeats=3)
    r.update(model=desc, dtype=a.dtype[0], peak_rss_MiB=bc.peak_rss_mb())
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="sciml model file (default: untrained default-size model)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", nargs="+", default=["float32", "float64"], help="sciml precisions")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--steps-small", type=int, default=20)
    p.add_argument("--steps-large", type=int, default=4)
    p.add_argument("--mace-python", default=bc.baseline_python("mace"))
    p.add_argument("--mace-steps", type=int, default=1)
    p.add_argument("--no-mace", action="store_true")
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "potentials_md_speed.json"))
    p.add_argument("--sciml-one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    if a.sciml_one:
        print(json.dumps(sciml_side(a)))
        return 0
    import ase.io

    folder = bc.WORK_DIR / "md"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for s in a.sizes:
        files[s] = folder / f"alloy_{s}.extxyz"
        ase.io.write(files[s], alloy_cell(SIZES[s]))
    res: dict = {"sciml": [], "mace": None}
    for s in a.sizes:
        for dt in a.dtype:
            cmd = [sys.executable, __file__, "--sciml-one", str(files[s]), "--dtype", dt, "--threads", str(a.threads),
                   "--steps-small", str(a.steps_small), "--steps-large", str(a.steps_large)]
            if a.model:
                cmd += ["--model", a.model]
            r = subprocess.run(cmd, capture_output=True, text=True)
            row = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {"error": r.stderr[-2000:]}
            row["structure"] = files[s].name
            res["sciml"].append(row)
            print("sciml", json.dumps(row), flush=True)
    if not a.no_mace:
        mout = folder / "mace_md_speed.json"
        env = dict(os.environ)
        cmd = [a.mace_python, str(Path(__file__).with_name("mace_md_speed.py")), "--structures",
               *[str(files[s]) for s in a.sizes], "--steps", str(a.mace_steps), "--threads", str(a.threads),
               "--out", str(mout)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        res["mace"] = json.loads(mout.read_text()) if r.returncode == 0 else {"error": r.stderr[-3000:]}
        print("mace", json.dumps(res["mace"])[:3000], flush=True)
        if r.returncode == 0:
            mace_by_n = {row["n_atoms"]: row for row in res["mace"]["md"] if "steps_per_s" in row}
            res["speedup_vs_mace_float64"] = {
                str(row["n_atoms"]): row["steps_per_s"] / mace_by_n[row["n_atoms"]]["steps_per_s"]
                for row in res["sciml"] if row.get("dtype") == "float64" and row.get("n_atoms") in mace_by_n}
    bc.write_json(a.out, {"run": bc.run_info(a.threads), **res}, echo=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
