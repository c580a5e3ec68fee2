"""Descriptor choices of the local GP on the alloy set, decided on train/validation only (never test).

Run (one process, one torch thread; results JSON under results/):

    python workflows/benchmarks/local_gp_alloy_tuning.py --n-train 50 --variants soap_norm soap_raw radial_raw

Same split as ``local_gp_alloys.py`` (``load_alloys("full")``, ``split_by_trajectory(frames, 1000, 100,
seed=0)``; N training frames = every (1000 // N)-th training frame); each variant is fitted with the
benchmark's settings (``--n-sparse``, ``--n-tune``) and scored on the 100 validation frames (energy per
atom, force and stress MAE) and by its negative log marginal likelihood on all training frames
(``nlml_``: the same labels under every variant, so it is a model-selection criterion that never looks
at validation data). The test frames are not loaded.

Variants (``LocalGPPotential`` keyword arguments):

* ``soap_norm``: the unit-length SOAP power spectrum (GAP/FLARE; the default until this study);
* ``soap_raw``: the power spectrum itself (``normalise=False``): keeps the overall neighbour density;
* ``radial_raw``: ``l_max=0`` and more radial functions, unnormalised: species-resolved radial
  densities and their products, the quantities the embedding energy of EAM/EMT metals depends on;
* ``soap2_raw``: ``l_max=2``, unnormalised;
* ``..._c6``: cutoff 6 Å instead of 5: ASE's EMT interacts up to 5.87 Å for every element (the logistic
  cutoff sits between the 3rd and 4th fcc shells of the largest element it knows), so 5 Å misses part
  of what the labels depend on; ``..._m1500``: 1,500 inducing environments instead of 600.
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

VARIANTS = {
    "soap_norm": dict(normalise=True),
    "soap_raw": dict(normalise=False),
    "radial_raw": dict(normalise=False, l_max=0, n_max=8),
    "soap2_raw": dict(normalise=False, l_max=2),
    "radial_norm": dict(normalise=True, l_max=0, n_max=8),
    "radial_raw_c6": dict(normalise=False, l_max=0, n_max=10, cutoff=6.0),
    "radial_raw_m1500": dict(normalise=False, l_max=0, n_max=8, n_sparse=1500),
    "soap2_raw_c6": dict(normalise=False, l_max=2, n_max=6, cutoff=6.0),
    "radial_raw_m1500_e10": dict(normalise=False, l_max=0, n_max=8, n_sparse=1500, energy_noise_max=0.01),
    "radial6_raw_m1500": dict(normalise=False, l_max=0, n_max=6, n_sparse=1500),
    "radial_raw_m1500_c6": dict(normalise=False, l_max=0, n_max=10, n_sparse=1500, cutoff=6.0),
    "radial4_raw_m1500": dict(normalise=False, l_max=0, n_max=4, n_sparse=1500),
    "radial6_raw_m1500_e10": dict(normalise=False, l_max=0, n_max=6, n_sparse=1500, energy_noise_max=0.01),
    "radial6_raw_m3000": dict(normalise=False, l_max=0, n_max=6, n_sparse=3000),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-train", type=int, default=50)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--n-sparse", type=int, default=600)
    p.add_argument("--n-tune", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--result-name", default=None)
    a = p.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore", DeprecationWarning)
    from sciml.atoms import split_by_trajectory
    from sciml.datasets import load_alloys
    from sciml.gp.local_gp import LocalGPPotential, evaluate_local

    frames = load_alloys("full", progress=False)
    train_all, valid, _ = split_by_trajectory(frames, 1000, 100, seed=0)
    train = train_all[:: max(1, len(train_all) // a.n_train)][: a.n_train]
    name = a.result_name or f"local_gp_alloy_tuning_n{a.n_train}"
    doc = dict(command=" ".join([os.path.basename(sys.executable)] + sys.argv), threads=a.threads,
               run_info=bc.run_info(a.threads), n_train=len(train), n_valid=len(valid), n_sparse=a.n_sparse,
               n_tune=a.n_tune, variants={})
    for v in a.variants:
        kw = VARIANTS[v]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LocalGPPotential(**{"n_sparse": a.n_sparse, "n_tune": a.n_tune, "progress": False, **kw}).fit(train)
        fit_s = time.perf_counter() - t0
        m = evaluate_local(model, valid, max_std_structures=0)
        doc["variants"][v] = dict(
            kwargs=kw, fit_wall_s=fit_s,
            tune_message=str(getattr(model, "tune_result_", None) and model.tune_result_.message),
            refit_message=str(model.refit_result_.message), nlml=float(model.nlml_), lengthscale=float(model.lengthscale_),
            signal_std_eV=float(model.signal_std_), noise={k: float(x) for k, x in model.noise_.items()},
            pair_lengthscale_A=float(model.pair_lengthscale_), descriptor_size=int(model.descriptor_.size),
            n_envs=int(model.n_envs_), peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            valid={k: m[k] for k in ("energy_mae_meV_per_atom", "forces_mae_meV_per_A", "stress_mae_GPa")
                   if k in m},
            loadavg=bc.loadavg())
        print(json.dumps({v: doc["variants"][v]}, default=float), flush=True)
        bc.save_result(name, doc, threads=a.threads)          # after every variant: a crash loses nothing
    print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
