"""``sciml gp train --kind local`` / ``sciml gp eval`` on a saved local GP (JSON keys of sciml.metrics)."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from sciml.atoms import write_frames
from sciml.cli import app

from local_testdata import alloy_set


def test_local_train_calibrate_eval(tmp_path):
    frames = alloy_set(14, seed=10, repeat=(2, 2, 2))
    train, valid, test = tmp_path / "t.extxyz", tmp_path / "v.extxyz", tmp_path / "x.extxyz"
    write_frames(train, frames[:8])
    write_frames(valid, frames[8:11])
    write_frames(test, frames[11:])
    model = tmp_path / "m.pt"
    r = CliRunner().invoke(app, ["gp", "train", "--kind", "local", "--train", str(train), "--out", str(model),
                                 "--n-sparse", "40", "--cutoff", "4.0", "--valid", str(valid), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["kind"] == "local" and summary["n_sparse"] == 40 and summary["calibration"]["n_frames"] == 3
    r = CliRunner().invoke(app, ["gp", "eval", "--model", str(model), "--data", str(test), "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    for key in ("energy_mae_meV_per_atom", "forces_mae_meV_per_A", "stress_mae_GPa", "forces_coverage_95",
                "forces_coverage_95_raw", "energy_coverage_95", "energy_coverage_95_raw"):
        assert key in m and m[key] >= 0, key
    # --valid must not hold training frames
    r = CliRunner().invoke(app, ["gp", "train", "--kind", "local", "--train", str(train), "--out", str(model),
                                 "--n-sparse", "40", "--cutoff", "4.0", "--valid", str(train), "--quiet"])
    assert r.exit_code != 0 and "training frame" in r.output
    r = CliRunner().invoke(app, ["gp", "train", "--kind", "nonsense", "--train", str(train), "--out", str(model)])
    assert r.exit_code != 0 and "--kind" in r.output


def test_local_train_with_the_radial_descriptor(tmp_path):
    from sciml.gp import LocalGPPotential

    frames = alloy_set(8, seed=11, repeat=(2, 2, 2))
    train, model = tmp_path / "t.extxyz", tmp_path / "m.pt"
    write_frames(train, frames)
    r = CliRunner().invoke(app, ["gp", "train", "--kind", "local", "--train", str(train), "--out", str(model),
                                 "--n-sparse", "30", "--cutoff", "4.0", "--descriptor", "radial", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["descriptor"] == "radial"
    gp = LocalGPPotential.load(model)
    assert gp.descriptor_.normalise is False and gp.descriptor_.l_max == 0 and gp.descriptor_.n_max == 6
    assert gp.noise_["energy"] <= 0.01 * (1 + 1e-9)
    r = CliRunner().invoke(app, ["gp", "train", "--kind", "local", "--train", str(train), "--out", str(model),
                                 "--descriptor", "ace", "--quiet"])
    assert r.exit_code != 0 and "--descriptor" in r.output
