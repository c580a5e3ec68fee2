#!/usr/bin/env python
"""Speed figures of sciml.potentials on CPU; prints one JSON object.

Measures, for a model file (or a freshly initialised default-size model with ``--model`` left
out: timing does not depend on the weights):

- parameter count and hyperparameters;
- neighbour-list time, vesin vs ase.neighborlist, for the largest box;
- evaluation time (energy + forces, one call of the ASE calculator) per atom for growing periodic
  boxes of ethanol molecules (5 Å grid, liquid-like density), with a log-log slope (1.0 = linear);
- MD throughput (velocity Verlet, 0.5 fs, ASE) for one ethanol and a periodic 27-ethanol box.

Every figure carries the load average before/after, because shared machines are noisy; with
one torch thread the CPU time (``cpu_*``, ``time.process_time``) is far less sensitive to other
processes than wall time, so compare CPU figures when the machine is busy.

    python workflows/benchmarks/potentials_speed.py --threads 1      # writes results/potentials_speed.json
    python workflows/benchmarks/potentials_speed.py --model model.pt --dtype float64 float32 --sizes 1 2 3 4 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)



def ethanol_box(n_per_side: int, spacing: float = 5.0, seed: int = 0):
    """``n_per_side**3`` randomly rotated ethanol molecules on a periodic cubic grid."""
    import numpy as np
    from ase import Atoms
    from ase.build import molecule
    from ase.geometry import get_distances
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    mol = molecule("CH3CH2OH")
    mol.positions -= mol.get_center_of_mass()
    L = n_per_side * spacing
    box = Atoms(cell=np.eye(3) * L, pbc=True)
    for idx in np.ndindex(n_per_side, n_per_side, n_per_side):
        for _ in range(200):
            m = mol.copy()
            m.positions = m.positions @ Rotation.random(random_state=rng.integers(1 << 31)).as_matrix().T
            m.positions += (np.array(idx) + 0.5) * spacing
            if len(box) == 0:
                break
            _, dist = get_distances(m.positions, box.positions, cell=box.cell, pbc=True)
            if dist.min() > 1.8:
                break
        box += m
    return box


def md_throughput(calc, atoms, steps: int, dt_fs: float = 0.5, warmup: int = 3) -> dict:
    import numpy as np
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    try:
        from ase.md.velocitydistribution import thermalize_momenta as MaxwellBoltzmannDistribution  # noqa: F811
    except ImportError:  # older ASE
        pass
    from ase.md.verlet import VelocityVerlet

    at = atoms.copy()
    at.calc = calc
    MaxwellBoltzmannDistribution(at, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(at, dt_fs * units.fs)
    dyn.run(warmup)
    before = bc.loadavg()
    t0, c0 = time.perf_counter(), time.process_time()
    dyn.run(steps)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    return {"n_atoms": len(at), "steps": steps, "steps_per_s": steps / dt, "ms_per_step": 1e3 * dt / steps,
            "steps_per_cpu_s": steps / dc, "cpu_ms_per_step": 1e3 * dc / steps,
            "loadavg_before": before, "loadavg_after": bc.loadavg()}


def eval_scaling(calc, sizes, repeats: int = 3) -> dict:
    import numpy as np
    from ase.build import molecule

    rows = []
    rng = np.random.default_rng(1)
    systems = [molecule("CH3CH2OH")] + [ethanol_box(n) for n in sizes]
    for at0 in systems:
        at = at0.copy()
        at.calc = calc
        at.get_forces()
        times, cpu = [], []
        before = bc.loadavg()
        for _ in range(repeats):
            at.positions = at0.positions + rng.normal(scale=1e-3, size=at0.positions.shape)
            t0, c0 = time.perf_counter(), time.process_time()
            at.get_forces()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t, c = statistics.median(times), statistics.median(cpu)
        rows.append({"n_atoms": len(at), "periodic": bool(at.pbc.any()), "seconds": t, "us_per_atom": 1e6 * t / len(at),
                     "cpu_seconds": c, "cpu_us_per_atom": 1e6 * c / len(at),
                     "loadavg_before": before, "loadavg_after": bc.loadavg()})
    per = [r for r in rows if r["periodic"]]
    slope = slope_cpu = None
    if len(per) >= 2:
        x = np.log([r["n_atoms"] for r in per])
        slope = float(np.polyfit(x, np.log([r["seconds"] for r in per]), 1)[0])
        slope_cpu = float(np.polyfit(x, np.log([r["cpu_seconds"] for r in per]), 1)[0])
    return {"rows": rows, "loglog_slope_periodic": slope, "loglog_slope_periodic_cpu": slope_cpu}


def neighbor_list_timing(atoms, cutoff: float, repeats: int = 5) -> dict:
    from sciml.potentials.graph import neighbor_list

    out = {"n_atoms": len(atoms), "cutoff": cutoff}
    for backend in ("vesin", "ase"):
        neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, backend=backend)
        t0 = time.perf_counter()
        for _ in range(repeats):
            i, _, _ = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, backend=backend)
        out[f"{backend}_ms"] = 1e3 * (time.perf_counter() - t0) / repeats
        out["n_pairs"] = int(len(i))
    return out


def kernel_comparison(repeats_small: int = 100, repeats_box: int = 5) -> dict:
    """CPU time (process_time, robust to other load) of one energy+forces call, e3nn vs channelwise kernel."""
    import torch
    from ase.build import molecule

    from sciml.potentials import EquivariantPotential, ModelConfig, SciMLCalculator

    out = {}
    for kern in ("e3nn", "channelwise"):
        torch.manual_seed(0)
        m = EquivariantPotential(ModelConfig(species=[1, 6, 8], tensor_product=kern)).double()
        with torch.no_grad():
            m.avg_num_neighbors.fill_(20.0)
        calc = SciMLCalculator(m)
        for name, at, n in (("ethanol", molecule("CH3CH2OH"), repeats_small), ("27_ethanol_box", ethanol_box(3), repeats_box)):
            at.calc = calc
            at.get_forces()
            t0 = time.process_time()
            for _ in range(n):
                at.positions[0, 0] += 1e-5
                at.get_forces()
            out[f"{kern}_{name}_cpu_ms"] = 1e3 * (time.process_time() - t0) / n
    out["loadavg"] = bc.loadavg()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model file (default: a new default-size model)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4], help="ethanol molecules per box side")
    p.add_argument("--md-steps-small", type=int, default=200)
    p.add_argument("--md-steps-box", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(bc.RESULTS_DIR / "potentials_speed.json"), help="raw JSON result")
    p.add_argument("--no-kernel-comparison", action="store_true", help="skip the e3nn vs channelwise timing")
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from ase.build import molecule

    from sciml.potentials import EquivariantPotential, ModelConfig, SciMLCalculator, load_model

    if a.model:
        model = load_model(a.model, device=a.device)
    else:
        torch.manual_seed(0)
        model = EquivariantPotential(ModelConfig(species=[1, 6, 8])).double()
        with torch.no_grad():
            model.avg_num_neighbors.fill_(20.0)
    res = {
        "model": a.model or "untrained default ModelConfig",
        "n_parameters": model.num_parameters(),
        "hyperparameters": model.config.to_dict(),
        "threads": a.threads,
        "device": a.device,
        "torch": torch.__version__,
        "neighbor_list": neighbor_list_timing(ethanol_box(max(a.sizes)), model.cutoff),
    }
    for dt in a.dtype:
        calc = SciMLCalculator(model, device=a.device, dtype=dt)
        res[dt] = {
            "md_ethanol": md_throughput(calc, molecule("CH3CH2OH"), a.md_steps_small),
            "md_27_ethanol_box": md_throughput(calc, ethanol_box(3), a.md_steps_box),
            "eval_scaling": eval_scaling(calc, a.sizes),
        }
    if not a.no_kernel_comparison and a.device == "cpu":
        res["kernel_comparison"] = kernel_comparison()
    print(json.dumps(res, indent=1))
    if a.out:
        bc.write_json(a.out, {"run": bc.run_info(a.threads), **res}, echo=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
