"""Side-by-side benchmark: sciml.potentials vs MACE on the ethanol GFN2-xTB split (issue 4).

One run, identical conditions for both sides:

1. the benchmark split ``split_frames(load_pes("ethanol_gfn2_500K"), 1000, 100, seed=0)``
   written once to extxyz (``--data-dir``) and read by both;
2. all trainings (sciml and the MACE variants) start at the same moment and run CONCURRENTLY, each limited to
   ``--threads`` torch threads and the same wall-clock budget ``--budget`` (so both see the
   same machine contention); the load average is sampled during training;
3. then, one after the other with the same thread count, test errors, parameter count, MD
   throughput (one ethanol; periodic 27-ethanol box) and evaluation time per atom for
   growing periodic boxes, measured by the same code (``bench_common.py``) for both.

sciml is trained with ``sciml potential train`` (default configuration unless ``--sciml-config``)
and scored with ``sciml potential eval --json``; MACE runs in its own virtual environment via
``mace_baseline.py``, in two small configurations (``MACE_VARIANTS``): "MACE-small" (32 channels,
max_L 1, correlation 3, l_max 3 spherical harmonics: MACE's default body order) and "MACE-fast"
(correlation 2, l_max 2: about 4x more optimiser steps per second on this CPU), so MACE is
not judged by a configuration too slow for the budget.

    python workflows/benchmarks/compare_potentials.py --budget 600 --threads 1 \\
        --data-dir bench-data/ethanol --out-dir bench-data/runs/compare_potentials

Writes ``comparison.json`` and ``comparison.md`` into ``--out-dir`` and prints the table.
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

REPO = bc.REPO


def ensure_split(data_dir: Path) -> dict[str, Path]:
    """Write the benchmark split to ``data_dir`` unless it is already there."""
    paths = {k: data_dir / f"{k}.extxyz" for k in ("train", "valid", "test")}
    if not all(p.exists() for p in paths.values()):
        from sciml.atoms import split_frames, write_frames
        from sciml.datasets import load_pes

        data_dir.mkdir(parents=True, exist_ok=True)
        tr, va, te = split_frames(load_pes("ethanol_gfn2_500K"), 1000, 100, seed=0)
        for k, frames in zip(("train", "valid", "test"), (tr, va, te)):
            write_frames(paths[k], frames)
    return paths


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


MACE_VARIANTS = {
    # name: extra mace_baseline.py arguments (all: 32 channels, max_L 1, 2 interactions, r_max 5 Å)
    "MACE-small": ["--correlation", "3", "--max-ell", "3"],  # MACE's default body order / sph. harmonics
    "MACE-fast": ["--correlation", "2", "--max-ell", "2"],  # cheaper product basis: ~4x more steps per second
}


def train_all(a, paths: dict, out: Path) -> dict:
    env = _env(a.threads)
    sciml_model = out / "sciml_model.pt"
    for f in out.glob("sciml_model*"):
        f.unlink()  # fresh training (the CLI resumes from an existing checkpoint)
    cmds = {"sciml": [sys.executable, "-m", "sciml", "potential", "train", "--train", str(paths["train"]),
                      "--valid", str(paths["valid"]), "--out", str(sciml_model), "--max-time", str(a.budget),
                      "--seed", str(a.seed), "--threads", str(a.threads), "--device", "cpu", "--quiet"]}
    if a.sciml_config:
        cmds["sciml"] += ["--config", str(a.sciml_config)]
    for name in a.mace_variants:
        wd = out / name
        if wd.exists():
            import shutil

            shutil.rmtree(wd)
        cmds[name] = [a.mace_python, str(HERE / "mace_baseline.py"), "--phase", "train", "--train", str(paths["train"]),
                      "--valid", str(paths["valid"]), "--test", str(paths["test"]), "--workdir", str(wd),
                      "--max-time", str(a.budget), "--seed", str(a.seed), "--threads", str(a.threads),
                      "--out", str(out / f"{name}_train.json"), *MACE_VARIANTS[name]]
    logs = {k: open(out / f"{k}_train.log", "w") for k in cmds}
    before = bc.loadavg()
    t0 = time.perf_counter()
    procs = {}
    for k, cmd in cmds.items():
        stdout = subprocess.PIPE if k == "sciml" else logs[k]
        stderr = logs[k] if k == "sciml" else subprocess.STDOUT
        procs[k] = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=stdout, stderr=stderr, text=True)
    samples, wall = [], {}
    sciml_stdout = ""
    while len(wall) < len(procs):
        for k, p in procs.items():
            if k not in wall and p.poll() is not None:
                wall[k] = time.perf_counter() - t0
        if len(wall) < len(procs):
            time.sleep(2.0)
            if not samples or time.perf_counter() - t0 - samples[-1][0] >= 30:
                samples.append((round(time.perf_counter() - t0, 1), bc.loadavg()))
    sciml_stdout = procs["sciml"].stdout.read()
    for f in logs.values():
        f.close()
    (out / "sciml_train.stdout").write_text(sciml_stdout)
    for k, p in procs.items():
        if p.returncode != 0:
            raise RuntimeError(f"{k} training failed ({p.returncode}); see {out}/{k}_train.log")
    return {
        "budget_s": a.budget,
        "threads_each": a.threads,
        "concurrent": list(cmds),
        "commands": cmds,
        "loadavg_before": before,
        "loadavg_after": bc.loadavg(),
        "loadavg_samples_during_training": samples,
        "wall_s": wall,
        "results": {"sciml": _last_json(sciml_stdout),
                    **{k: json.loads((out / f"{k}_train.json").read_text())["training"] for k in a.mace_variants}},
    }


def bench_all(a, paths: dict, out: Path) -> dict:
    env = _env(a.threads)
    res: dict = {}
    model = out / "sciml_model.pt"
    stdout, m = _run([sys.executable, "-m", "sciml", "potential", "eval", "--model", str(model), "--data",
                      str(paths["test"]), "--json", "--threads", str(a.threads), "--device", "cpu"], env, out / "sciml_eval.log")
    res["sciml_cli_eval"] = {**_last_json(stdout), **m}
    extra = ["--md-steps-small", str(a.md_steps_small), "--md-steps-box", str(a.md_steps_box),
             "--scaling-sizes", *map(str, a.scaling_sizes)]
    _run([sys.executable, str(HERE / "sciml_potential_side.py"), "--model", str(model), "--test", str(paths["test"]),
          "--threads", str(a.threads), "--out", str(out / "sciml_bench.json"), *extra], env, out / "sciml_bench.log")
    res["sciml"] = json.loads((out / "sciml_bench.json").read_text())
    for name in a.mace_variants:
        _run([a.mace_python, str(HERE / "mace_baseline.py"), "--phase", "bench", "--train", str(paths["train"]),
              "--valid", str(paths["valid"]), "--test", str(paths["test"]), "--workdir", str(out / name),
              "--threads", str(a.threads), "--out", str(out / f"{name}_bench.json"), *MACE_VARIANTS[name], *extra],
             env, out / f"{name}_bench.log")
        res[name] = json.loads((out / f"{name}_bench.json").read_text())
    return res


def _f(x, nd=2):
    return "n/a" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def table(result: dict) -> str:
    tr, b = result["training"], result["bench"]
    names = [k for k in tr["results"] if k != "sciml"]
    s = b["sciml"]
    header = "| metric | sciml | " + " | ".join(names) + " | " + " | ".join(f"sciml vs {n}" for n in names) + " |"
    lines = [header, "|---" * (2 + 2 * len(names)) + "|"]

    def row(label, sv, mvs, ratios):
        lines.append(f"| {label} | {sv} | " + " | ".join(mvs) + " | " + " | ".join(ratios) + " |")

    blank = [""] * len(names)
    row("training budget (s), all concurrent, threads each", f"{tr['budget_s']:.0f}, {tr['threads_each']}",
        [f"{tr['budget_s']:.0f}, {tr['threads_each']}"] * len(names), blank)
    row("training process wall time (s)", _f(tr["wall_s"]["sciml"], 0), [_f(tr["wall_s"][n], 0) for n in names], blank)
    st = tr["results"]["sciml"]
    row("epochs / optimiser steps (batch)", f"{_f(st.get('epochs', st.get('epoch')))} / {_f(st.get('steps'))}",
        [f"{tr['results'][n]['epochs_started']} / {tr['results'][n]['optimizer_steps']} (10)" for n in names], blank)
    row("parameters", f"{s['n_parameters']:,}", [f"{b[n]['n_parameters']:,}" for n in names], blank)
    for key, label in (("energy_mae_meV", "test energy MAE (meV)"), ("energy_mae_meV_per_atom", "test energy MAE (meV/atom)"),
                       ("forces_mae_meV_per_A", "test force MAE (meV/Å)"), ("forces_rmse_meV_per_A", "test force RMSE (meV/Å)")):
        row(label, _f(s["test"][key]), [_f(b[n]["test"][key]) for n in names],
            [_f(s["test"][key] / b[n]["test"][key]) + "x" for n in names])
    for dt in ("float64", "float32"):
        k = f"inference_{dt}"
        if k not in s or any(k not in b[n] for n in names):
            continue
        for sys_key, label in (("md_ethanol", "MD steps/s, 1 ethanol"), ("md_27_ethanol_box", "MD steps/s, 27-ethanol box (243 atoms)")):
            vs = s[k][sys_key]["steps_per_s"]
            row(f"{label} ({dt})", _f(vs, 1), [_f(b[n][k][sys_key]["steps_per_s"], 1) for n in names],
                [_f(vs / b[n][k][sys_key]["steps_per_s"]) + "x faster" for n in names])
        for i, rs in enumerate(s[k]["eval_scaling"]):
            row(f"eval µs/atom, {rs['system']}, {rs['n_atoms']} atoms ({dt})", _f(rs["us_per_atom"], 0),
                [_f(b[n][k]["eval_scaling"][i]["us_per_atom"], 0) for n in names],
                [_f(b[n][k]["eval_scaling"][i]["us_per_atom"] / rs["us_per_atom"]) + "x faster" for n in names])
    lines.append("")
    lines.append(f"Load average: before training {tr['loadavg_before']}, after {tr['loadavg_after']}; during training "
                 + ", ".join(f"{t:.0f}s: {l}" for t, l in tr["loadavg_samples_during_training"][::4]) + ".")
    lines.append("Inference measurements (one after the other): " + "; ".join(
        f"{n} MD 1 ethanol {b[n]['inference_float64']['md_ethanol']['loadavg_before']}" for n in ["sciml", *names]
        if "inference_float64" in b[n]) + ".")
    lines.append(f"sciml CLI eval (batched): E MAE {_f(b['sciml_cli_eval'].get('energy_mae_meV'))} meV, "
                 f"F MAE {_f(b['sciml_cli_eval'].get('forces_mae_meV_per_A'))} meV/Å.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "ethanol")
    p.add_argument("--out-dir", type=Path, default=bc.WORK_DIR / "runs" / "compare_potentials",
                   help="models and logs (raw JSON also goes to results/compare_potentials.json)")
    p.add_argument("--budget", type=float, default=600.0, help="training wall-clock budget per side (s)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per side")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mace-python", default=bc.baseline_python("mace"))
    p.add_argument("--mace-variants", nargs="+", default=list(MACE_VARIANTS), choices=list(MACE_VARIANTS))
    p.add_argument("--sciml-config", type=Path, help="YAML TrainConfig for sciml (default: sciml defaults)")
    p.add_argument("--skip-train", action="store_true", help="reuse models and training results in --out-dir")
    p.add_argument("--md-steps-small", type=int, default=200)
    p.add_argument("--md-steps-box", type=int, default=30)
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=[2, 3, 4, 5])
    a = p.parse_args(argv)
    out = a.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = ensure_split(a.data_dir)
    result: dict = {"data": {k: str(v) for k, v in paths.items()}, "machine": bc.machine_info(), "threads": a.threads}
    if a.skip_train:
        result["training"] = json.loads((out / "training.json").read_text())
    else:
        result["training"] = train_all(a, paths, out)
        bc.write_json(out / "training.json", result["training"], echo=False)
    result["bench"] = bench_all(a, paths, out)
    md = table(result)
    result["markdown"] = md
    bc.write_report(out, result, md, name="compare_potentials")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
