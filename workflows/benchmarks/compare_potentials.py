"""Side-by-side accuracy benchmark: sciml.potentials vs MACE on the multi-element alloy set (issue 14).

One invocation = one training-set size ``--n-train`` (50, 200 or 1000 frames: a random subset, seed 0,
of the 1,000 training frames of ``split_by_trajectory(load_alloys("full"), 1000, 100, seed=0)``), run
under identical conditions:

1. both trainings start at the same moment and run CONCURRENTLY (2 processes on the 2 cores), each
   limited to ``--threads`` torch threads and the same wall-clock budget ``--budget``; the load
   average is sampled during training;
2. then, one after the other, test-set errors on the held-out trajectories (1,300 frames never used
   for any choice): energy per atom, forces, stress.

sciml is trained and scored exactly as the README shows (``sciml potential train ... --config
configs/sciml_alloys.yaml`` and ``sciml potential eval --json``). MACE runs in its own virtual
environment via ``mace_baseline.py`` (MACE's own training loop ``mace_run_train`` with a wall-clock
stop) with ``--loss stress`` and the same loss weights as sciml (the two losses have the same form,
so the objective is the same), MACE's defaults otherwise (``MACE_ARGS``).

    python workflows/benchmarks/compare_potentials.py --n-train 1000 --budget 600 --threads 1
    python workflows/benchmarks/compare_potentials.py --summary     # learning-curve table of all sizes

Only training is timed; on a shared machine run it alone (`an exclusive benchmark lock`-style lock) with
``--train-only`` and score the models afterwards with ``--skip-train`` (test errors do not depend on
the load). MACE's own end-of-training error tables on the training/validation sets are skipped
(reporting only; see ``mace_baseline.py``).

Raw results: ``results/compare_potentials_alloys_n{N}.json``; ``--summary`` writes
``results/compare_potentials_alloys.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from alloy_data import alloy_split, train_subset_file  # noqa: E402

REPO = bc.REPO
SCIML_CONFIG = HERE / "configs" / "sciml_alloys.yaml"
#: MACE: 32x0e+32x1o hidden features, correlation 3, spherical harmonics to l=3 (MACE's defaults apart from
#: the width, which is reduced so that MACE completes several epochs in the budget), the cutoff and loss
#: weights of the sciml configuration (filled in from it), batch 10, Adam(amsgrad) lr 0.01, EMA 0.99,
#: ReduceLROnPlateau, least-squares E0s, float64.
MACE_ARGS = ["--channels", "32", "--max-L", "1", "--correlation", "3", "--max-ell", "3", "--loss", "stress"]


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["SCIML_QUIET"] = "1"
    return env


def _last_json(text: str) -> dict:
    """The last top-level JSON object printed in ``text``."""
    end = text.rstrip().rfind("}")
    depth = 0
    for i in range(end, -1, -1):
        if text[i] == "}":
            depth += 1
        elif text[i] == "{":
            depth -= 1
            if depth == 0:
                return json.loads(text[i : end + 1])
    raise ValueError("no JSON object in output")


def _run(cmd: list[str], env: dict, log: Path) -> tuple[str, dict]:
    before = bc.loadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}), see {log}: {' '.join(cmd)}")
    return proc.stdout, {"seconds": dt, "loadavg_before": before, "loadavg_after": bc.loadavg()}


def _rel(p: Path) -> str:
    return os.path.relpath(p, REPO)


def sciml_settings(config: Path) -> dict:
    import yaml

    d = yaml.safe_load(Path(config).read_text()) or {}
    return {"cutoff": float(d.get("model", {}).get("cutoff", 5.0)), "energy_weight": d.get("energy_weight", 1.0),
            "forces_weight": d.get("forces_weight", 100.0), "stress_weight": d.get("stress_weight", 10.0)}


def commands(a, paths: dict, train: Path, out: Path) -> dict[str, list[str]]:
    s = sciml_settings(a.sciml_config)
    sciml = [sys.executable, "-m", "sciml", "potential", "train", "--train", _rel(train), "--valid", _rel(paths["valid"]),
             "--out", _rel(out / "sciml_model.pt"), "--max-time", str(a.budget), "--seed", str(a.seed), "--threads",
             str(a.threads), "--device", "cpu", "--quiet", "--no-resume", "--config", _rel(a.sciml_config)]
    mace = [a.mace_python, _rel(HERE / "mace_baseline.py"), "--phase", "train", "--train", _rel(train), "--valid",
            _rel(paths["valid"]), "--test", _rel(paths["test"]), "--workdir", _rel(out / "mace"), "--max-time",
            str(a.budget), "--seed", str(a.seed), "--threads", str(a.threads), "--out", _rel(out / "mace_train.json"),
            "--r-max", str(s["cutoff"]), "--energy-weight", str(s["energy_weight"]), "--forces-weight",
            str(s["forces_weight"]), "--stress-weight", str(s["stress_weight"]), *MACE_ARGS]
    return {"sciml": sciml, "MACE": mace}


def train_both(a, paths: dict, train: Path, out: Path, sides=("sciml", "MACE")) -> dict:
    env = _env(a.threads)
    for f in list(out.glob("sciml_model*")) + ([out / "mace"] if "MACE" in sides else []):
        shutil.rmtree(f) if f.is_dir() else f.unlink(missing_ok=True)
    cmds = {k: v for k, v in commands(a, paths, train, out).items() if k in sides}
    logs = {k: open(out / f"{k}_train.log", "w") for k in cmds}
    before = bc.loadavg()
    t0 = time.perf_counter()
    procs = {k: subprocess.Popen(cmd, env=env, cwd=REPO, stdout=logs[k], stderr=subprocess.STDOUT, text=True)
             for k, cmd in cmds.items()}
    samples, wall = [], {}
    while len(wall) < len(procs):
        for k, p in procs.items():
            if k not in wall and p.poll() is not None:
                wall[k] = time.perf_counter() - t0
        if len(wall) < len(procs):
            time.sleep(2.0)
            if not samples or time.perf_counter() - t0 - samples[-1][0] >= 30:
                samples.append((round(time.perf_counter() - t0, 1), bc.loadavg()))
    for f in logs.values():
        f.close()
    for k, p in procs.items():
        if p.returncode != 0:
            raise RuntimeError(f"{k} training failed ({p.returncode}); see {out}/{k}_train.log")
    return {
        "driver_command": bc.run_info()["command"], "date": bc.run_info()["date"],
        "budget_s": a.budget, "threads_each": a.threads, "concurrent": list(cmds),
        "commands": {k: " ".join(_rel(Path(c)) if os.path.isabs(c) and c.startswith(str(REPO)) else c for c in v)
                     for k, v in cmds.items()},
        "loadavg_before": before, "loadavg_after": bc.loadavg(), "loadavg_samples_during_training": samples,
        "wall_s": wall,
        "results": {"sciml": _last_json((out / "sciml_train.log").read_text()),
                    **({"MACE": json.loads((out / "mace_train.json").read_text())["training"]} if "MACE" in sides else {})},
    }


def test_both(a, paths: dict, train: Path, out: Path, sides=("sciml", "MACE")) -> dict:
    env = _env(a.threads)
    stdout, m = _run([sys.executable, "-m", "sciml", "potential", "eval", "--model", _rel(out / "sciml_model.pt"),
                      "--data", _rel(paths["test"]), "--json", "--threads", str(a.threads), "--device", "cpu"],
                     env, out / "sciml_eval.log")
    res = {"sciml": {"test": _last_json(stdout), **m}}
    if "MACE" not in sides:
        return res
    _, m = _run([a.mace_python, _rel(HERE / "mace_baseline.py"), "--phase", "test", "--train", _rel(train), "--valid",
                 _rel(paths["valid"]), "--test", _rel(paths["test"]), "--workdir", _rel(out / "mace"), "--threads",
                 str(a.threads), "--out", _rel(out / "mace_test.json"), *MACE_ARGS], env, out / "mace_test.log")
    res["MACE"] = {**json.loads((out / "mace_test.json").read_text()), **m}
    return res


KEYS = (("energy_mae_meV_per_atom", "energy MAE (meV/atom)", 2), ("forces_mae_meV_per_A", "force MAE (meV/Å)", 2),
        ("stress_mae_GPa", "stress MAE (GPa)", 4), ("forces_rmse_meV_per_A", "force RMSE (meV/Å)", 2))


def summary() -> str:
    """Learning-curve table over every ``compare_potentials_alloys_n*.json`` in results/."""
    docs = sorted((json.loads(p.read_text()) for p in bc.RESULTS_DIR.glob("compare_potentials_alloys_n*.json")),
                  key=lambda d: d["n_train"])
    lines = ["| training frames | side | " + " | ".join(k[1] for k in KEYS) + " | epochs / steps | load avg during training |",
             "|---" * (4 + len(KEYS)) + "|"]
    for d in docs:
        tr = d["training"]
        loads = ", ".join(l for _, l in tr["loadavg_samples_during_training"][::6])
        for side in ("sciml", "MACE"):
            if side == "MACE" and "mace_kept_from" in d:  # MACE trained in the earlier run: its load
                loads = ", ".join(l for _, l in d["mace_kept_from"]["loadavg_samples_during_training"][::6])
            t = d["test"][side]["test"]
            r = tr["results"][side]
            ep = f"{r['epochs']} / {r['steps']}" if side == "sciml" else f"{r['epochs_started']} / {r['optimizer_steps']}"
            vals = " | ".join(f"{t[k]:.{nd}f}" if k in t else "n/a" for k, _, nd in KEYS)
            lines.append(f"| {d['n_train']} | {side} | {vals} | {ep} | {loads} |")
    kept = [f"{d['n_train']} frames: {d['mace_kept_from']['training_date']}" for d in docs if "mace_kept_from" in d]
    if kept:
        lines.append("\nMACE rows not rerun with the latest sciml run (sciml-only reruns), trained on " + "; ".join(kept) + ".")
    return "\n".join(lines)


def keep_mace(result: dict, old_path: Path) -> None:
    """Copy MACE's side (training record, test errors) from an earlier full run into ``result`` (sciml-only rerun),
    with a note, and keep that run's sciml side as ``sciml_previous`` for the before/after comparison."""
    old = json.loads(old_path.read_text())
    if "MACE" not in old["test"]:
        raise ValueError(f"{old_path} has no MACE results to keep")
    prev = old.get("mace_kept_from") or {"run": old["run"], "training_date": old["training"]["date"],
                                         "driver_command": old["training"]["driver_command"]}
    if "loadavg_samples_during_training" not in prev:  # the load samples of MACE's own (side-by-side) run:
        # ``old`` is that run, or a first sciml-only rerun written before this field, whose sciml_previous it is
        src = old["training"] if "mace_kept_from" not in old else old["sciml_previous"]
        prev = {**prev, "loadavg_samples_during_training": src["loadavg_samples_during_training"]}
    tr = result["training"]
    tr["results"]["MACE"] = old["training"]["results"]["MACE"]
    tr["wall_s"]["MACE"] = old["training"]["wall_s"]["MACE"]
    result["test"]["MACE"] = old["test"]["MACE"]
    result["mace_kept_from"] = {**prev, "note": "MACE was not rerun (its code and settings did not change): its "
                                "training record and test errors are those of this earlier side-by-side run"}
    result["sciml_previous"] = {
        "run": old["run"], "sciml_config": old["sciml_config"], "training_date": old["training"]["date"],
        "steps": old["training"]["results"]["sciml"]["steps"], "epochs": old["training"]["results"]["sciml"]["epochs"],
        "loadavg_samples_during_training": old["training"]["loadavg_samples_during_training"],
        "test": old["test"]["sciml"]["test"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "alloys")
    p.add_argument("--out-dir", type=Path, default=bc.WORK_DIR / "runs" / "compare_potentials_alloys")
    p.add_argument("--n-train", type=int, default=1000, help="training frames (random subset of the 1,000)")
    p.add_argument("--budget", type=float, default=600.0, help="training wall-clock budget per side (s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per side")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mace-python", default=bc.baseline_python("mace"))
    p.add_argument("--sciml-config", type=Path, default=SCIML_CONFIG)
    p.add_argument("--skip-train", action="store_true", help="reuse the models and training.json in --out-dir")
    p.add_argument("--train-only", action="store_true",
                   help="train both sides (the timed, concurrent part) and stop; score later with --skip-train")
    p.add_argument("--summary", action="store_true", help="print/write the table of all sizes and exit")
    p.add_argument("--sciml-only", action="store_true",
                   help="train and score sciml only; MACE's training record and test errors are kept from the existing "
                        "results/compare_potentials_alloys_n{N}.json (marked there), whose sciml figures are kept as "
                        "'sciml_previous'")
    a = p.parse_args(argv)
    if a.summary:
        from sciml._io import atomic_write_text

        md = summary()
        atomic_write_text(bc.RESULTS_DIR / "compare_potentials_alloys.md", md + "\n")
        print(md)
        return 0
    paths = alloy_split(a.data_dir)
    train = train_subset_file(a.data_dir, a.n_train)
    out = a.out_dir / f"n{a.n_train}"
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"n_train": a.n_train, "data": {k: _rel(v) for k, v in paths.items()}, "train_file": _rel(train),
                    "sciml_config": (a.sciml_config.read_text()), "mace_args": MACE_ARGS, "threads": a.threads}
    sides = ("sciml",) if a.sciml_only else ("sciml", "MACE")
    if a.skip_train:
        result["training"] = json.loads((out / "training.json").read_text())
    else:
        result["training"] = train_both(a, paths, train, out, sides)
        bc.write_json(out / "training.json", result["training"], echo=False)
        if a.train_only:
            print(json.dumps({k: result["training"]["results"][k] for k in sides}, indent=1, default=str))
            print("trained; score with --skip-train:", _rel(out))
            return 0
    result["test"] = test_both(a, paths, train, out, sides)
    if a.sciml_only:
        keep_mace(result, bc.RESULTS_DIR / f"compare_potentials_alloys_n{a.n_train}.json")
    path = bc.save_result(f"compare_potentials_alloys_n{a.n_train}", result, threads=a.threads)
    print(json.dumps({k: {m: v["test"].get(m) for m, _, _ in KEYS} for k, v in result["test"].items()}, indent=1))
    print("raw results:", _rel(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
