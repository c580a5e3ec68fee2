#!/usr/bin/env python
"""Regenerate sciml's bundled reference PES sets with real calculators (no downloads).

    python datasets/generate_pes.py                    # all bundled sets, into datasets/<name>/
    python datasets/generate_pes.py ethanol_gfn2_500K  # one set
    python datasets/generate_pes.py cu_emt_300K --out cu_test --n-frames 20

The recipes (structure, calculator, temperature, time step, stride, seed) are in
``sciml.datasets.BUNDLED_RECIPES``; for your own system call
``sciml.datasets.generate_pes(atoms, out, calculator=...)`` with any ASE calculator.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sciml.datasets import BUNDLED_RECIPES, regenerate_bundled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=[*sorted(BUNDLED_RECIPES), "alloys_emt"], help="which sets (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="output root folder (default: datasets/)")
    ap.add_argument("--n-frames", type=int, default=None, help="override the number of frames")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    here = Path(__file__).resolve().parent
    for name in args.names:
        overrides = {}
        if args.n_frames is not None:
            overrides["n_frames"] = args.n_frames
        if args.seed is not None:
            overrides["seed"] = args.seed
        root = args.out if args.out is not None else here
        frames = regenerate_bundled(name, root / name, **overrides)
        print(f"{name}: {len(frames)} frames -> {root / name}")


if __name__ == "__main__":
    main()
