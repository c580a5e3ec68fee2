"""Held-out errors of a trained alloy potential by structure kind and temperature, through the ASE calculator.

Where do the force errors of the benchmark model come from? Each test frame of the alloy split carries
``kind`` (bulk, vacancy, slab) and ``temperature_K`` (the Langevin temperature of its trajectory); this
script evaluates a model file with :class:`sciml.potentials.SciMLCalculator` on every test frame and
reports energy / force / stress errors per group, with the mean force magnitude of the group (the scale
the errors are relative to).

    python workflows/benchmarks/alloy_error_breakdown.py \\
        --model bench-data/runs/compare_potentials_alloys/n1000/sciml_model.pt --threads 1

Writes ``results/alloy_error_breakdown.json`` (``--result-name`` to change).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from alloy_data import alloy_split  # noqa: E402

#: temperature bands (K) of the grouping: [lower, upper)
BANDS = ((0.0, 600.0), (600.0, 1100.0), (1100.0, 2000.0))


def band_name(t: float) -> str:
    """The temperature band of ``t`` (K) as ``"T 600-1100 K"``."""
    for lo, hi in BANDS:
        if lo <= t < hi:
            return f"T {lo:g}-{hi:g} K"
    raise ValueError(f"temperature {t} K is outside the bands {BANDS}")


def group_errors(groups: dict[str, list[int]], pred: dict, frames: list) -> dict[str, dict]:
    """Errors (:func:`bench_common.errors`) of the frames in each group, plus the group's mean ``|F|``."""
    out = {}
    for name, idx in groups.items():
        fr = [frames[i] for i in idx]
        e = bc.errors([pred["E"][i] for i in idx], [pred["F"][i] for i in idx],
                      [a.get_potential_energy() for a in fr], [a.get_forces() for a in fr], [len(a) for a in fr],
                      [pred["S"][i] for i in idx], [a.get_stress() for a in fr])
        e["mean_abs_force_meV_per_A"] = float(1e3 * np.mean(np.concatenate([np.abs(a.get_forces()).ravel() for a in fr])))
        e["n_atoms"] = int(sum(len(a) for a in fr))
        out[name] = e
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a sciml potential file")
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "alloys")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--result-name", default="alloy_error_breakdown")
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    from sciml.atoms import read_frames
    from sciml.potentials import SciMLCalculator

    frames = read_frames(alloy_split(a.data_dir)["test"])
    calc = SciMLCalculator(a.model, dtype=a.dtype)
    pred = dict(zip("EFS", bc.predict(calc, frames, stress=True)))
    groups: dict[str, list[int]] = {"all": list(range(len(frames)))}
    for i, at in enumerate(frames):
        for key in (f"kind {at.info['kind']}", band_name(float(at.info["temperature_K"]))):
            groups.setdefault(key, []).append(i)
    res = group_errors(groups, pred, frames)
    print(f"{'group':18s} {'frames':>6s} {'F MAE':>8s} {'mean|F|':>8s} {'rel':>6s} {'E meV/at':>9s} {'S GPa':>7s}")
    for name, e in res.items():
        print(f"{name:18s} {e['n_structures']:6d} {e['forces_mae_meV_per_A']:8.2f} {e['mean_abs_force_meV_per_A']:8.0f}"
              f" {e['forces_mae_meV_per_A'] / e['mean_abs_force_meV_per_A']:6.2%} {e['energy_mae_meV_per_atom']:9.2f}"
              f" {e['stress_mae_GPa']:7.4f}")
    model = Path(a.model).resolve()
    shown = str(model.relative_to(bc.REPO)) if model.is_relative_to(bc.REPO) else model.name
    path = bc.save_result(a.result_name, {"model": shown, "dtype": a.dtype, "test_frames": len(frames),
                                          "bands_K": [list(b) for b in BANDS], "groups": res}, threads=a.threads)
    print(f"wrote {path.relative_to(bc.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
