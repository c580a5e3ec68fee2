"""sciml side of the GP comparison: fit ``sciml.gp.GPPotential`` on the first N training frames.

Reports the same figures as ``sgdml_baseline.py`` for one N: test energy/force MAE (meV,
meV/Å), fit time (hyperparameters by the marginal likelihood + final solve), prediction
time per structure (batched over the test set and one structure per call; mean only, as
sGDML predicts no variance, and with predictive std), 95% force-interval coverage and peak
memory (max RSS). Run one N per process so the memory figure is its own:

    python workflows/benchmarks/sciml_gp_side.py --train T.extxyz --test TEST.extxyz --n-train 200 --threads 1
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
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--valid", help="held-out frames: calibrate the predicted stds on them first")
    p.add_argument("--n-train", type=int, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kernel", default="matern52")
    p.add_argument("--length-scales", default=None, help="GPPotential(length_scales=...); default: its default")
    p.add_argument("--n-single", type=int, default=100)
    p.add_argument("--std-frames", type=int, default=None,
                   help="test frames (the first K) for the predicted stds and coverage (default: all; errors always use all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="optional model path")
    p.add_argument("--out")
    a = p.parse_args(argv)

    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, str(a.threads))
    import numpy as np
    import torch
    from ase.io import read

    from sciml.gp import GPPotential

    torch.set_num_threads(a.threads)
    train = read(a.train, index=f":{a.n_train}")
    if len(train) < a.n_train:
        raise ValueError(f"--train has only {len(train)} frames, --n-train {a.n_train} requested")
    test = read(a.test, index=":")
    extra = {} if a.length_scales is None else {"length_scales": a.length_scales}
    gp = GPPotential(kernel=a.kernel, seed=a.seed, progress=False, **extra)
    _, m_fit = bc.measure(lambda: gp.fit(train))
    rss_after_fit = bc.peak_rss_mb()
    calibration = gp.calibrate(read(a.valid, index=":")) if a.valid else None

    (E, F, _, _), m_pred = bc.measure(lambda: gp.predict(test, return_std=False))
    errs = bc.errors_on(test, E, F)
    std_test = test if a.std_frames is None else test[: a.std_frames]
    (E2, F2, Es, Fs), m_pred_std = bc.measure(lambda: gp.predict(std_test, return_std=True))
    refF = np.array([at.get_forces() for at in std_test])
    refE = np.array([at.get_potential_energy() for at in std_test])
    coverage = float(np.mean(np.abs(F2 - refF) <= 1.959964 * Fs))
    e_coverage = float(np.mean(np.abs(E2 - refE) <= 1.959964 * Es))
    sf, se = gp.std_scale_["forces"], gp.std_scale_["energy"]
    coverage_raw = float(np.mean(np.abs(F2 - refF) <= 1.959964 * Fs / sf))
    n_single = min(a.n_single, len(test))

    def single():
        for i in range(n_single):
            gp.predict(test[i : i + 1], return_std=False)

    _, m_single = bc.measure(single)
    out = {
        "side": "sciml.gp",
        "sciml_git": bc.git_rev(("sciml/gp",)),
        "n_train": a.n_train,
        "kernel": a.kernel,
        "n_tune": gp.n_tune,
        "n_scales": gp.n_scales,
        "descriptor_power": gp.descriptor_power,
        "lengthscales": [float(v) for v in gp.lengthscales_],
        "variance_fractions": [float(v) for v in gp.variance_fractions_],
        "length_scales": gp.length_scales,
        "group_lengthscales": None if getattr(gp, "group_lengthscales_", None) is None else dict(
            zip(gp.length_scale_groups_, np.asarray(gp.group_lengthscales_).tolist())),
        "nlml_tuning_subset": gp.nlml_,
        "nlml_shared_tuning_subset": getattr(gp, "nlml_shared_", None),
        "threads": a.threads,
        "fit_seconds": m_fit["seconds"],
        "tune_seconds": getattr(gp, "tune_time_", None),
        "fit_loadavg_before": m_fit["loadavg_before"],
        "fit_loadavg_after": m_fit["loadavg_after"],
        "hyperparameters": {k: (np.asarray(getattr(gp, k)).tolist() if hasattr(gp, k) else None)
                            for k in ("lengthscale_", "signal_std_", "energy_noise_", "force_noise_", "mean_energy_")},
        "n_permutations": int(len(gp.permutations_)),
        "test": errs,
        "forces_coverage_95": coverage,
        "energy_coverage_95": e_coverage,
        "forces_coverage_95_raw": coverage_raw,
        "energy_coverage_95_raw": float(np.mean(np.abs(E2 - refE) <= 1.959964 * Es / se)),
        "calibration": calibration,
        "forces_std_mean_meV_per_A": 1e3 * float(np.mean(Fs)),
        "predict_batched_s_per_structure": m_pred["seconds"] / len(test),
        "predict_batched_with_std_s_per_structure": m_pred_std["seconds"] / len(std_test),
        "n_std_frames": len(std_test),
        "predict_single_s_per_structure": m_single["seconds"] / n_single,
        "predict_loadavg": [m_pred["loadavg_before"], m_single["loadavg_after"]],
        "peak_rss_MiB_after_fit": rss_after_fit,
        "peak_rss_MiB": bc.peak_rss_mb(),
    }
    if a.save:
        gp.save(a.save)
    bc.write_json(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
