"""Write the local GP alloy benchmark split to extxyz for baselines that run outside sciml (FLARE).

Run with the sciml venv (it imports sciml; ``flare_alloys.py`` then reads the files with FLARE's venv):

    python workflows/benchmarks/flare_alloys_split.py --sizes 50 200

Exactly the frames of ``local_gp_alloys.py``: ``load_alloys("full")``, ``split_by_trajectory(frames, 1000,
100, seed=0)``; the training set of size N is every ``(1000 // N)``-th training frame (first N of them), the
test set every ``--test-stride``-th test frame. Files: ``<work>/train_<N>.extxyz``, ``<work>/test.extxyz``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    p.add_argument("--test-stride", type=int, default=10)
    p.add_argument("--work", type=Path, default=bc.WORK_DIR / "flare_alloys")
    a = p.parse_args(argv)

    from sciml.atoms import split_by_trajectory, write_frames
    from sciml.datasets import load_alloys

    a.work.mkdir(parents=True, exist_ok=True)
    frames = load_alloys("full", progress=False)
    train_all, _valid, test_all = split_by_trajectory(frames, 1000, 100, seed=0)
    test = test_all[:: a.test_stride]
    write_frames(a.work / "test.extxyz", test)
    print(f"test: {len(test)} frames -> {a.work / 'test.extxyz'}")
    for n in a.sizes:
        train = train_all[:: max(1, len(train_all) // n)][:n]
        write_frames(a.work / f"train_{n}.extxyz", train)
        print(f"train N={n}: {len(train)} frames -> {a.work / f'train_{n}.extxyz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
