"""How much of ASE's EMT does a model with a shorter cutoff miss? EMT labels recomputed with a hard cut.

ASE's ``EMT()`` (``asap_cutoff=False``, as the alloy recipe calls it) weights every neighbour by a Fermi
function centred at 5.38 Å and lists neighbours to 5.88 Å. A model with cutoff ``r`` cannot see atoms
beyond ``r``; this script relabels validation frames of the alloy split with an EMT whose neighbour list
stops at ``r`` (everything else unchanged) and reports how far energies and forces move: an error floor
of any model with that cutoff.

    python workflows/benchmarks/emt_cutoff_floor.py --frames 40 --cutoffs 5.0 5.5 5.7

Writes ``results/emt_cutoff_floor.json``.
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


def truncated_emt(cutoff: float):
    """An ASE ``EMT`` calculator whose neighbour list (and so every sum) stops at ``cutoff`` Å."""
    from ase.calculators.emt import EMT
    from ase.neighborlist import NeighborList

    class TruncatedEMT(EMT):
        def initialize(self, atoms):
            super().initialize(atoms)
            if cutoff > self.rc_list:
                raise ValueError(f"cutoff {cutoff} Å is beyond EMT's own neighbour list ({self.rc_list:.3f} Å)")
            self.rc_list = cutoff
            self.nl = NeighborList([0.5 * cutoff] * len(atoms), self_interaction=False, bothways=True)

    return TruncatedEMT()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "alloys")
    p.add_argument("--frames", type=int, default=40, help="first N validation frames")
    p.add_argument("--cutoffs", type=float, nargs="+", default=[5.0, 5.5, 5.7])
    a = p.parse_args(argv)
    from ase.calculators.emt import EMT

    from sciml.atoms import read_frames

    frames = read_frames(alloy_split(a.data_dir)["valid"])[: a.frames]
    ref = []
    for at in frames:
        b = at.copy()
        b.calc = EMT()
        ref.append((b.get_potential_energy(), b.get_forces()))
    rows = []
    for rc in a.cutoffs:
        dE, dF = [], []
        for at, (e0, f0) in zip(frames, ref):
            b = at.copy()
            b.calc = truncated_emt(rc)
            dE.append(abs(b.get_potential_energy() - e0) / len(at))
            dF.append(np.abs(b.get_forces() - f0).ravel())
        row = {"cutoff_A": rc, "forces_mad_meV_per_A": float(1e3 * np.concatenate(dF).mean()),
               "energy_mad_meV_per_atom": float(1e3 * np.mean(dE))}
        rows.append(row)
        print(f"cut at {rc:.2f} Å: forces move by {row['forces_mad_meV_per_A']:.4g} meV/Å (mean abs), "
              f"energies by {row['energy_mad_meV_per_atom']:.4g} meV/atom")
    path = bc.save_result("emt_cutoff_floor", {"frames": len(frames), "split": "valid", "rows": rows})
    print(f"wrote {path.relative_to(bc.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
