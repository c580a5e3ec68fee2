"""sGDML baseline for the sciml.gp benchmark (issue 5).

Run with the sGDML virtual environment:

    python3 -m venv --system-site-packages .venv-sgdml
    .venv-sgdml/bin/pip install sgdml            # reuses the system torch 2.13.0+cpu
    .venv-sgdml/bin/python workflows/benchmarks/sgdml_baseline.py \\
        --train T.extxyz --valid V.extxyz --test TEST.extxyz \\
        --workdir bench-data/sgdml --n-train 50 100 200 500 1000 --threads 1 --out sgdml.json

For every N the training set is the first N frames of ``--train`` (no
re-sampling), the validation set is all of ``--valid`` and the test set all of
``--test``; they are written as sGDML dataset files (.npz, Å and eV).

The fit is sGDML's standard hyper-parameter search, i.e. steps 1-3 of
``sgdml all`` called through ``sgdml.cli`` exactly as ``sgdml all`` calls them:
``create`` (symmetry/permutation discovery and one task per length scale),
``train`` (closed-form "analytic" solve for each length scale, each model
scored on the validation set; sGDML stops the grid early once the validation
force RMSE rises again) and ``select`` (keeps the model with the lowest
validation force RMSE). Grid: sGDML's default sigma = 10, 20, ..., 90 unless
``--sigmas`` is given; regularisation lambda 1e-10 (default); energies used
(use_E), no energy constraints (default); NumPy backend (``--cpu``).
"Fit time" is the wall time of those three steps together.

``--full-grid`` trains and validates every sigma of the grid (sGDML's early stop
is switched off by handing its rising-error check a decreasing sequence; the
real validation errors are still written into each model and used by
``select``), i.e. the complete grid search.

Then the selected model is loaded into ``sgdml.predict.GDMLPredict`` and we
report test energy / force MAE and RMSE (meV, meV/Å), prediction time per
structure (one structure per call, as in MD, and batched over the test set),
and peak memory (max RSS of the fitting process, its children, and a sampled
sum over the whole process tree). Each N runs in its own child process so
its memory figure is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def _to_npz(frames, path: Path, name: str) -> None:
    import numpy as np
    from sgdml import __version__
    from sgdml.utils import io

    R = np.array([at.get_positions() for at in frames])
    F = np.array([at.get_forces() for at in frames])
    E = np.array([at.get_potential_energy() for at in frames])
    z = frames[0].get_atomic_numbers()
    for i, at in enumerate(frames):
        if not np.array_equal(at.get_atomic_numbers(), z):
            raise ValueError(f"frame {i} of {name}: atom order differs from frame 0")
    d = {
        "type": "d", "code_version": __version__, "name": name, "theory": "GFN2-xTB",
        "R": R, "z": z, "F": F, "E": E, "r_unit": "Ang", "e_unit": "eV",
        "F_min": F.min(), "F_max": F.max(), "F_mean": F.mean(), "F_var": F.var(),
        "E_min": E.min(), "E_max": E.max(), "E_mean": E.mean(), "E_var": E.var(),
    }
    d["md5"] = io.dataset_md5(d)
    np.savez_compressed(path, **d)


class _TreeMemory:
    """Samples the summed RSS of this process and all descendants (psutil)."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def run_one(a) -> dict:
    """Fit + evaluate for a single N (runs in its own process)."""
    import resource

    import numpy as np
    from ase.io import read
    from sgdml import cli
    from sgdml.predict import GDMLPredict
    from sgdml.utils import io

    n = a.single
    wd = a.workdir / f"n{n}"
    wd.mkdir(parents=True, exist_ok=True)
    train = read(a.train, index=f":{n}")
    if len(train) < n:
        raise ValueError(f"--train has only {len(train)} frames, N={n} requested")
    valid = read(a.valid, index=":")
    test = read(a.test, index=":")
    tr_p, va_p = wd / f"train{n}.npz", wd / "valid.npz"
    _to_npz(train, tr_p, f"train{n}")
    _to_npz(valid, va_p, "valid")

    sigs = a.sigmas if a.sigmas else list(range(10, 100, 10))  # sgdml's default grid
    task_dir = str(wd / "tasks")
    model_file = str(wd / f"sgdml_n{n}.npz")
    use_torch = False
    common = dict(max_memory=a.max_memory_gb, max_processes=a.threads, use_torch=use_torch)

    models: list[dict] = []
    if a.full_grid:
        import itertools

        real_test, calls = cli.test, itertools.count()

        def test_without_early_stop(*args, **kwargs):
            errs = real_test(*args, **kwargs)  # writes the validation errors into the model file
            return [-float(next(calls))] + (list(errs)[1:] if errs is not None else [])  # decreasing: no early stop

        cli.test = test_without_early_stop

    def grid_record(mdir) -> None:
        # ``select`` deletes the grid's model files, so note their validation errors first.
        for fn in sorted(Path(mdir).glob("*.npz")):
            with np.load(fn, allow_pickle=True) as mdl:
                if "f_err" not in mdl:
                    continue
                models.append({
                    "sigma": int(mdl["sig"]),
                    "valid_force_mae_meV_per_A": 1e3 * float(mdl["f_err"].item()["mae"]),
                    "valid_force_rmse_meV_per_A": 1e3 * float(mdl["f_err"].item()["rmse"]),
                    "valid_energy_mae_meV": 1e3 * float(mdl["e_err"].item()["mae"]) if "e_err" in mdl else None,
                })

    def fit():
        ds = io.is_file_type(str(tr_p), "dataset")
        vds = io.is_file_type(str(va_p), "dataset")
        t0 = time.perf_counter()
        td = cli.create(ds, vds, n, len(valid), sigs, False, True, False, True, task_dir=task_dir, command="all")
        td_arg = io.is_dir_with_file_type(td, "task")
        mdir = cli.train(td_arg, vds, False, True, command="all", **common)
        t1 = time.perf_counter()
        grid_record(mdir)
        t2 = time.perf_counter()
        mdir_arg = io.is_dir_with_file_type(mdir, "model", or_file=True)
        sel = cli.select(mdir_arg, True, model_file, command="all")
        t3 = time.perf_counter()
        return sel, (t1 - t0) + (t3 - t2)

    with _TreeMemory() as mem:
        (selected, fit_seconds), m_fit = bc.measure(fit)
    model = dict(np.load(model_file, allow_pickle=True))
    gdml = GDMLPredict(model, max_processes=a.threads, use_torch=use_torch)

    R = np.array([at.get_positions().ravel() for at in test])
    (E, F), m_pred = bc.measure(lambda: gdml.predict(R))
    F = F.reshape(len(test), -1, 3)
    errs = bc.errors_on(test, E, F)
    n_single = min(a.n_single, len(test))

    def single():
        for i in range(n_single):
            gdml.predict(R[i : i + 1])

    _, m_single = bc.measure(single)
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ru_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "n_train": n,
        "n_valid": len(valid),
        "sigma_grid": sigs,
        "full_grid": bool(a.full_grid),
        "n_models_fitted": len(models),
                "selected_sigma": int(model["sig"]),
        "grid_models": models,
        "n_permutations": int(model["perms"].shape[0]),
        "solver": str(model.get("solver_name", "")),
        "fit_seconds": fit_seconds,
        "fit_loadavg_before": m_fit["loadavg_before"],
        "fit_loadavg_after": m_fit["loadavg_after"],
        "test": errs,
        "predict_batched_s_per_structure": m_pred["seconds"] / len(test),
        "predict_single_s_per_structure": m_single["seconds"] / n_single,
        "predict_loadavg": [m_pred["loadavg_before"], m_single["loadavg_after"]],
        "peak_rss_MiB_self": ru_self,
        "peak_rss_MiB_largest_child": ru_child,
        "peak_rss_MiB_process_tree_sampled": mem.peak / 2**20,
        "model_file": model_file,
        "selected_from": str(selected),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True)
    p.add_argument("--valid", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--workdir", required=True, type=Path)
    p.add_argument("--out", help="JSON result file (also printed)")
    p.add_argument("--n-train", type=int, nargs="+", default=[50, 100, 200, 500, 1000])
    p.add_argument("--sigmas", type=int, nargs="+", help="length-scale grid (default: sGDML's 10:10:90)")
    p.add_argument("--full-grid", action="store_true", help="fit every sigma (no early stop once validation error rises)")
    p.add_argument("--threads", type=int, default=1, help="sGDML max_processes and BLAS threads")
    p.add_argument("--max-memory-gb", type=int, default=20, help="sGDML's memory limit (selects analytic vs iterative solver)")
    p.add_argument("--n-single", type=int, default=100, help="structures timed one per predict call")
    p.add_argument("--timeout", type=float, default=3600.0, help="per-N wall-clock limit (s); N is reported infeasible past it")
    p.add_argument("--single", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.single is not None:
        res = run_one(a)
        print("@@RESULT@@" + json.dumps(res, default=float), flush=True)
        return 0

    import sgdml

    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(a.threads)
    results = []
    for n in a.n_train:
        cmd = [sys.executable, __file__, "--train", a.train, "--valid", a.valid, "--test", a.test,
               "--workdir", str(a.workdir), "--threads", str(a.threads), "--max-memory-gb", str(a.max_memory_gb),
               "--n-single", str(a.n_single), "--single", str(n)]
        if a.sigmas:
            cmd += ["--sigmas", *map(str, a.sigmas)]
        if a.full_grid:
            cmd += ["--full-grid"]
        before = bc.loadavg()
        t0 = time.perf_counter()
        a.workdir.mkdir(parents=True, exist_ok=True)
        log = a.workdir / f"n{n}.log"
        try:
            with open(log, "w") as fh:
                proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=fh, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            results.append({"n_train": n, "infeasible": f"did not finish within --timeout {a.timeout:.0f} s",
                            "loadavg_before": before, "loadavg_after": bc.loadavg()})
            print(f"N={n}: timed out after {a.timeout:.0f} s", flush=True)
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
        if proc.returncode != 0 or not lines:
            results.append({"n_train": n, "infeasible": f"failed (exit {proc.returncode}); see {log}",
                            "stdout_tail": proc.stdout[-2000:]})
            print(f"N={n}: failed, see {log}", flush=True)
            continue
        r = json.loads(lines[-1][len("@@RESULT@@"):])
        r["wall_seconds_total"] = time.perf_counter() - t0
        results.append(r)
        print(f"N={n}: sigma={r['selected_sigma']} fit {r['fit_seconds']:.1f}s  E MAE {r['test']['energy_mae_meV']:.2f} meV  "
              f"F MAE {r['test']['forces_mae_meV_per_A']:.2f} meV/A  load {r['fit_loadavg_before']} -> {r['fit_loadavg_after']}",
              flush=True)
    bc.write_json(a.out, {
        "baseline": "sGDML",
        "sgdml_version": sgdml.__version__,
        "threads": a.threads,
        "procedure": "sgdml all steps 1-3 (create/train+validate/select), analytic solver, use_E, lambda 1e-10",
        "data": {"train": a.train, "valid": a.valid, "test": a.test},
        "machine": bc.machine_info(),
        "results": results,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
