"""The Slurm executor against a real (local, single-node) Slurm cluster: job arrays, GPU requests,
failed and killed jobs, resubmission, attaching to queued jobs, bounded waiting, and a 2-task
``srun`` step running torch.distributed (gloo)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sciml.workflows.engine import run_workflow

pytestmark = pytest.mark.slurm
WF = "toyflows.squares"


def _calls(out, name):
    path = out / "jobs" / name / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_job_array_runs_and_rerun_skips(tmp_path, slurm_executor):
    out = tmp_path / "arr"
    lines: list[str] = []
    res = run_workflow(WF, {"values": [1, 2, 3]}, out, slurm_executor, echo=lines.append)
    assert res.ok, res.summary()
    assert res.metrics["total"] == 14
    ids = {n: j.slurm_job_id for n, j in res.jobs.items()}
    arrays = {i.split("_")[0] for i in ids.values()}
    assert len(arrays) == 1 and all("_" in i for i in ids.values()), ids  # one array, three tasks
    for n, jid in ids.items():
        result = json.loads((out / "jobs" / n / "result.json").read_text())
        assert result["slurm_array"] == jid  # the job really ran as that array task
        assert "computing" in Path(res.jobs[n].log).read_text()  # job output in the Slurm log of its task
        slurm = json.loads((out / "jobs" / n / "slurm.json").read_text())
        assert slurm["job_id"] == jid and slurm["array"] is True
    assert any("as Slurm job" in ln and "(array)" in ln for ln in lines)
    index = json.loads((out / "run.json").read_text())
    assert index["executor"]["kind"] == "slurm" and all(j["slurm_job_id"] for j in index["jobs"])
    again = run_workflow(WF, {"values": [1, 2, 3]}, out, slurm_executor)
    assert again.ok and again.executed == [] and all(_calls(out, f"x{v}") == 1 for v in (1, 2, 3))


def test_large_sweeps_are_split_into_several_arrays(tmp_path, slurm_executor, monkeypatch):
    monkeypatch.setattr("sciml.workflows.executors.slurm.MAX_ARRAY", 2)
    res = run_workflow(WF, {"values": [1, 2, 3]}, tmp_path / "split", slurm_executor)
    assert res.ok, res.summary()
    arrays = sorted(j.slurm_job_id for j in res.jobs.values())
    assert len({a.split("_")[0] for a in arrays}) == 2 and res.metrics["total"] == 14


def test_ddp_gpu_jobs_run_one_rank_per_gpu(tmp_path, slurm_executor):
    """executor.ddp: each GPU job of the array runs as `gpus` Slurm tasks joined in one process group."""
    res = run_workflow(WF, {"values": [1, 2], "gpu": True, "allreduce": True}, tmp_path / "ddp",
                       {**slurm_executor, "gpus": 2, "ddp": True})
    assert res.ok, res.summary()
    ports = set()
    for v in (1, 2):
        wd = tmp_path / "ddp" / "jobs" / f"x{v}"
        result = json.loads((wd / "result.json").read_text())
        assert result["world"] == 2 and result["allreduce"] == 3.0  # ranks 0 and 1 summed 1 + 2
        assert "rank 1 of 2" in (wd / "job.rank1.log").read_text()
        assert _calls(tmp_path / "ddp", f"x{v}") == 2  # both ranks ran the job function
        ports.add(result["master_port"])
    assert len(ports) == 2  # each array task has its own rendezvous port


def test_gpu_jobs_request_gpus(tmp_path, slurm_executor):
    res = run_workflow(WF, {"values": [2], "gpu": True}, tmp_path / "gpu", {**slurm_executor, "gpus": 2})
    assert res.ok, res.summary()
    result = json.loads((tmp_path / "gpu" / "jobs" / "x2" / "result.json").read_text())
    assert result["gpus"] == "2"  # SLURM_GPUS_ON_NODE inside the job


def test_failed_and_killed_jobs_are_reported_and_resubmitted(tmp_path, slurm_executor):
    out = tmp_path / "fail"
    marker = tmp_path / "broken"
    marker.touch()
    cfg = {"values": [1, 2, 3], "fail_values": [2], "fail_marker": str(marker), "die_values": [3]}
    t0 = time.monotonic()
    res = run_workflow(WF, cfg, out, slurm_executor)
    assert time.monotonic() - t0 < 60  # a killed job does not make the engine wait for ever
    assert not res.ok and sorted(res.failed) == ["x2", "x3"], res.summary()
    assert res.jobs["x1"].state == "completed"
    assert res.jobs["x2"].state == "failed" and "failed on purpose" in res.jobs["x2"].error
    assert res.jobs["x3"].state == "lost" and "ended without writing a result" in res.jobs["x3"].error
    assert json.loads((out / "run.json").read_text())["failed"] == ["x2", "x3"]
    # fix both causes and run again: only the two failed jobs are resubmitted
    marker.unlink()
    cfg["die_values"] = []
    again = run_workflow(WF, cfg, out, slurm_executor)
    assert again.ok, again.summary()
    assert sorted(again.executed) == ["x2", "x3"] and again.skipped == ["x1"]
    assert _calls(out, "x1") == 1 and again.metrics["total"] == 14


def test_no_wait_then_attach_and_bounded_wait(tmp_path, slurm_executor):
    out = tmp_path / "nowait"
    cfg = {"values": [1, 2], "sleep_s": 4.0}
    first = run_workflow(WF, cfg, out, slurm_executor, wait=False)
    assert {j.state for j in first.jobs.values()} == {"submitted"}
    ids = {n: j.slurm_job_id for n, j in first.jobs.items()}
    # bounded waiting: give up quickly, jobs are left running
    short = run_workflow(WF, cfg, out, {**slurm_executor, "wait_timeout": 0.5})
    assert {j.state for j in short.jobs.values()} <= {"timeout", "completed"}
    assert any(j.state == "timeout" for j in short.jobs.values())
    # waiting again attaches to the same Slurm jobs instead of submitting new ones
    lines: list[str] = []
    done = run_workflow(WF, cfg, out, slurm_executor, echo=lines.append)
    assert done.ok, done.summary()
    assert {n: j.slurm_job_id for n, j in done.jobs.items()} == ids
    assert any("already queued or running" in ln for ln in lines)
    assert _calls(out, "x1") == 1 and _calls(out, "x2") == 1


def test_sbatch_error_is_reported(tmp_path, slurm_executor):
    res = run_workflow(WF, {"values": [1]}, tmp_path / "bad", {**slurm_executor, "partition": "nonexistent"})
    assert res.failed == ["x1"] and "sbatch failed" in res.jobs["x1"].error


@pytest.mark.slow
def test_real_workflow_ensemble_as_job_array(tmp_path, slurm_executor):
    """The shipped `ensemble` workflow (tiny settings) trains its members as a Slurm job array."""
    cfg = {"n_train": 20, "n_valid": 5, "n_test": 10, "n_models": 2, "num_channels": 4, "lmax": 1,
           "cutoff": 4.0, "max_epochs": 2, "max_time_s": 3.0, "threads": 1}
    res = run_workflow("ensemble", cfg, tmp_path / "ens", {**slurm_executor, "mem": "1G", "wait_timeout": 240})
    assert res.ok, res.summary()
    assert len({j.slurm_job_id.split("_")[0] for j in res.jobs.values()}) == 1
    assert res.metrics["n_models"] == 2 and (tmp_path / "ens" / "report.md").exists()


TRAIN_YAML = """\
model: {num_channels: 4, num_layers: 2, lmax: 1, num_basis: 4, radial_hidden: 8, readout_hidden: 4, cutoff: 3.0}
batch_size: 4
max_steps: 3
progress: false
"""


def _cu_frames(n: int):
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        a.calc = EMT()
        e, f = a.get_potential_energy(), a.get_forces()
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        frames.append(a)
    return frames


def _wait_gone(jid: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = subprocess.run(["squeue", "-h", "-j", jid], capture_output=True, text=True)
        if q.returncode != 0 or not q.stdout.strip():
            return
        time.sleep(0.5)
    raise TimeoutError(f"Slurm job {jid} still running after {timeout} s")


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_example_scripts_train_with_two_ranks(tmp_path, slurm_cluster):
    """The example sbatch scripts train one potential with DDP (gloo on CPU) as a 2-task srun step
    (workflows/slurm/train_ddp.sbatch) and with torchrun (train_torchrun.sbatch): only rank 0
    reports, and both give the same model statistics (DDP == 1 process with the same global batch
    is checked in tests/potentials)."""
    if slurm_cluster is None:
        pytest.skip("uses the local test cluster")
    from sciml.atoms import write_frames

    frames = _cu_frames(12)
    write_frames(tmp_path / "train.extxyz", frames[:8])
    write_frames(tmp_path / "valid.extxyz", frames[8:])
    (tmp_path / "train.yaml").write_text(TRAIN_YAML)
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TRAIN": str(tmp_path / "train.extxyz"), "VALID": str(tmp_path / "valid.extxyz"),
           "CONFIG": str(tmp_path / "train.yaml"), "PYTHON": sys.executable, "DEVICE": "cpu",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "SCIML_QUIET": "1"}
    common = ["--cpus-per-task=1", "--mem=1G", "--time=10", "--gpus-per-node=2"]
    jobs = {
        "ddp": ["--ntasks-per-node=2", str(REPO / "workflows/slurm/train_ddp.sbatch")],
        "torchrun": ["--cpus-per-task=2", str(REPO / "workflows/slurm/train_torchrun.sbatch")],
    }
    ids = {}
    for name, args in jobs.items():
        cmd = ["sbatch", "--parsable", *common, f"--output={tmp_path}/{name}.out", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env={**env, "OUT": str(tmp_path / name / "model.pt")})
        assert proc.returncode == 0, proc.stderr
        ids[name] = proc.stdout.strip()
    for jid in ids.values():
        _wait_gone(jid)
    outputs = {}
    for name in jobs:
        text = (tmp_path / f"{name}.out").read_text()
        assert text.count('"model_path"') == 1, f"{name}: expected one JSON report (rank 0 only):\n{text}"
        outputs[name] = json.loads(text[text.index("{"): text.rindex("}") + 1])
        assert (tmp_path / name / "model.pt").exists()
    assert "DDP: 2 ranks" in (tmp_path / "ddp.out").read_text()
    assert "torchrun: 2 processes" in (tmp_path / "torchrun.out").read_text()
    ddp, torchrun = outputs["ddp"], outputs["torchrun"]
    assert ddp["steps"] == torchrun["steps"] == 3
    for key in ("loss", "energy_mae_meV", "forces_mae_meV_per_A"):
        assert ddp["best_valid"][key] == pytest.approx(torchrun["best_valid"][key], rel=1e-9), key
