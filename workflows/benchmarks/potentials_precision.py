#!/usr/bin/env python
"""float32 vs float64 evaluation of one model on the held-out alloy test set (energies, forces, stress).

Split: ``split_by_trajectory(load_alloys("full"), 1000, 100, seed=0)`` (issue 14); the test set is
everything else. The model is ``--model`` or, without it, one trained here for ``--train-seconds``
on the 1,000 training frames (``TrainConfig`` defaults). Every test frame is evaluated through
``SciMLCalculator(model, dtype="float64")`` and ``dtype="float32"``; reported are the largest and
mean absolute differences between the two, next to each precision's error against the EMT labels
(so the float32 rounding can be read against the model error).

    python workflows/benchmarks/potentials_precision.py --train-seconds 120 --threads 1
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file trained on the alloy set")
    p.add_argument("--train-seconds", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "potentials_precision.json"))
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    from sciml.atoms import split_by_trajectory
    from sciml.datasets import load_alloys
    from sciml.potentials import SciMLCalculator, TrainConfig, train_potential

    train, valid, test = split_by_trajectory(load_alloys("full", progress=False), 1000, 100, seed=0)
    model = a.model
    if model is None:
        model = bc.WORK_DIR / "precision" / "alloy_model.pt"
        model.parent.mkdir(parents=True, exist_ok=True)
        train_potential(train, valid, model, TrainConfig(max_time=a.train_seconds, progress=False, seed=0), resume=False)
    calcs = {dt: SciMLCalculator(str(model), dtype=dt, device="cpu") for dt in ("float64", "float32")}
    pred = {dt: {"e": [], "f": [], "s": []} for dt in calcs}
    ref = {"e": [], "f": [], "s": []}
    for at in test:
        n = len(at)
        ref["e"].append(at.get_potential_energy() / n)
        ref["f"].append(at.get_forces().ravel())
        ref["s"].append(at.get_stress())
        for dt, c in calcs.items():
            b = at.copy()
            b.calc = c
            pred[dt]["e"].append(b.get_potential_energy() / n)
            pred[dt]["f"].append(b.get_forces().ravel())
            pred[dt]["s"].append(b.get_stress())
    cat = {k: np.concatenate if k == "f" else np.array for k in ref}
    R = {k: cat[k](v) for k, v in ref.items()}
    P = {dt: {k: cat[k](v) for k, v in d.items()} for dt, d in pred.items()}
    GPa = 160.21766208  # eV/Å^3 -> GPa
    d = {k: np.abs(P["float32"][k] - P["float64"][k]) for k in R}
    out = {
        "model": str(model) if a.model else f"trained here for {a.train_seconds:g} s (TrainConfig defaults, seed 0)",
        "n_test_frames": len(test), "n_test_atoms": int(sum(len(t) for t in test)),
        "float32_minus_float64": {
            "energy_max_meV_per_atom": 1e3 * float(d["e"].max()), "energy_mean_meV_per_atom": 1e3 * float(d["e"].mean()),
            "forces_max_meV_per_A": 1e3 * float(d["f"].max()), "forces_mean_meV_per_A": 1e3 * float(d["f"].mean()),
            "stress_max_GPa": GPa * float(d["s"].max()), "stress_mean_GPa": GPa * float(d["s"].mean()),
        },
    }
    for dt in calcs:
        out[f"error_{dt}"] = {
            "energy_mae_meV_per_atom": 1e3 * float(np.abs(P[dt]["e"] - R["e"]).mean()),
            "forces_mae_meV_per_A": 1e3 * float(np.abs(P[dt]["f"] - R["f"]).mean()),
            "stress_mae_GPa": GPa * float(np.abs(P[dt]["s"] - R["s"]).mean()),
        }
    bc.write_json(a.out, {"run": bc.run_info(a.threads), **out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
