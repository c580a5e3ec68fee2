import json

from typer.testing import CliRunner

from sciml.atoms import write_frames
from sciml.cli import app
from sciml.gp import GPPotential

KEYS = {"n_structures", "energy_mae_meV", "energy_rmse_meV", "energy_mae_meV_per_atom", "forces_mae_meV_per_A",
        "forces_rmse_meV_per_A", "forces_std_mean_meV_per_A", "forces_coverage_95"}


def test_train_and_eval_roundtrip(tmp_path, ethanol_frames, monkeypatch):
    monkeypatch.setenv("SCIML_QUIET", "1")
    train, test = tmp_path / "train.extxyz", tmp_path / "test.extxyz"
    write_frames(train, ethanol_frames[:10])
    write_frames(test, ethanol_frames[30:36])
    model = tmp_path / "gp.pt"
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--n-train", "6",
                                 "--kernel", "rbf", "--seed", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["n_train"] == 6 and summary["kernel"] == "rbf" and model.exists()
    r = CliRunner().invoke(app, ["gp", "eval", "--model", str(model), "--data", str(test), "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output)
    assert KEYS <= set(m) and m["n_structures"] == 6
    assert m["calibrated"] is False and m["forces_coverage_95"] == m["forces_coverage_95_raw"]
    # --valid calibrates without any other flag; eval then reports calibrated and raw coverage
    calib = tmp_path / "calib.extxyz"
    write_frames(calib, ethanol_frames[40:60])
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--n-train", "6",
                                 "--valid", str(calib), "--quiet"])
    assert r.exit_code == 0, r.output
    cal = json.loads(r.output)["calibration"]
    r = CliRunner().invoke(app, ["gp", "eval", "--model", str(model), "--data", str(calib), "--json"])
    m = json.loads(r.output)
    assert m["calibrated"] is True
    # the raw coverage on the calibration frames is what calibrate measured before scaling, and the scaled
    # intervals hold 95 % of the 540 force errors there by construction (the 95 % quantile of |err| / std)
    assert m["forces_coverage_95_raw"] == cal["forces_coverage_before"]
    assert m["energy_coverage_95_raw"] == cal["energy_coverage_before"]
    assert abs(m["forces_coverage_95"] - 0.95) <= 2 / 540, m
    assert {"forces_coverage_95", "energy_coverage_95", "forces_coverage_95_raw", "energy_coverage_95_raw"} <= set(m)
    # calibration frames must not be training frames
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--n-train", "6",
                                 "--valid", str(train), "--quiet"])
    assert r.exit_code != 0 and "training configurations" in r.output
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--n-train", "50"])
    assert r.exit_code != 0 and "holds only 10 frames" in r.output
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--kernel", "poly"])
    assert r.exit_code != 0 and "matern52 or rbf" in r.output


def test_active_learning_selection_and_inputs(ethanol_frames):
    import numpy as np
    import pytest

    from sciml.gp.active import _select, active_learning

    stds = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.95, 0.3])
    assert _select(stds, 2, 1) == [1, 5]
    assert _select(stds, 2, 2) == [1, 5]
    assert _select(stds, 3, 3) == [1, 5]  # nothing else is 3 steps away from both
    assert _select(stds, 3, 1) == [1, 2, 5]
    with pytest.raises(ValueError, match="at least 2"):
        active_learning(ethanol_frames[:1])
    with pytest.raises(ValueError, match="md_steps"):
        active_learning(ethanol_frames[:3], md_steps=0)


def test_train_length_scales_option(tmp_path, ethanol_frames, monkeypatch):
    monkeypatch.setenv("SCIML_QUIET", "1")
    train = tmp_path / "train.extxyz"
    write_frames(train, ethanol_frames[:8])
    model = tmp_path / "gp.pt"
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--length-scales", "pair",
                                 "--n-tune", "6", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["length_scales"] == "pair"
    assert sorted(summary["group_lengthscales"]) == ["C-C", "C-H", "C-O", "H-H", "H-O"]
    assert any(k.startswith("log_lengthscale[") for k in summary["laplace_std_err"])
    assert summary["descriptor_power"] == 0.5 and summary["n_tune"] == 6 and len(summary["variance_fractions"]) == 2
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--n-tune", "6", "--quiet",
                                 "--descriptor-power", "1", "--n-scales", "1", "--length-scales", "shared"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["descriptor_power"] == 1.0 and summary["variance_fractions"] == [1.0]
    assert GPPotential.load(model).descriptor_power == 1.0
    r = CliRunner().invoke(app, ["gp", "train", "--train", str(train), "--out", str(model), "--length-scales", "ard"])
    assert r.exit_code != 0 and "--length-scales must be one of" in r.output
