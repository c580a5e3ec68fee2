"""Choosing defaults of ``GPPotential`` on ethanol only: any constructor options, side by side.

Ethanol is the development molecule (malonaldehyde stays held out of every default). For each N
and each configuration (``key=value[,key=value]`` constructor options, e.g. ``n_tune=50`` or
``kernel=rbf,n_scales=2``; ``default`` for the defaults), fit on the first N frames of the
ethanol benchmark train split and report the marginal likelihood on the tuning subset (comparable
between configurations with the same ``n_tune``, i.e. the same tuning subset) and the force/energy
MAE on the 100 *validation* frames (never the test frames). One thread.

    python workflows/benchmarks/gp_options_ethanol.py --n-train 50 100 200 --configs default n_tune=50 n_scales=2
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from compare_gp import load_train_valid  # noqa: E402


def parse_config(text: str) -> dict:
    """``"n_tune=50,kernel=rbf"`` -> ``{"n_tune": 50, "kernel": "rbf"}``; ``"default"`` -> ``{}``."""
    if text == "default":
        return {}
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"configuration item {item!r} is not key=value")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--configs", nargs="+", default=["default"])
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "ethanol")
    p.add_argument("--name", default="gp_options_ethanol")
    a = p.parse_args(argv)
    import numpy as np
    import torch
    from sciml.gp import GPPotential

    torch.set_num_threads(1)
    train_all, valid = load_train_valid(a.data_dir)
    rows = []
    for n in a.n_train:
        for text in a.configs:
            kwargs = parse_config(text)
            t0, load0 = time.perf_counter(), bc.loadavg()
            gp = GPPotential(progress=False, laplace=False, **kwargs).fit(train_all[:n])
            fit_s = time.perf_counter() - t0
            E, F, _, _ = gp.predict(valid, return_std=False)
            errs = bc.errors_on(valid, E, F)
            row = dict(n_train=n, config=text, params={k: v for k, v in gp.get_params().items() if k != "progress"},
                       nlml_tuning_subset=gp.nlml_, nlml_shared=gp.nlml_shared_, n_tune_used=len(gp.tune_indices_),
                       valid=errs, fit_seconds=fit_s, tune_seconds=gp.tune_time_, converged=gp.converged_,
                       loadavg_before=load0, loadavg_after=bc.loadavg(),
                       lengthscales=np.asarray(gp.lengthscales_).tolist(),
                       variance_fractions=np.asarray(gp.variance_fractions_).tolist(),
                       group_lengthscales=None if gp.group_lengthscales_ is None else dict(
                           zip(gp.length_scale_groups_, np.asarray(gp.group_lengthscales_).tolist())))
            rows.append(row)
            print(f"N={n} {text}: NLML {gp.nlml_:.2f} on {row['n_tune_used']} frames, valid force MAE "
                  f"{errs['forces_mae_meV_per_A']:.2f} meV/A, energy {errs['energy_mae_meV']:.2f} meV, "
                  f"fit {fit_s:.1f} s (tune {gp.tune_time_:.1f}), load {load0}", flush=True)
            bc.save_result(a.name, dict(command=" ".join(["python", "workflows/benchmarks/gp_options_ethanol.py"]
                                                         + (argv if argv is not None else sys.argv[1:])),
                                        rows=rows), threads=1)


if __name__ == "__main__":
    main()
