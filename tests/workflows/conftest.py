"""Fixtures for the workflow-engine tests: the toy workflows and a local Slurm cluster."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # toyflows (test-only workflows) importable here and in spawned workers
    sys.path.insert(0, str(HERE))

from slurm_cluster import LocalSlurmCluster, missing_binaries  # noqa: E402


@pytest.fixture(autouse=True)
def _toyflows_on_pythonpath(monkeypatch):
    """Slurm jobs import the job functions by module name: put toyflows on their PYTHONPATH too."""
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(HERE) + (os.pathsep + old if old else ""))
    monkeypatch.setenv("SCIML_QUIET", "1")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node Slurm cluster on 127.0.0.1 (SLURM_CONF points at it while tests run).

    Uses an existing cluster instead when SCIML_TEST_SLURM_PARTITION is set (and sbatch works).
    Skips only when the Slurm/munge programs are not installed.
    """
    if os.environ.get("SCIML_TEST_SLURM_PARTITION"):
        yield None
        return
    missing = missing_binaries()
    if missing:
        pytest.skip("Slurm not installed (missing " + ", ".join(missing) + "); install with: apt-get install -y "
                    "slurmd slurmctld slurm-client munge")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm test cluster must run as root (slurmd starts jobs as the submitting user)")
    cluster = LocalSlurmCluster(cpus=8, gpus=2, memory_mb=8192)
    cluster.start()
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            if old is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old


@pytest.fixture
def slurm_executor(slurm_cluster):
    """Executor settings for the test cluster (fast polling, bounded waiting)."""
    part = os.environ.get("SCIML_TEST_SLURM_PARTITION") or slurm_cluster.partition
    cfg = {"kind": "slurm", "partition": part, "cpus": 1, "mem": "200M", "time": 5, "gpus": 1,
           "poll_interval": 0.3, "wait_timeout": 120}
    yield cfg
    if slurm_cluster is not None:
        slurm_cluster.cancel_all()
