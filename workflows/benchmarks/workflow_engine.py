"""Engine overhead (not a test): the cost per job of each executor, measured on trivial jobs through
``sciml.workflows.run_workflow`` (the call the README shows).

* local, in this process: ``--n-local`` jobs, then the same run again (every job skipped: the cost of
  checking results), each ``--repeats`` times;
* process pool: the same jobs in ``--workers`` spawned worker processes;
* Slurm: an array of ``--n-slurm`` jobs submitted, run and collected on a throw-away single-node Slurm
  (``tests/workflows/slurm_cluster.py``; needs the Slurm packages and root, else recorded as skipped).

    python workflows/benchmarks/workflow_engine.py [--n-local 200] [--n-slurm 20] [--workers 2]

Raw results: ``workflows/benchmarks/results/workflow_engine.json`` (with the command, thread count and
load average). The toy workflow (``toyflows.squares``) lives with the engine tests in ``tests/workflows``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1] / "tests" / "workflows"
sys.path.insert(0, str(TESTS))  # toyflows and slurm_cluster (job processes find toyflows via PYTHONPATH)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402
from slurm_cluster import LocalSlurmCluster, missing_binaries  # noqa: E402

from sciml.workflows import run_workflow  # noqa: E402

WORKFLOW = "toyflows.squares"


def _timed(label: str, n_jobs: int, run: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Wall time of ``run()`` (a whole workflow run) ``repeats`` times; per-job cost from the median."""
    seconds, loads = [], []
    for _ in range(repeats):
        res, m = bc.measure(run)
        if not res.ok:
            raise RuntimeError(f"{label}: the run failed:\n{res.summary()}")
        seconds.append(m["seconds"])
        loads.append((m["loadavg_before"], m["loadavg_after"]))
    med = statistics.median(seconds)
    row = {"what": label, "jobs": n_jobs, "repeats": repeats, "seconds": seconds, "seconds_median": med,
           "ms_per_job": 1e3 * med / n_jobs, "loadavg_before_after": loads}
    print(f"{label}: {n_jobs} jobs in {med:.2f} s (median of {repeats}) = {row['ms_per_job']:.1f} ms/job; "
          f"loadavg {loads[-1][1]}")
    return row


def local_rows(tmp: Path, n: int, workers: int, repeats: int) -> list[dict[str, Any]]:
    cfg = {"values": list(range(n))}
    counter = iter(range(10**6))

    def fresh(executor: dict) -> Callable[[], Any]:
        return lambda: run_workflow(WORKFLOW, cfg, tmp / f"run{next(counter)}", executor)

    rows = [_timed("local executor, in process", n, fresh({"kind": "local"}), repeats)]
    done = tmp / "done"
    run_workflow(WORKFLOW, cfg, done)

    def again() -> Any:
        res = run_workflow(WORKFLOW, cfg, done)
        assert res.executed == [], "an idempotent re-run executed jobs"
        return res

    rows.append(_timed("re-run, every job skipped (result checks only)", n, again, repeats))
    rows.append(_timed(f"process pool, {workers} workers", n, fresh({"kind": "local", "workers": workers}), repeats))
    return rows


def slurm_row(tmp: Path, n: int) -> dict[str, Any]:
    missing = missing_binaries()
    if missing or os.geteuid() != 0:
        why = f"Slurm not installed (missing {', '.join(missing)})" if missing else "not root"
        print(f"slurm: skipped ({why})")
        return {"what": "slurm job array", "skipped": why}
    with LocalSlurmCluster(cpus=8) as cluster:
        os.environ["SLURM_CONF"] = str(cluster.conf)
        ex = {"kind": "slurm", "cpus": 1, "mem": "100M", "time": 5, "poll_interval": 0.2}
        row = _timed("slurm job array (local 1-node cluster, 8 slots, poll 0.2 s)", n,
                     lambda: run_workflow(WORKFLOW, {"values": list(range(n))}, tmp / f"slurm{time.time_ns()}", ex), 1)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-local", type=int, default=200, help="trivial jobs for the local and pool runs")
    p.add_argument("--n-slurm", type=int, default=20, help="trivial jobs in the Slurm array (0: skip)")
    p.add_argument("--workers", type=int, default=2, help="process-pool workers")
    p.add_argument("--repeats", type=int, default=3, help="repeats of each local measurement")
    p.add_argument("--result-name", default="workflow_engine", help="results/<name>.json (e.g. another checkout)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = local_rows(Path(tmp), a.n_local, a.workers, a.repeats)
        if a.n_slurm > 0:
            rows.append(slurm_row(Path(tmp), a.n_slurm))
    import sciml

    path = bc.save_result(a.result_name, {
        "sciml_package": str(Path(sciml.__file__).parent.relative_to(bc.REPO)
                             if Path(sciml.__file__).is_relative_to(bc.REPO) else "another checkout"),
        "workflow": WORKFLOW, "job": "x**2 written to result.json (no computation to speak of)",
        "settings": vars(a), "results": rows}, threads=1)
    print(f"raw results: {path.relative_to(bc.REPO)}")


if __name__ == "__main__":
    main()
