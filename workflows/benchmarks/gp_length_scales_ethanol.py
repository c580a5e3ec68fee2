"""Choosing the default of ``GPPotential(length_scales=...)``: shared vs per-element-pair (ARD) on ethanol.

Ethanol is the development molecule (malonaldehyde stays held out of every default). For each N
and each option, fit on the first N frames of the ethanol benchmark train split and report the
marginal likelihood on the tuning subset (the criterion) and the force/energy MAE on the 100
*validation* frames (never the test frames). One thread.

    python workflows/benchmarks/gp_length_scales_ethanol.py --n-train 100 200
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from compare_gp import load_train_valid  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, nargs="+", default=[100, 200])
    p.add_argument("--options", nargs="+", default=["shared", "pair"])
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "ethanol")
    p.add_argument("--name", default="gp_length_scales_ethanol")
    a = p.parse_args(argv)
    import numpy as np
    import torch
    from sciml.gp import GPPotential

    torch.set_num_threads(1)
    train_all, valid = load_train_valid(a.data_dir)
    rows = []
    for n in a.n_train:
        for opt in a.options:
            t0, load0 = time.perf_counter(), bc.loadavg()
            gp = GPPotential(length_scales=opt, progress=False).fit(train_all[:n])
            fit_s = time.perf_counter() - t0
            E, F, _, _ = gp.predict(valid, return_std=False)
            errs = bc.errors_on(valid, E, F)
            row = dict(n_train=n, length_scales=opt, nlml_tuning_subset=gp.nlml_, nlml_shared=gp.nlml_shared_,
                       n_tune=gp.n_tune, valid=errs, fit_seconds=fit_s, loadavg_before=load0, loadavg_after=bc.loadavg(),
                       lengthscale=gp.lengthscale_,
                       group_lengthscales=None if gp.group_lengthscales_ is None else dict(
                           zip(gp.length_scale_groups_, np.asarray(gp.group_lengthscales_).tolist())))
            rows.append(row)
            print(f"N={n} {opt}: NLML {gp.nlml_:.2f} (shared {gp.nlml_shared_:.2f}), valid force MAE "
                  f"{errs['forces_mae_meV_per_A']:.2f} meV/A, fit {fit_s:.1f} s", flush=True)
    bc.save_result(a.name, dict(command=" ".join(["python", "workflows/benchmarks/gp_length_scales_ethanol.py"]
                                                 + (argv if argv is not None else sys.argv[1:])),
                                rows=rows), threads=1)


if __name__ == "__main__":
    main()
