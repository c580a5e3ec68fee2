"""Coverage of the GP's 95 % force intervals before and after ``GPPotential.calibrate``.

Benchmark split of the bundled ethanol set (``split_frames(frames, 1000, 100, seed=0)``):
fit on the first N training frames, calibrate on the 100 validation frames, and report
the force and energy coverage and the mean predicted force std on the 400 test frames
before and after calibration. One JSON line per N.

Usage::

    OMP_NUM_THREADS=1 python workflows/benchmarks/gp_calibration.py --n 100 500   # -> results/gp_calibration.json
"""
from __future__ import annotations

import argparse
import json

import bench_common as bc  # noqa: E402  (this folder is on sys.path when run as a script)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(bc.RESULTS_DIR / "gp_calibration.json"))
    args = ap.parse_args(argv)

    import torch

    from sciml.atoms import split_frames
    from sciml.datasets import load_pes
    from sciml.gp import GPPotential, evaluate

    torch.set_num_threads(args.threads)
    train, valid, test = split_frames(load_pes("ethanol_gfn2_500K"), 1000, 100, seed=0)
    keys = ("forces_coverage_95", "energy_coverage_95", "forces_std_mean_meV_per_A", "forces_mae_meV_per_A")
    rows = []
    for n in args.n:
        gp = GPPotential(progress=False).fit(train[:n])
        before = evaluate(gp, test)
        factors = gp.calibrate(valid)
        after = evaluate(gp, test)
        rows.append(dict(n_train=n, calibration=factors, test_before={k: before[k] for k in keys},
                         test_after={k: after[k] for k in keys}))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        bc.write_json(args.out, {"run": bc.run_info(args.threads), "rows": rows}, echo=False)


if __name__ == "__main__":
    main()
