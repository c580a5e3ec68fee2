"""Local GP (``sciml.gp.LocalGPPotential``) on the multi-element EMT alloy set: accuracy, cost, memory, MD speed.

Run (one process, one torch thread; results JSON under results/, scratch under bench-data/):

    python workflows/benchmarks/local_gp_alloys.py --sizes 50 200 --md-atoms 1000 10000

What it does, through the public interface (the extxyz files and the ``sciml gp`` CLI calls are
written to bench-data/local_gp_alloys/ so that any figure can be redone from the command line):

* data: ``load_alloys("full")`` split by trajectory, ``split_by_trajectory(frames, 1000, 100, seed=0)``
  (1,000 train / 100 valid / rest test). A training set of size N takes every (1000 // N)-th training
  frame (all compositions represented). The test figures use every ``--test-stride``-th test frame;
  coverage uses the first ``--std-frames`` of those.
* per N: ``LocalGPPotential(n_sparse=--n-sparse, cutoff=--cutoff).fit(train)``, ``calibrate(valid)``,
  ``evaluate_local(test)`` (``sciml.metrics`` keys: energy per atom, forces, stress MAE; calibrated and
  raw 95 % coverage), fit wall time, peak RSS of the process after the fit, model-file size.
* MD speed: Langevin steps/s of ASE MD with the N-largest model as calculator (no uncertainties)
  on random fcc alloys of ~1,000 and ~10,000 atoms of the training elements.

* ``--baselines``: for each N, the same split is written to ``bench-data/local_gp_alloys/n<N>/`` and
  ``compare_potentials.py --data-dir ... --budget <the local GP's fit wall time>`` trains
  ``sciml.potentials`` and MACE (its own venv, ``.venv-mace``) on it with that budget (equal training
  wall time) and scores them on the same test frames; its ``comparison.json`` is stored under
  ``baselines`` in this script's JSON. (Its MD figures are for ethanol boxes; the alloy MD speed of
  the neural models is not measured here.)

FLARE: PyPI has ``mir-flare`` 1.4.0 only as a source distribution (a C++ build that fetches its dependencies
from GitHub); ``flare_build.sh`` builds it from registry packages into ``.venv-flare`` and ``flare_alloys.py``
runs its sparse GP on this split (written by ``flare_alloys_split.py``); not run by this script.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _md_speed(model, n_atoms: int, steps: int, seed: int = 0) -> dict:
    import numpy as np
    from ase import units
    from ase.build import bulk
    from ase.md.langevin import Langevin

    from sciml.gp.onthefly import LocalGPMDCalculator

    rng = np.random.default_rng(seed)
    n = max(1, round((n_atoms / 4) ** (1 / 3)))
    atoms = bulk("Cu", "fcc", a=3.9, cubic=True).repeat((n, n, n))
    atoms.numbers = rng.choice(model.species_, len(atoms))
    atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)

    class _Calc(LocalGPMDCalculator):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            from ase.calculators.calculator import Calculator

            Calculator.calculate(self, atoms, properties, system_changes)
            self.results.update(self.model.calculator_results(self.atoms, uncertainty=False))

    atoms.calc = _Calc(model)
    dyn = Langevin(atoms, timestep=2 * units.fs, temperature_K=600, friction=0.02 / units.fs, rng=rng)
    dyn.run(1)                                   # warm-up (neighbour list, first call)
    t0 = time.perf_counter()
    dyn.run(steps)
    dt = time.perf_counter() - t0
    return dict(n_atoms=len(atoms), steps=steps, seconds=dt, steps_per_s=steps / dt,
                s_per_step_per_atom=dt / steps / len(atoms), peak_rss_gb=_rss_gb())


def _baselines(a, n: int, train, valid, test, budget_s: float) -> dict:
    """sciml.potentials and MACE on the same split with the local GP's fit time as training budget."""
    import subprocess

    from sciml.atoms import write_frames

    d = a.work / f"n{n}"
    d.mkdir(parents=True, exist_ok=True)
    for name, frames in (("train", train), ("valid", valid), ("test", test)):
        write_frames(d / f"{name}.extxyz", frames)
    out = d / "compare"
    cmd = [sys.executable, str(bc.HERE / "compare_potentials.py"), "--data-dir", str(d), "--out-dir", str(out),
           "--budget", f"{max(60.0, budget_s):.0f}", "--threads", str(a.threads), "--md-steps-small", "20",
           "--md-steps-box", "5", "--scaling-sizes", "2", "3"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=bc.REPO, capture_output=True, text=True)
    res = dict(command=" ".join(cmd), returncode=proc.returncode, wall_s=time.perf_counter() - t0)
    comp = out / "comparison.json"
    if proc.returncode == 0 and comp.exists():
        res["comparison"] = json.loads(comp.read_text())
    else:
        res["stderr_tail"] = proc.stderr[-3000:]
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 1000])
    p.add_argument("--n-sparse", type=int, default=1000)
    p.add_argument("--n-tune", type=int, default=20)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--test-stride", type=int, default=5)
    p.add_argument("--std-frames", type=int, default=60)
    p.add_argument("--md-atoms", type=int, nargs="*", default=[1000, 10000])
    p.add_argument("--md-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=bc.WORK_DIR / "local_gp_alloys")
    p.add_argument("--result-name", default="local_gp_alloys")
    p.add_argument("--model-kwargs", type=json.loads, default={},
                   help='further LocalGPPotential arguments as JSON, e.g. \'{"normalise": false, "l_max": 0}\' '
                        '(chosen with local_gp_alloy_tuning.py on train/valid only)')
    p.add_argument("--baselines", action="store_true", help="also train sciml.potentials and MACE for each N with "
                   "the local GP's fit time as budget (compare_potentials.py)")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore", DeprecationWarning)
    from sciml.atoms import split_by_trajectory, write_frames
    from sciml.datasets import load_alloys
    from sciml.gp.local_gp import LocalGPPotential, evaluate_local

    a.work.mkdir(parents=True, exist_ok=True)
    frames = load_alloys("full", progress=False)
    train_all, valid, test_all = split_by_trajectory(frames, 1000, 100, seed=0)
    test = test_all[:: a.test_stride]
    write_frames(a.work / "valid.extxyz", valid)
    write_frames(a.work / "test.extxyz", test)
    doc = dict(command=" ".join([os.path.basename(sys.executable)] + sys.argv), threads=a.threads,
               loadavg_start=bc.loadavg(), run_info=bc.run_info(a.threads),
               n_train_pool=len(train_all), n_valid=len(valid), n_test=len(test), n_sparse=a.n_sparse,
               cutoff=a.cutoff, model_kwargs=a.model_kwargs, sizes={}, md={})
    model = None
    for n in a.sizes:
        train = train_all[:: max(1, len(train_all) // n)][:n]
        write_frames(a.work / f"train_{n}.extxyz", train)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LocalGPPotential(**{"n_sparse": a.n_sparse, "cutoff": a.cutoff, "n_tune": a.n_tune,
                                        "progress": False, **a.model_kwargs}).fit(train)
        fit_s = time.perf_counter() - t0
        rss_fit = _rss_gb()
        cal = model.calibrate(valid)
        path = model.save(a.work / f"local_gp_{n}.pt")
        m = evaluate_local(model, test, max_std_structures=a.std_frames)
        doc["sizes"][str(n)] = dict(
            n_frames=len(train), n_envs=model.n_envs_, n_sparse=int(len(model.inducing_)), fit_wall_s=fit_s,
            tune_wall_s=model.tune_time_, peak_rss_gb_after_fit=rss_fit, model_file_mb=path.stat().st_size / 2**20,
            lengthscale=model.lengthscale_, signal_std_eV=model.signal_std_, noise=model.noise_, calibration=cal,
            pair_lengthscale_A=model.pair_lengthscale_, pair_signal_std_eV=model.pair_signal_std_,
            n_pair_columns=model.pair_.n_columns if model.pair_ is not None else 0,
            weights_mb=model.weights_.numel() * 8 / 2**20,
            test=m, loadavg=bc.loadavg())
        print(json.dumps({n: doc["sizes"][str(n)]["test"]}, default=float), flush=True)
        if a.baselines:
            doc["sizes"][str(n)]["baselines"] = _baselines(a, n, train, valid, test, fit_s)
    for n_atoms in a.md_atoms:
        doc["md"][str(n_atoms)] = _md_speed(model, n_atoms, a.md_steps)
        print(json.dumps(doc["md"][str(n_atoms)]), flush=True)
    doc["loadavg_end"] = bc.loadavg()
    doc["peak_rss_gb"] = _rss_gb()
    out = bc.save_result(a.result_name, doc, threads=a.threads)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
