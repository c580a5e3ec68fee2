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


def _independent_errors(model_path, frames) -> dict:
    """Errors recomputed frame by frame through the ASE calculator and numpy (not sciml.metrics)."""
    import numpy as np
    from ase import units

    from sciml.potentials import SciMLCalculator

    calc = SciMLCalculator(str(model_path))
    dE, dEa, dF, dS = [], [], [], []
    for a in frames:
        b = a.copy()
        b.calc = calc
        dE.append(b.get_potential_energy() - a.get_potential_energy())
        dEa.append(dE[-1] / len(a))
        dF.append((b.get_forces() - a.get_forces()).ravel())
        if a.pbc.all():
            v = b.get_stress() - a.get_stress()
            dS.append(np.concatenate([v, v[3:]]))  # 3x3 has each off-diagonal twice
    dE, dEa, dF = np.array(dE), np.array(dEa), np.concatenate(dF)
    out = {"energy_mae_meV": 1e3 * np.abs(dE).mean(), "energy_rmse_meV": 1e3 * np.sqrt((dE**2).mean()),
           "energy_mae_meV_per_atom": 1e3 * np.abs(dEa).mean(),
           "forces_mae_meV_per_A": 1e3 * np.abs(dF).mean(), "forces_rmse_meV_per_A": 1e3 * np.sqrt((dF**2).mean())}
    if dS:
        out["stress_mae_GPa"] = np.abs(np.concatenate(dS)).mean() / units.GPa
    return out


def test_eval_json_matches_independent_errors(files, model, ethanol_frames):
    r = _ok(runner.invoke(app, ["potential", "eval", "--model", str(model), "--data", str(files / "test.extxyz"),
                                "--json"]))
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["n_structures"] == 6 and "stress_mae_GPa" not in d  # molecules: no stress
    ref = _independent_errors(model, ethanol_frames[120:126])
    for key, val in ref.items():
        assert d[key] == pytest.approx(val, rel=1e-6), key


def test_eval_json_on_periodic_alloys_has_stress_in_gpa(tmp_path):
    """`eval --json` on multi-element periodic cells: stress_mae_GPa and per-atom energy keys, as recomputed."""
    from sciml.datasets import load_alloys
    from sciml.potentials import save_model

    from potentials_testlib import tiny_model

    frames = load_alloys()[::40]
    write_frames(tmp_path / "alloys.extxyz", frames)
    species = sorted({int(z) for a in frames for z in a.numbers})
    save_model(tiny_model(species=species, cutoff=4.5), tmp_path / "m.pt")
    r = _ok(runner.invoke(app, ["potential", "eval", "--model", str(tmp_path / "m.pt"), "--data",
                                str(tmp_path / "alloys.extxyz"), "--json", "--batch-size", "2"]))
    d = json.loads(r.stdout.strip().splitlines()[-1])
    ref = _independent_errors(tmp_path / "m.pt", frames)
    assert set(ref) <= set(d) and "stress_rmse_GPa" in d and "energy_rmse_meV_per_atom" in d
    for key, val in ref.items():
        assert d[key] == pytest.approx(val, rel=1e-6), key


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
