"""MD cost of a saved local GP vs the number of atoms (is it linear?): Langevin steps/s on random fcc alloys.

Run (after local_gp_alloys.py has written its model):

    python workflows/benchmarks/local_gp_md_scaling.py \
        --model bench-data/local_gp_alloys/local_gp_200.pt --atoms 1000 4000 10000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from local_gp_alloys import _md_speed  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=bc.WORK_DIR / "local_gp_alloys" / "local_gp_200.pt")
    p.add_argument("--atoms", type=int, nargs="+", default=[1000, 4000, 10000])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from sciml.gp.local_gp import LocalGPPotential

    model = LocalGPPotential.load(a.model)
    doc = dict(command=" ".join([Path(sys.executable).name] + sys.argv), threads=a.threads,
               loadavg_start=bc.loadavg(), run_info=bc.run_info(a.threads), model=a.model.name, md={})
    for n in a.atoms:
        doc["md"][str(n)] = _md_speed(model, n, a.steps)
        print(json.dumps(doc["md"][str(n)]), flush=True)
    doc["loadavg_end"] = bc.loadavg()
    print(f"wrote {bc.save_result('local_gp_md_scaling', doc, threads=a.threads)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
