"""Choose sciml.potentials training defaults on the alloy set's train/valid split (test set never read).

Every candidate configuration trains on the training split (all 1,000 frames, or a random subset
of ``--n-train`` frames, seed 0) for a budget of *CPU seconds* of its own process (1 torch
thread), so that candidates run side by side on a shared machine are compared by the work they
could do rather than by how busy the machine was; the budget includes reading the frames and
building the neighbour lists, as ``--max-time`` does. The schedule sees the budget as its
``max_time`` (so a cosine schedule ends at it). Reported: validation errors of the kept EMA
weights (energy meV/atom, forces meV/Å, stress GPa), steps, epochs, CPU and wall seconds.

    python workflows/benchmarks/potential_alloy_tuning.py --budget-cpu 600 --parallel 2 \\
        --candidates workflows/benchmarks/configs/alloy_candidates.yaml [--only NAME ...]

The candidates file maps names to :class:`sciml.potentials.TrainConfig` mappings. Results are
appended (one entry per name, budget and training size) to ``results/potential_alloy_tuning.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from alloy_data import alloy_split, subset  # noqa: E402

RESULT = "potential_alloy_tuning"


def worker(a) -> int:
    """Train one candidate for ``--budget-cpu`` CPU seconds; write its validation errors."""
    import torch

    torch.set_num_threads(1)
    c0 = time.process_time()
    t0 = time.perf_counter()
    from sciml.atoms import read_frames
    from sciml.potentials import TrainConfig, evaluate, train_potential

    # max_time counts CPU seconds of this process: the training loop reads its clock from the module's
    # ``time``, which is pointed at process_time here (this script only; the library keeps wall-clock time)
    import types

    import sciml.potentials.train as train_module

    train_module.time = types.SimpleNamespace(perf_counter=time.process_time)
    cfg_dict = json.loads(a.config)
    paths = alloy_split(a.data_dir)
    train = subset(read_frames(paths["train"]), a.n_train)
    valid = read_frames(paths["valid"])
    cfg = TrainConfig.from_dict({**cfg_dict, "max_time": a.budget_cpu, "progress": False, "device": "cpu"})
    out = Path(a.out).with_suffix(".pt")
    res = train_potential(train, valid, out, cfg, resume=False,
                          callback=lambda info: time.process_time() - c0 >= a.budget_cpu)
    train_cpu, train_wall = time.process_time() - c0, time.perf_counter() - t0
    valid_m = evaluate(res.model, valid)
    doc = {"config": cfg_dict, "n_train": len(train), "budget_cpu_s": a.budget_cpu, "steps": res.steps,
           "epochs": res.epochs, "stop_reason": res.stop_reason, "train_cpu_s": train_cpu, "train_wall_s": train_wall,
           "num_parameters": res.model.num_parameters(), "valid": valid_m,
           "history": res.history}
    bc.write_json(a.out, doc, echo=False)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "alloys")
    p.add_argument("--work-dir", type=Path, default=bc.WORK_DIR / "runs" / "alloy_tuning")
    p.add_argument("--candidates", type=Path, default=HERE / "configs" / "alloy_candidates.yaml")
    p.add_argument("--only", nargs="*", help="names of candidates to run (default: all)")
    p.add_argument("--budget-cpu", type=float, default=600.0)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    import yaml

    cands = yaml.safe_load(a.candidates.read_text())
    names = a.only or list(cands)
    alloy_split(a.data_dir)
    a.work_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIML_QUIET": "1"}
    queue = list(names)
    running: dict[str, tuple] = {}
    done: dict[str, dict] = {}
    while queue or running:
        while queue and len(running) < a.parallel:
            n = queue.pop(0)
            out = a.work_dir / f"{n}_n{a.n_train}_b{a.budget_cpu:g}.json"
            cmd = [sys.executable, __file__, "--worker", "--config", json.dumps(cands[n]), "--budget-cpu",
                   str(a.budget_cpu), "--n-train", str(a.n_train), "--data-dir", str(a.data_dir), "--out", str(out)]
            log = open(out.with_suffix(".log"), "w")
            running[n] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), out, log, bc.loadavg())
        time.sleep(5)
        for n, (proc, out, log, load0) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[n]
            if proc.returncode != 0:
                print(f"{n}: failed ({proc.returncode}), see {out.with_suffix('.log')}", flush=True)
                continue
            doc = json.loads(out.read_text())
            doc.pop("history")
            doc["loadavg_start_end"] = [load0, bc.loadavg()]
            doc["command"] = bc.run_info()["command"]
            done[n] = doc
            v = doc["valid"]
            print(f"{n:28s} n={doc['n_train']:5d} steps {doc['steps']:6d} ep {doc['epochs']:3d} cpu {doc['train_cpu_s']:6.0f}"
                  f" wall {doc['train_wall_s']:6.0f} | valid E {v['energy_mae_meV_per_atom']:.3f} meV/atom"
                  f" F {v['forces_mae_meV_per_A']:.3f} meV/Å S {v.get('stress_mae_GPa', float('nan')):.4f} GPa", flush=True)
    path = bc.RESULTS_DIR / f"{RESULT}.json"
    old = json.loads(path.read_text()) if path.exists() else {"runs": []}
    keep = [r for r in old.get("runs", []) if not (r["name"] in done and r["n_train"] == a.n_train
                                                     and r["budget_cpu_s"] == a.budget_cpu)]
    runs = keep + [{"name": n, **d} for n, d in done.items()]
    bc.save_result(RESULT, {"split": "split_by_trajectory(load_alloys('full'), 1000, 100, seed=0): train/valid only",
                            "runs": runs}, threads=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
