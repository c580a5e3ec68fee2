"""FLARE's sparse GP (mir-flare 1.4.0, C++ ``_C_flare``) on the local GP's alloy split: accuracy, fit cost, memory.

Run with FLARE's own venv (built by ``flare_build.sh``; this script does not import sciml), after writing the
split with the sciml venv:

    .venv/bin/python workflows/benchmarks/flare_alloys_split.py --sizes 50 200
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv-flare/bin/python workflows/benchmarks/flare_alloys.py --size 50

The split is exactly that of ``local_gp_alloys.py`` (``load_alloys("full")``,
``split_by_trajectory(frames, 1000, 100, seed=0)``, every ``(1000 // N)``-th training frame, every 10th test
frame), read from ``bench-data/flare_alloys/{train_<N>,test}.extxyz``.

Model (FLARE's recommended sparse GP set-up, from its tutorial and example OTF configs): B2 (ACE) descriptor,
Chebyshev radial basis, quadratic cutoff, cutoff 5.0 Å like sciml, ``nmax``/``lmax`` (FLARE's examples use
8/3; see below), ``NormalizedDotProduct(sigma=2.0, power=2)``; energies, forces and stress are all training
labels (FLARE stress convention: sign flipped, order xx xy xz yy yz zz); energy noise per atom
(``rel_e_noise = n_atoms``); single-atom energies zero (FLARE's default) or, with
``--single-atom-energies lstsq``, fitted to the training energies by least squares on the species counts.
Sparse set: ``--n-sparse`` random environments spread evenly over the training frames
(``add_specific_environments`` with seeded random indices; 600 as sciml's local GP benchmark, or ``all``).
Hyperparameters (signal sigma, energy/force/stress noise) by FLARE's own ``optimize_hyperparameters``
(L-BFGS-B on the marginal likelihood, ``--max-iterations``; energy-noise lower bound at its initial value, as FLARE's tutorial).

Memory limit of FLARE here: the C++ ``SparseGP`` keeps every training structure with its dense B2 descriptor
derivatives (neighbours x 3 x n_descriptors doubles). With the 7 species of the alloy set, nmax = 8, lmax = 3 gives
6,384 features and 6.1 MB per training atom (measured): 21 GB for N = 50 (3,419 atoms), 83 GB for N = 200, so
FLARE's example settings do not fit this machine (24 GB, ~10 GB per job). ``--nmax``/``--lmax`` are therefore
reduced; the JSON records them and ``n_descriptors``.

Metrics (same definitions as ``sciml.metrics``): energy per atom, force component and stress MAE (stress on
frames with full periodicity, all six Voigt components), fit wall time (descriptors + sparse GP + hyperparameter
optimisation), peak RSS; for scale, ``trivial_predictor``: zero forces and stress, the training mean energy per
atom. Results: ``results/flare_alloys_n<N>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

EV_PER_A3_TO_GPA = 160.21766208


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _flare_stress(ase_voigt):
    """ASE Voigt stress (xx yy zz yz xz xy) -> FLARE's (xx xy xz yy yz zz) with FLARE's sign (as its OTF)."""
    import numpy as np

    s = ase_voigt
    return -np.array([s[0], s[5], s[4], s[1], s[3], s[2]])


def _ase_stress(flare_s):
    """FLARE's stress prediction -> ASE Voigt (as FLARE's ``SGP_Calculator``)."""
    import numpy as np

    f = flare_s
    return -np.array([f[0], f[3], f[5], f[4], f[2], f[1]])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, required=True, help="training frames N (train_<N>.extxyz)")
    p.add_argument("--nmax", type=int, default=4)
    p.add_argument("--lmax", type=int, default=3)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--n-sparse", default="600", help="number of random sparse environments, or 'all'")
    p.add_argument("--sigma", type=float, default=2.0, help="initial signal std of the kernel (eV)")
    p.add_argument("--energy-noise", type=float, default=0.005, help="initial energy noise per atom (eV)")
    p.add_argument("--force-noise", type=float, default=0.05, help="initial force noise (eV/Å)")
    p.add_argument("--stress-noise", type=float, default=0.006, help="initial stress noise (eV/Å^3)")
    p.add_argument("--max-iterations", type=int, default=20)
    p.add_argument("--data", type=Path, default=bc.WORK_DIR / "flare_alloys")
    p.add_argument("--result-name", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--single-atom-energies", choices=("zero", "lstsq"), default="zero",
                   help="per-species energy offsets subtracted from the energy labels (FLARE's single_atom_energies): "
                   "zero (FLARE's default) or a least-squares fit of the training energies to the species counts")
    a = p.parse_args(argv)

    import numpy as np
    from ase.io import read
    from flare.bffs.sgp._C_flare import B2, NormalizedDotProduct, SparseGP, Structure
    from flare.bffs.sgp.sparse_gp import optimize_hyperparameters

    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    train_path, test_path = a.data / f"train_{a.size}.extxyz", a.data / "test.extxyz"
    for path in (train_path, test_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run `python workflows/benchmarks/flare_alloys_split.py "
                                    f"--sizes {a.size}` with the sciml venv first")
    train, test = read(train_path, ":"), read(test_path, ":")
    species = sorted({int(z) for f in train + test for z in f.numbers})
    smap = {z: i for i, z in enumerate(species)}
    doc = dict(command=" ".join(["python"] + [os.path.relpath(x) if os.path.isabs(x) else x for x in sys.argv]),
               threads=threads, env_threads={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
               loadavg_start=bc.loadavg(), flare_version=__import__("flare").__version__,
               n_train=len(train), n_test=len(test), species=species, cutoff=a.cutoff,
               settings=dict(descriptor="B2", radial_basis="chebyshev", cutoff_function="quadratic", nmax=a.nmax,
                             lmax=a.lmax, kernel="NormalizedDotProduct", power=2, sigma0=a.sigma,
                             energy_noise0_per_atom=a.energy_noise, force_noise0=a.force_noise,
                             stress_noise0=a.stress_noise, n_sparse=a.n_sparse, optimizer="L-BFGS-B",
                             max_iterations=a.max_iterations))

    desc = B2("chebyshev", "quadratic", [0.0, a.cutoff], [], [len(species), a.nmax, a.lmax])
    kernel = NormalizedDotProduct(a.sigma, 2)
    gp = SparseGP([kernel], a.energy_noise, a.force_noise, a.stress_noise)

    counts = np.array([[np.sum(f.numbers == z) for z in species] for f in train], dtype=float)
    if a.single_atom_energies == "lstsq":
        e0 = np.linalg.lstsq(counts, np.array([f.get_potential_energy() for f in train]), rcond=None)[0]
    else:
        e0 = np.zeros(len(species))
    doc["settings"]["single_atom_energies"] = {int(z): float(v) for z, v in zip(species, e0)}

    def offset(f):
        return float(sum(e0[smap[int(z)]] for z in f.numbers))

    def structure(f):
        return Structure(f.cell, [smap[int(z)] for z in f.numbers], f.positions, a.cutoff, [desc])

    n_atoms_train = sum(len(f) for f in train)
    per_frame = None if a.n_sparse == "all" else -(-int(a.n_sparse) // len(train))
    rng_state = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    n_desc = None
    for f in train:
        s = structure(f)
        n_desc = s.descriptors[0].n_descriptors
        s.energy = np.array([f.get_potential_energy() - offset(f)])
        s.forces = f.get_forces().reshape(-1)
        if f.pbc.all():
            s.stresses = _flare_stress(f.get_stress(voigt=True))
        gp.add_training_structure(s, [-1], float(len(f)), 1.0, 1.0)   # energy noise per atom
        if per_frame is None:
            gp.add_all_environments(s)
        else:
            idx = sorted(rng_state.choice(len(f), size=min(per_frame, len(f)), replace=False).tolist())
            gp.add_specific_environments(s, idx)
        del s
    gp.update_matrices_QR()
    t_build = time.perf_counter() - t0
    bounds = [(None, None), (a.energy_noise, None), (None, None), (None, None)]
    optimize_hyperparameters(gp, max_iterations=a.max_iterations, method="L-BFGS-B", bounds=bounds)
    fit_s = time.perf_counter() - t0
    rss_fit = _rss_gb()
    hyps = [float(h) for h in gp.hyperparameters]
    print(json.dumps(dict(fit_wall_s=fit_s, build_s=t_build, hyps=hyps, rss_gb=rss_fit)), flush=True)

    de, nat, dfs, dss = [], [], [], []
    t1 = time.perf_counter()
    for f in test:
        s = structure(f)
        gp.predict_mean(s)
        m = np.asarray(s.mean_efs)
        de.append(m[0] + offset(f) - f.get_potential_energy())
        nat.append(len(f))
        dfs.append(m[1:-6].reshape(-1, 3) - f.get_forces())
        if f.pbc.all():
            dss.append(_ase_stress(m[-6:]) - f.get_stress(voigt=True))
        del s
    pred_s = (time.perf_counter() - t1) / len(test)
    de, nat = np.array(de), np.array(nat)
    dfa, dsa = np.concatenate([d.ravel() for d in dfs]), np.concatenate(dss)
    test_m = dict(n_structures=len(test), n_atoms=int(nat.sum()),
                  energy_mae_meV=1000 * float(np.abs(de).mean()),
                  energy_mae_meV_per_atom=1000 * float(np.abs(de / nat).mean()),
                  energy_rmse_meV_per_atom=1000 * float(np.sqrt(((de / nat) ** 2).mean())),
                  forces_mae_meV_per_A=1000 * float(np.abs(dfa).mean()),
                  forces_rmse_meV_per_A=1000 * float(np.sqrt((dfa**2).mean())),
                  stress_mae_GPa=EV_PER_A3_TO_GPA * float(np.abs(dsa).mean()),
                  stress_rmse_GPa=EV_PER_A3_TO_GPA * float(np.sqrt((dsa**2).mean())),
                  n_stress_structures=len(dss), predict_time_s_per_structure=pred_s)
    doc.update(n_atoms_train=n_atoms_train, n_sparse=int(gp.n_sparse),
               n_descriptors=n_desc, fit_wall_s=fit_s, descriptors_and_matrices_s=t_build,
               hyperparameters=dict(sigma=hyps[0], energy_noise_per_atom=hyps[1], force_noise=hyps[2],
                                    stress_noise=hyps[3]),
               log_marginal_likelihood=float(gp.log_marginal_likelihood),
               peak_rss_gb_after_fit=rss_fit, peak_rss_gb=_rss_gb(), test=test_m, loadavg_end=bc.loadavg())
    e_train = np.array([f.get_potential_energy() / len(f) for f in train])
    e_test = np.array([f.get_potential_energy() for f in test]) / nat
    ref_s = np.concatenate([f.get_stress(voigt=True) for f in test if f.pbc.all()])
    doc["trivial_predictor"] = dict(
        energy_mae_meV_per_atom=1000 * float(np.abs(e_test - e_train.mean()).mean()),
        forces_mae_meV_per_A=1000 * float(np.mean(np.abs(np.concatenate([f.get_forces().ravel() for f in test])))),
        stress_mae_GPa=EV_PER_A3_TO_GPA * float(np.abs(ref_s).mean()))
    print(json.dumps(test_m), json.dumps(doc["trivial_predictor"]), flush=True)
    out = bc.save_result(a.result_name or f"flare_alloys_n{a.size}", doc, threads=threads)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
