"""Side-by-side benchmark: sciml.gp vs sGDML on a GFN2-xTB split (ethanol, or the held-out malonaldehyde).

One run, identical conditions: the same extxyz split (training set = first N frames of the
benchmark train split, sGDML validates its length-scale grid on the 100 validation frames,
both are tested on the 400 test frames), the same number of threads (torch threads for
sciml; BLAS threads and ``max_processes`` for sGDML), and for each N the two fits run one
right after the other (sciml first, then sGDML), each in its own process, with the load
average recorded around every measurement.

    python workflows/benchmarks/compare_gp.py --n-train 50 100 200 500 1000 --threads 1 \\
        --data-dir bench-data/ethanol --out-dir bench-data/runs/compare_gp
    # the held-out molecule (never used for any sciml.gp default):
    python workflows/benchmarks/compare_gp.py --dataset malonaldehyde_gfn2_500K --data-dir bench-data/malonaldehyde \\
        --out-dir bench-data/runs/compare_gp_malonaldehyde --name compare_gp_malonaldehyde --n-train 200 1000

The sciml side calibrates its predictive stds on the validation frames (``GPPotential.calibrate``,
what ``sciml gp train --valid`` does) and reports calibrated and raw 95 % coverage on the test set.

sciml side: ``sciml_gp_side.py`` (``GPPotential()`` defaults: Matérn-5/2 on inverse distances,
hyperparameters by the exact marginal likelihood). sGDML side: ``sgdml_baseline.py`` (steps
1-3 of ``sgdml all``: default sigma grid 10..90, validation-based selection), run with
``--sgdml-python`` (its virtual environment). Writes ``comparison.json`` / ``comparison.md``.
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
from compare_potentials import REPO  # noqa: E402


def ensure_split(data_dir: Path, dataset: str = "ethanol_gfn2_500K") -> dict[str, Path]:
    """Write ``split_frames(load_pes(dataset), 1000, 100, seed=0)`` to ``data_dir`` unless it is there."""
    paths = {k: data_dir / f"{k}.extxyz" for k in ("train", "valid", "test")}
    if not all(p.exists() for p in paths.values()):
        from sciml.atoms import split_frames, write_frames
        from sciml.datasets import load_pes

        data_dir.mkdir(parents=True, exist_ok=True)
        for k, frames in zip(("train", "valid", "test"), split_frames(load_pes(dataset), 1000, 100, seed=0)):
            write_frames(paths[k], frames)
    return paths


def load_train_valid(data_dir: Path, dataset: str = "ethanol_gfn2_500K") -> tuple[list, list]:
    """The training pool and the validation frames of :func:`ensure_split` (never the test frames)."""
    from ase.io import read

    paths = ensure_split(data_dir, dataset)
    return read(paths["train"], index=":"), read(paths["valid"], index=":")


def _env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["SCIML_QUIET"] = "1"
    return env


def _run_json(cmd: list[str], env: dict, log: Path, out_json: Path, timeout: float) -> dict:
    before = bc.loadavg()
    t0 = time.perf_counter()
    try:
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"infeasible": f"did not finish within {timeout:.0f} s", "loadavg_before": before, "loadavg_after": bc.loadavg()}
    if proc.returncode != 0 or not out_json.exists():
        return {"infeasible": f"failed (exit {proc.returncode}); see {log}"}
    res = json.loads(out_json.read_text())
    res["process_wall_s"] = time.perf_counter() - t0
    res["process_loadavg"] = [before, bc.loadavg()]
    return res


def _f(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def table(rows: list[dict]) -> str:
    out = ["| N | force MAE sciml / sGDML (meV/Å) | energy MAE sciml / sGDML (meV) | fit sciml (s) | sGDML grid search (s) | "
           "fit speed-up | predict ms/structure sciml / sGDML (batched; single) | peak RSS sciml / sGDML (MiB) | "
           "sGDML sigma | sciml 95% force coverage, calibrated on valid (raw) | load avg (sciml fit; sGDML fit) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, g = r["sciml"], r["sgdml"]
        if "infeasible" in s or "infeasible" in g:
            out.append(f"| {r['n_train']} | sciml: {s.get('infeasible', 'ok')}; sGDML: {g.get('infeasible', 'ok')} |"
                       + " |" * 9)
            continue
        label = f"{r['n_train']}" + (" (sGDML reused)" if g.get("reused_from") else "")
        out.append(
            f"| {label} | {_f(s['test']['forces_mae_meV_per_A'])} / {_f(g['test']['forces_mae_meV_per_A'])} "
            f"| {_f(s['test']['energy_mae_meV'])} / {_f(g['test']['energy_mae_meV'])} "
            f"| {_f(s['fit_seconds'], 1)} | {_f(g['fit_seconds'], 1)} | {_f(g['fit_seconds'] / s['fit_seconds'])}x "
            f"| {_f(1e3 * s['predict_batched_s_per_structure'])} / {_f(1e3 * g['predict_batched_s_per_structure'])}; "
            f"{_f(1e3 * s['predict_single_s_per_structure'])} / {_f(1e3 * g['predict_single_s_per_structure'])} "
            f"| {s['peak_rss_MiB']:.0f} / {max(g['peak_rss_MiB_self'], g.get('peak_rss_MiB_process_tree_sampled', 0)):.0f} "
            f"| {g['selected_sigma']} ({g.get('n_models_fitted', '?')} models) "
            f"| {_f(s['forces_coverage_95'], 3)} (raw {_f(s.get('forces_coverage_95_raw'), 3)}) "
            f"| {s['fit_loadavg_before']}; {g['fit_loadavg_before']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="ethanol_gfn2_500K", help="bundled PES set")
    p.add_argument("--name", default="compare_gp", help="results/<name>.json")
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "ethanol")
    p.add_argument("--out-dir", type=Path, default=bc.WORK_DIR / "runs" / "compare_gp",
                   help="models and logs (raw JSON also goes to results/compare_gp.json)")
    p.add_argument("--n-train", type=int, nargs="+", default=[50, 100, 200, 500, 1000])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kernel", default="matern52")
    p.add_argument("--length-scales", default=None, help="sciml side: GPPotential(length_scales=...) (default: its default)")
    p.add_argument("--sgdml-python", default=bc.baseline_python("sgdml"))
    p.add_argument("--sigmas", type=int, nargs="+", help="sGDML grid (default: its own 10..90)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per fit process (s)")
    p.add_argument("--std-frames", type=int, help="sciml side: predicted stds / coverage on the first K test frames "
                   "(default: all 400; the errors always use all)")
    p.add_argument("--skip-sgdml", action="store_true")
    p.add_argument("--sgdml-full-grid", action="store_true",
                   help="sGDML fits every sigma of its grid (no early stop): the complete grid search")
    p.add_argument("--reuse-sgdml", type=Path,
                   help="take sGDML results (sgdml_n<N>.json) from an earlier run's --out-dir instead of refitting; "
                        "marked as reused in the output (its own load averages are kept)")
    a = p.parse_args(argv)
    out = a.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = ensure_split(a.data_dir, a.dataset)
    env = _env(a.threads)
    rows = []
    for n in a.n_train:
        sj = out / f"sciml_n{n}.json"
        sj.unlink(missing_ok=True)
        s = _run_json([sys.executable, str(HERE / "sciml_gp_side.py"), "--train", str(paths["train"]), "--test",
                       str(paths["test"]), "--valid", str(paths["valid"]), "--n-train", str(n), "--threads", str(a.threads), "--kernel", a.kernel,
                       "--out", str(sj)] + ([] if a.length_scales is None else ["--length-scales", a.length_scales])
                      + ([] if a.std_frames is None else ["--std-frames", str(a.std_frames)]), env, out / f"sciml_n{n}.log", sj, a.timeout)
        print(f"N={n} sciml: " + (s.get("infeasible") or
              f"F MAE {s['test']['forces_mae_meV_per_A']:.2f} meV/A, fit {s['fit_seconds']:.1f} s"), flush=True)
        if a.skip_sgdml:
            g = {"infeasible": "skipped"}
        elif a.reuse_sgdml is not None and (a.reuse_sgdml / f"sgdml_n{n}.json").exists():
            g = json.loads((a.reuse_sgdml / f"sgdml_n{n}.json").read_text())
            g = {**g["results"][0], "reused_from": str(a.reuse_sgdml)}
            print(f"N={n} sGDML: reused from {a.reuse_sgdml}", flush=True)
        else:
            gj = out / f"sgdml_n{n}.json"
            gj.unlink(missing_ok=True)
            cmd = [a.sgdml_python, str(HERE / "sgdml_baseline.py"), "--train", str(paths["train"]), "--valid",
                   str(paths["valid"]), "--test", str(paths["test"]), "--workdir", str(out / "sgdml"), "--n-train", str(n),
                   "--threads", str(a.threads), "--timeout", str(a.timeout), "--out", str(gj)]
            if a.sigmas:
                cmd += ["--sigmas", *map(str, a.sigmas)]
            if a.sgdml_full_grid:
                cmd += ["--full-grid"]
            g = _run_json(cmd, env, out / f"sgdml_n{n}.log", gj, a.timeout + 60)
            if "results" in g:
                g = {**g["results"][0], "process_wall_s": g.get("process_wall_s")}
            print(f"N={n} sGDML: " + (g.get("infeasible") or
                  f"F MAE {g['test']['forces_mae_meV_per_A']:.2f} meV/A, grid {g['fit_seconds']:.1f} s, sigma {g['selected_sigma']}"),
                  flush=True)
        rows.append({"n_train": n, "sciml": s, "sgdml": g})
        bc.write_json(out / "comparison_partial.json", {"rows": rows}, echo=False)
    md = table(rows)
    res = {"dataset": a.dataset, "data": {k: str(v) for k, v in paths.items()}, "threads": a.threads,
           "command": "python workflows/benchmarks/compare_gp.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": bc.machine_info(), "rows": rows, "markdown": md}
    bc.write_report(out, res, md, name=a.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
