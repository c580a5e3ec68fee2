"""Checks that the registry-built FLARE (``flare_build.sh``) is sound, and how its sparse GP scales with species.

Run with FLARE's venv (no sciml import; data from ASE's EMT, made here):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv-flare/bin/python workflows/benchmarks/flare_sanity.py

Same model as ``flare_alloys.py`` (B2 Chebyshev/quadratic, cutoff 5 Å, ``NormalizedDotProduct(2.0, 2)``; all
environments as sparse set, hyperparameters fixed at their initial values; energy + force labels). Records in
``results/flare_sanity.json``:

* ``fd``: predicted forces vs central finite differences of the predicted energy (7-species alloy frame);
* ``alpha_vs_numpy``: FLARE's QR solve vs ``numpy.linalg.solve`` of ``(Kuu + Kuf Λ Kfu) α = Kuf Λ y``;
* ``supercell``: per-atom descriptor norms of a frame vs its 2x2x2 supercell (periodic images with a cell
  shorter than twice the cutoff);
* ``species_scan``: train on 3 rattled random fcc alloys (108 atoms, EMT) with S = 1, 2, 3, 7 of the alloy
  set's elements, test force MAE on a fourth, beside the mean |F| of the test frame (the zero predictor).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

ELEMENTS = [13, 28, 29, 46, 47, 78, 79]     # Al Ni Cu Pd Ag Pt Au: the species of the alloy set


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nmax", type=int, default=4)
    p.add_argument("--lmax", type=int, default=3)
    p.add_argument("--cutoff", type=float, default=5.0)
    a = p.parse_args(argv)

    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from flare.bffs.sgp._C_flare import B2, NormalizedDotProduct, SparseGP, Structure

    smap = {z: i for i, z in enumerate(ELEMENTS)}
    desc = B2("chebyshev", "quadratic", [0.0, a.cutoff], [], [len(ELEMENTS), a.nmax, a.lmax])

    def structure(atoms, pos=None):
        return Structure(np.array(atoms.cell), [smap[int(z)] for z in atoms.numbers],
                         atoms.positions if pos is None else pos, a.cutoff, [desc])

    def frames(n_species, n=4, lattice=3.8):
        rng = np.random.default_rng(n_species)
        out = []
        for k in range(n):
            at = bulk("Cu", "fcc", a=lattice, cubic=True).repeat((3, 3, 3))
            at.numbers = rng.choice(ELEMENTS[:n_species], len(at))
            at.rattle(0.1, seed=k)
            at.calc = EMT()
            out.append((at, at.get_potential_energy(), at.get_forces()))
        return out

    def fit(train):
        kern = NormalizedDotProduct(2.0, 2)            # kept alive: SparseGP holds a raw pointer
        gp = SparseGP([kern], 0.01, 0.01, 0.01)
        for at, e, f in train:
            s = structure(at)
            s.energy = np.array([e])
            s.forces = f.reshape(-1)
            gp.add_training_structure(s, [-1], 1.0, 1.0, 1.0)
            gp.add_all_environments(s)
        gp.update_matrices_QR()
        return gp, kern

    doc = dict(command=" ".join(["python"] + sys.argv), threads=int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
               loadavg_start=bc.loadavg(), nmax=a.nmax, lmax=a.lmax, cutoff=a.cutoff, species_scan={})
    t0 = time.perf_counter()
    for n_species in (1, 2, 3, 7):
        data = frames(n_species)
        gp, _k = fit(data[:3])
        at, e, f = data[3]
        s = structure(at)
        gp.predict_mean(s)
        pred = np.asarray(s.mean_efs)[1:-6].reshape(-1, 3)
        kuf, y = np.asarray(gp.Kuf), np.asarray(gp.y)
        doc["species_scan"][str(n_species)] = dict(
            n_sparse=int(gp.n_sparse), train_label_mae=float(np.abs(kuf.T @ np.asarray(gp.alpha) - y).mean()),
            test_forces_mae_meV_per_A=1000 * float(np.abs(pred - f).mean()),
            test_zero_predictor_meV_per_A=1000 * float(np.abs(f).mean()))
        print(n_species, doc["species_scan"][str(n_species)], flush=True)
        if n_species == 7:
            kuu, lam = np.asarray(gp.Kuu), np.asarray(gp.noise_vector)
            lhs = kuu + gp.Kuu_jitter * np.eye(len(kuu)) + (kuf * lam) @ kuf.T
            ref = np.linalg.solve(lhs, (kuf * lam) @ y)
            doc["alpha_vs_numpy_rel_err"] = float(np.abs(ref - np.asarray(gp.alpha)).max() / np.abs(ref).max())
            h, fd = 1e-4, []
            for i, c in [(0, 0), (5, 1), (17, 2)]:
                x = at.positions.copy()
                x[i, c] += h
                sp = structure(at, x)
                gp.predict_mean(sp)
                x[i, c] -= 2 * h
                sm = structure(at, x)
                gp.predict_mean(sm)
                fd.append(dict(atom=i, comp=c, fd=float(-(sp.mean_efs[0] - sm.mean_efs[0]) / (2 * h)),
                               predicted=float(pred[i, c])))
            doc["fd"] = fd
            sup = at.repeat((2, 2, 2))
            n1 = [np.sort(np.asarray(x)) for x in structure(at).descriptors[0].descriptor_norms]
            n2 = [np.sort(np.asarray(x)) for x in structure(sup).descriptors[0].descriptor_norms]
            doc["supercell_norm_max_abs_diff"] = float(max(np.abs(np.repeat(u, 8) - v).max()
                                                           for u, v in zip(n1, n2) if len(u)))
    doc.update(wall_s=time.perf_counter() - t0, loadavg_end=bc.loadavg())
    print({k: doc[k] for k in ("alpha_vs_numpy_rel_err", "supercell_norm_max_abs_diff")}, doc["fd"])
    print(f"wrote {bc.save_result('flare_sanity', doc, threads=doc['threads'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
