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

    python workflows/benchmarks/potential_alloy_tuning.py --budget-cpu 300 --write-best \
        workflows/benchmarks/configs/sciml_alloys.yaml

    python workflows/benchmarks/potential_alloy_tuning.py --budget-curve l0_c55_bs2_st2

fits ``error = a * (CPU seconds)^b`` (least squares in log-log) to the validation errors of one candidate
screened at several budgets and prints the budget each issue-14 goal would need if the power law held, and if the local exponent
of the last two budgets held (when the curve flattens, both are lower bounds);
``results/potential_alloy_budget_curve.json`` (``_n200.json`` and so on for other ``--n-train``). The curve is the evidence of what one CPU core can do.

``--write-best`` writes the configuration of the best screened candidate (at that budget and training size) as the
benchmark configuration. "Best" is the smallest sum of the three validation errors, each divided by
its issue-14 goal (forces / 3.0 meV/Å + stress / 0.03 GPa + energy / 2.0 meV/atom), so that no one
error dominates by its units.
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
#: issue-14 goals that scale the validation errors in the selection score
GOALS = {"forces_mae_meV_per_A": 3.0, "stress_mae_GPa": 0.03, "energy_mae_meV_per_atom": 2.0}


def score(valid: dict) -> float:
    """Sum of the validation errors, each in units of its goal (smaller is better)."""
    return sum(valid[k] / g for k, g in GOALS.items())


def write_best(path: Path, budget: float, n_train: int) -> dict:
    """Write the best screened candidate's configuration to ``path`` (YAML); return its run entry."""
    import yaml

    from sciml._io import atomic_write_text

    doc = json.loads((bc.RESULTS_DIR / f"{RESULT}.json").read_text())
    runs = [r for r in doc["runs"] if r["budget_cpu_s"] == budget and r["n_train"] == n_train]
    if not runs:
        raise ValueError(f"no screened runs at budget {budget:g} CPU-s and n_train {n_train} in {RESULT}.json")
    ranked = sorted(runs, key=lambda r: score(r["valid"]))
    for r in ranked:
        v = r["valid"]
        print(f"{r['name']:20s} score {score(v):6.2f}  F {v['forces_mae_meV_per_A']:.2f} meV/Å"
              f"  S {v['stress_mae_GPa']:.4f} GPa  E {v['energy_mae_meV_per_atom']:.2f} meV/atom")
    best = ranked[0]
    v = best["valid"]
    head = (f"# Benchmark configuration of sciml on the alloy set: candidate {best['name']!r}, the best of "
            f"{len(runs)} screened by\n# potential_alloy_tuning.py on train/valid only ({budget:g} CPU-s, "
            f"{n_train} frames; score = F/3.0 + S/0.03 + E/2.0):\n# valid F {v['forces_mae_meV_per_A']:.2f} meV/Å, "
            f"S {v['stress_mae_GPa']:.4f} GPa, E {v['energy_mae_meV_per_atom']:.2f} meV/atom.\n# Loss weights "
            f"written out (TrainConfig defaults where the candidate left them): energy on (eV/atom)^2, forces on "
            f"(eV/Å)^2, stress on (eV/Å^3)^2.\n")
    from sciml.potentials import TrainConfig

    dflt = TrainConfig()
    cfg = {**best["config"], **{k: best["config"].get(k, getattr(dflt, k))
                                for k in ("energy_weight", "forces_weight", "stress_weight")}}
    atomic_write_text(path, head + yaml.safe_dump(cfg, sort_keys=False))
    print(f"best: {best['name']} -> {path}")
    return best


def budget_curve(name: str, n_train: int) -> dict:
    """Power-law fits ``error = a * budget^b`` of the validation errors of ``name`` over its screened budgets."""
    import numpy as np

    doc = json.loads((bc.RESULTS_DIR / f"{RESULT}.json").read_text())
    # a run that stopped before its budget (early stopping) is not a point of the curve
    runs = sorted((r for r in doc["runs"] if r["name"] == name and r["n_train"] == n_train
                   and r.get("stop_reason") != "early_stopping"), key=lambda r: r["budget_cpu_s"])
    if len(runs) < 3:
        raise ValueError(f"{name!r} at n_train {n_train} was screened at {len(runs)} budgets; a curve needs >= 3")
    budgets = np.array([r["budget_cpu_s"] for r in runs], float)
    fits = {}
    print(f"{name}, n_train {n_train}: validation errors by CPU budget")
    print("  budget (CPU-s) " + " ".join(f"{b:9.0f}" for b in budgets))
    for key, goal in GOALS.items():
        err = np.array([r["valid"][key] for r in runs], float)
        b, log_a = np.polyfit(np.log(budgets), np.log(err), 1)
        need = float(np.exp((np.log(goal) - log_a) / b)) if b < 0 else float("inf")
        # local exponents between consecutive budgets, and the goal extrapolated from the last two budgets
        local = np.diff(np.log(err)) / np.diff(np.log(budgets))
        last = float(local[-1])
        met = budgets[err <= goal]
        if met.size:  # reached within the screened budgets: the smallest budget that reached it
            need_last = float(met[0])
        else:
            need_last = float(budgets[-1] * (goal / err[-1]) ** (1.0 / last)) if last < 0 else float("inf")
        fits[key] = {"errors": err.tolist(), "exponent": float(b), "prefactor": float(np.exp(log_a)), "goal": goal,
                     "budget_for_goal_cpu_s": need, "local_exponents": local.tolist(),
                     "budget_for_goal_from_last_two_cpu_s": need_last, "reached_within_screened_budgets": bool(met.size)}
        print(f"  {key:26s}" + " ".join(f"{e:9.4g}" for e in err)
              + f" | exponent {b:+.3f} (local {', '.join(f'{x:+.2f}' for x in local)}); goal {goal:g}: "
              + (f"reached at {need_last:,.0f} CPU-s" if met.size else
                 f"~{need:,.0f} CPU-s by the fit, ~{need_last:,.0f} from the last two budgets"))
    out = {"name": name, "n_train": n_train, "budgets_cpu_s": budgets.tolist(),
           "steps": [r["steps"] for r in runs], "epochs": [r["epochs"] for r in runs],
           "loadavg_start_end": [r.get("loadavg_start_end") for r in runs], "fits": fits,
           "note": "validation split only; the extrapolation assumes the power law of the screened budgets holds"}
    bc.save_result("potential_alloy_budget_curve" + ("" if n_train == 1000 else f"_n{n_train}"), out, threads=1)
    return out


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
    p.add_argument("--write-best", type=Path, metavar="YAML",
                   help="write the best screened configuration (at --budget-cpu, --n-train) to YAML and exit")
    p.add_argument("--budget-curve", metavar="NAME",
                   help="fit error vs CPU budget for one candidate screened at >= 3 budgets (at --n-train) and exit")
    p.add_argument("--collect", nargs="+", metavar="NAME",
                   help="add the finished worker results of these candidates (a stopped driver) to the results JSON")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    if a.write_best:
        write_best(a.write_best, a.budget_cpu, a.n_train)
        return 0
    if a.budget_curve:
        budget_curve(a.budget_curve, a.n_train)
        return 0
    if a.collect:  # workers whose driver was stopped: their own JSON files are complete
        outs = {n: a.work_dir / f"{n}_n{a.n_train}_b{a.budget_cpu:g}.json" for n in a.collect}
        docs = {n: finished(n, out, "not recorded (collected after the driver stopped)") for n, out in outs.items()}
        for d in docs.values():
            d["collected"] = "trained by a driver that was stopped while its workers ran; 'command' is the collecting one"
        merge_results(docs, a.n_train, a.budget_cpu)
        return 0
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
            done[n] = finished(n, out, load0)
            merge_results({n: done[n]}, a.n_train, a.budget_cpu)  # saved as each candidate finishes
    return 0


def merge_results(done: dict, n_train: int, budget: float) -> None:
    """Add (or replace: same name, training size and budget) the finished runs ``done`` in the results JSON."""
    path = bc.RESULTS_DIR / f"{RESULT}.json"
    old = json.loads(path.read_text()) if path.exists() else {"runs": []}
    keep = [r for r in old.get("runs", []) if not (r["name"] in done and r["n_train"] == n_train
                                                     and r["budget_cpu_s"] == budget)]
    runs = keep + [{"name": n, **d} for n, d in done.items()]
    bc.save_result(RESULT, {"split": "split_by_trajectory(load_alloys('full'), 1000, 100, seed=0): train/valid only",
                            "runs": runs}, threads=1)


def finished(name: str, out: Path, load0) -> dict:
    """The summary of one finished worker (its JSON without the validation history), printed."""
    doc = json.loads(out.read_text())
    doc.pop("history")
    doc["loadavg_start_end"] = [load0, bc.loadavg()]
    doc["command"] = bc.run_info()["command"]
    v = doc["valid"]
    print(f"{name:28s} n={doc['n_train']:5d} steps {doc['steps']:6d} ep {doc['epochs']:3d} cpu {doc['train_cpu_s']:6.0f}"
          f" wall {doc['train_wall_s']:6.0f} | valid E {v['energy_mae_meV_per_atom']:.3f} meV/atom"
          f" F {v['forces_mae_meV_per_A']:.3f} meV/Å S {v.get('stress_mae_GPa', float('nan')):.4f} GPa", flush=True)
    return doc


if __name__ == "__main__":
    raise SystemExit(main())
