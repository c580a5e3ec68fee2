"""sciml side of the potentials comparison: the same measurements as ``mace_baseline.py --phase bench``.

Runs with the system interpreter (sciml installed). Given a trained model file it reports
test errors through :class:`sciml.potentials.SciMLCalculator` (one structure per call, like
MACE's calculator), parameter count, MD throughput for one ethanol and a periodic
27-ethanol box, and evaluation time per atom for growing periodic ethanol boxes, all with
the helpers in ``bench_common.py`` that time MACE as well.

    python workflows/benchmarks/sciml_potential_side.py --model M.pt --test TEST.extxyz --threads 1 --out s.json
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
    p.add_argument("--model", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--md-steps-small", type=int, default=200)
    p.add_argument("--md-steps-box", type=int, default=30)
    p.add_argument("--md-dtypes", nargs="+", default=["float64", "float32"])
    p.add_argument("--scaling-sizes", type=int, nargs="+", default=[2, 3, 4, 5])
    a = p.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    import sciml
    from sciml.potentials import SciMLCalculator, load_model

    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    out: dict = {
        "side": "sciml",
        "sciml_git": bc.git_rev(("sciml/potentials",)),
        "sciml_version": getattr(sciml, "__version__", "?"),
        "torch_version": torch.__version__,
        "threads": a.threads,
        "model_file": a.model,
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "machine": bc.machine_info(),
    }
    cfg = getattr(model, "config", None)
    if cfg is not None:
        try:
            from dataclasses import asdict

            out["config"] = asdict(cfg)
        except TypeError:
            out["config"] = str(cfg)

    calc64 = SciMLCalculator(a.model, device="cpu", dtype="float64")
    out["test"] = bc.test_errors(calc64, a.test)
    print("test:", out["test"], flush=True)
    for dtype in a.md_dtypes:
        calc = calc64 if dtype == "float64" else SciMLCalculator(a.model, device="cpu", dtype=dtype)
        res = {
            "md_ethanol": bc.md_throughput(calc, bc.ethanol(), steps=a.md_steps_small),
            "md_27_ethanol_box": bc.md_throughput(calc, bc.ethanol_box(3), steps=a.md_steps_box),
            "eval_scaling": bc.eval_scaling(calc, ns_per_side=a.scaling_sizes),
        }
        out[f"inference_{dtype}"] = res
        print(dtype, {k: v for k, v in res.items() if k != "eval_scaling"}, flush=True)
    out["peak_rss_MiB"] = bc.peak_rss_mb()
    bc.write_json(a.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
