"""Engine overhead figures (not a test): per-job cost of the local executor, and the wall time of a
trivial job array on the local Slurm test cluster (when Slurm is installed and we are root).

    python workflows/benchmarks/workflow_engine.py [N_LOCAL] [N_SLURM]

The toy workflow (``toyflows.squares``) lives with the engine tests in ``tests/workflows``.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests" / "workflows"
sys.path.insert(0, str(TESTS))
os.environ["PYTHONPATH"] = str(TESTS) + os.pathsep + os.environ.get("PYTHONPATH", "")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

from sciml.workflows.engine import run_workflow  # noqa: E402


def main() -> None:
    n_local = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_slurm = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        cfg = {"values": list(range(n_local))}
        t0 = time.perf_counter()
        res = run_workflow("toyflows.squares", cfg, Path(tmp) / "local")
        t1 = time.perf_counter()
        again = run_workflow("toyflows.squares", cfg, Path(tmp) / "local")
        t2 = time.perf_counter()
        assert res.ok and again.executed == []
        print(f"local executor: {n_local} trivial jobs in {t1 - t0:.2f} s ({1000 * (t1 - t0) / n_local:.1f} ms/job); "
              f"idempotent re-run (all skipped) {t2 - t1:.2f} s; loadavg {bc.loadavg()}")
        from slurm_cluster import LocalSlurmCluster, missing_binaries

        if missing_binaries() or os.geteuid() != 0:
            print("slurm: skipped (Slurm not installed or not root)")
            return
        with LocalSlurmCluster(cpus=8) as cluster:
            os.environ["SLURM_CONF"] = str(cluster.conf)
            ex = {"kind": "slurm", "cpus": 1, "mem": "100M", "time": 5, "poll_interval": 0.2}
            t0 = time.perf_counter()
            res = run_workflow("toyflows.squares", {"values": list(range(n_slurm))}, Path(tmp) / "slurm", ex)
            t1 = time.perf_counter()
            assert res.ok, res.summary()
            print(f"slurm executor (local 1-node cluster, 8 slots): array of {n_slurm} trivial jobs submitted, run and "
                  f"collected in {t1 - t0:.1f} s; loadavg {bc.loadavg()}")


if __name__ == "__main__":
    main()
