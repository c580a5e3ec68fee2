"""`sciml potential train|eval|md` with the exact command forms of the issue."""
from __future__ import annotations

import json

import ase.io
import pytest
from ase import Atoms
from typer.testing import CliRunner

from sciml.atoms import write_frames
from sciml.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory, ethanol_frames):
    d = tmp_path_factory.mktemp("cli")
    write_frames(d / "train.extxyz", ethanol_frames[:16])
    write_frames(d / "valid.extxyz", ethanol_frames[100:104])
    write_frames(d / "test.extxyz", ethanol_frames[120:126])
    ase.io.write(d / "start.xyz", ethanol_frames[130])
    (d / "cfg.yaml").write_text("max_epochs: 4\nbatch_size: 4\nmodel: {num_channels: 8, cutoff: 4.0}\n")
    return d


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def model(files):
    r = _ok(runner.invoke(app, ["potential", "train", "--train", str(files / "train.extxyz"), "--valid",
                                str(files / "valid.extxyz"), "--out", str(files / "m.pt"), "--max-time", "60",
                                "--config", str(files / "cfg.yaml"), "--device", "cpu", "--seed", "3",
                                "--threads", "1", "--quiet"]))
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["epochs"] == 4 and summary["stop_reason"] == "max_epochs"
    return files / "m.pt"


def test_eval_json_keys(files, model):
    r = _ok(runner.invoke(app, ["potential", "eval", "--model", str(model), "--data", str(files / "test.extxyz"),
                                "--json"]))
    d = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("n_structures", "energy_mae_meV", "energy_rmse_meV", "energy_mae_meV_per_atom",
                "forces_mae_meV_per_A", "forces_rmse_meV_per_A"):
        assert key in d, key
    assert d["n_structures"] == 6
    assert 0 < d["forces_mae_meV_per_A"] <= d["forces_rmse_meV_per_A"]


@pytest.mark.parametrize("ensemble", ["nve", "langevin"])
def test_md_writes_trajectory_and_log(files, model, ensemble):
    out = files / f"traj_{ensemble}.extxyz"
    r = _ok(runner.invoke(app, ["potential", "md", "--model", str(model), "--structure", str(files / "start.xyz"),
                                "--steps", "20", "--dt", "0.5", "--temperature", "300", "--ensemble", ensemble,
                                "--out", str(out), "--write-every", "5", "--quiet"]))
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["steps"] == 20 and s["ensemble"] == ensemble
    traj = ase.io.read(out, index=":")
    assert len(traj) == 5  # steps 0, 5, 10, 15, 20
    assert traj[-1].info["time_ps"] == pytest.approx(0.01)
    log = (files / f"traj_{ensemble}.energy.csv").read_text().splitlines()
    assert log[0].startswith("time_ps,epot_eV,ekin_eV,etot_eV,temperature_K") and len(log) == 22


def test_cli_errors_are_clear(files, model):
    ase.io.write(files / "si.xyz", Atoms("SiH", positions=[[0, 0, 0], [1.5, 0, 0]]))
    r = runner.invoke(app, ["potential", "md", "--model", str(model), "--structure", str(files / "si.xyz"),
                            "--steps", "2", "--dt", "0.5", "--out", str(files / "x.extxyz")])
    assert r.exit_code == 2 and "unknown element" in r.output
    r = runner.invoke(app, ["potential", "eval", "--model", str(files / "missing.pt"), "--data",
                            str(files / "test.extxyz"), "--json"])
    assert r.exit_code == 2 and "does not exist" in r.output
    (files / "bad.yaml").write_text("batch_sise: 4\n")
    r = runner.invoke(app, ["potential", "train", "--train", str(files / "train.extxyz"), "--valid",
                            str(files / "valid.extxyz"), "--out", str(files / "b.pt"), "--config",
                            str(files / "bad.yaml")])
    assert r.exit_code == 2 and "batch_sise" in r.output
