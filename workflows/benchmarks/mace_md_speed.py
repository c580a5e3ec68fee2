"""MACE side of the MD-throughput comparison (runs in the MACE venv, ``.venv-mace``).

Builds MACE in the configuration of issue 14 -- hidden irreps 64x0e+64x1o (64 channels, max_L 1),
spherical harmonics to l = 3, correlation order 3, 2 interactions, 8 Bessel functions, r_max 5 Å,
radial MLP [64, 64, 64], MACE's default interaction blocks (RealAgnosticInteractionBlock first,
then RealAgnosticResidualInteractionBlock), readout MLP 16x0e, silu gate -- with random
weights (cost does not depend on them), saves it, and measures ASE velocity-Verlet steps per
second with MACE's own ``MACECalculator`` on the given extxyz structures (``bench_common.md_throughput``,
the same code that times sciml). A memory limit (``--max-memory-gb``, RLIMIT_AS) makes a
structure too large for this machine fail cleanly instead of exhausting a shared node.

    .venv-mace/bin/python workflows/benchmarks/mace_md_speed.py --structures bench-data/md/alloy_1008.extxyz \\
        --steps 2 --threads 1 --dtype float64 --out mace.json
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def build(species: list[int], dtype: str, path: Path) -> int:
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(getattr(torch, dtype))
    torch.manual_seed(0)
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=len(species), hidden_irreps=o3.Irreps("64x0e+64x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(species)), avg_num_neighbors=42.0,
        atomic_numbers=species, correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )
    torch.save(model, path)
    return int(sum(p.numel() for p in model.parameters()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--structures", nargs="+", required=True, help="extxyz files, one structure each")
    p.add_argument("--steps", type=int, default=2, help="timed MD steps per segment")
    p.add_argument("--repeats", type=int, default=1, help="timed segments (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--max-memory-gb", type=float, default=14.0)
    p.add_argument("--workdir", default=str(bc.WORK_DIR / "mace_md"))
    p.add_argument("--out")
    a = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    lim = int(a.max_memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    import ase.io
    import mace
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(a.threads)
    frames = [ase.io.read(s) for s in a.structures]
    species = sorted({int(z) for f in frames for z in f.numbers})
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"mace_64x0e_64x1o_L3_nu3_{a.dtype}.model"
    n_params = build(species, a.dtype, path)
    calc = MACECalculator(model_paths=str(path), device="cpu", default_dtype=a.dtype)
    out = {"baseline": "MACE", "mace_version": mace.__version__, "torch_version": torch.__version__,
           "weights": "untrained (random; cost does not depend on the weights)", "n_parameters": n_params,
           "config": {"hidden_irreps": "64x0e+64x1o", "max_ell": 3, "correlation": 3, "num_interactions": 2,
                      "num_bessel": 8, "r_max": 5.0, "radial_MLP": [64, 64, 64], "MLP_irreps": "16x0e"},
           "dtype": a.dtype, "threads": a.threads, "max_memory_gb": a.max_memory_gb, "md": []}
    for s, f in zip(a.structures, frames):
        try:
            r = bc.md_throughput(calc, f, steps=a.steps, warmup=a.warmup, repeats=a.repeats)
        except (MemoryError, RuntimeError) as exc:  # RLIMIT_AS reached: report, do not crash the run
            r = {"n_atoms": len(f), "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        r["structure"] = Path(s).name
        r["peak_rss_MiB_so_far"] = bc.peak_rss_mb()
        out["md"].append(r)
        print(r, flush=True)
    bc.write_json(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
