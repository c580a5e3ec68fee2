"""Training, saving/loading, resuming, MD energy conservation, committees and input errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from sciml.potentials import (
    EquivariantPotential,
    ModelConfig,
    SciMLCalculator,
    TrainConfig,
    evaluate,
    fit_statistics,
    load_model,
    save_model,
    train_potential,
)
from sciml.potentials.graph import frames_to_graphs
from sciml.potentials.md import run_md

from potentials_testlib import tiny_model


def test_training_lowers_validation_force_error(trained):
    res, cfg = trained["result"], trained["config"]
    torch.manual_seed(cfg.seed)
    mcfg = ModelConfig(species=res.model.species, **cfg.model)
    untrained = EquivariantPotential(mcfg).double()
    fit_statistics(untrained, frames_to_graphs(trained["train"], mcfg.cutoff, mcfg.species))
    before = evaluate(untrained, trained["valid"])["forces_mae_meV_per_A"]
    after = evaluate(res.model, trained["valid"])["forces_mae_meV_per_A"]
    assert after < 0.5 * before, (before, after)
    assert res.best_valid["forces_mae_meV_per_A"] == pytest.approx(after, rel=1e-9)
    hist = res.history
    assert len(hist) == cfg.max_epochs
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    # files: model, checkpoint, metrics CSV with one row per epoch
    import pandas as pd

    path = trained["path"]
    csv = pd.read_csv(path.with_name("model.metrics.csv"))
    assert len(csv) == cfg.max_epochs and "valid_forces_mae_meV_per_A" in csv
    assert path.with_name("model.ckpt").exists()


def test_reference_energies_start_near_data(ethanol_frames):
    """Least-squares E0 + shift alone (network output zeroed) predict energies to the data's spread."""
    graphs = frames_to_graphs(ethanol_frames[:30], 4.0, [1, 6, 8])
    m = EquivariantPotential(ModelConfig(species=[1, 6, 8], cutoff=4.0, num_channels=8)).double()
    stats = fit_statistics(m, graphs)
    with torch.no_grad():
        m.readout[-1].weight.zero_()
        m.readout[-1].bias.zero_()
    E = np.array([a.get_potential_energy() for a in ethanol_frames[:40]])
    err = evaluate(m, ethanol_frames[30:40])["energy_mae_meV"]
    assert err < 1000 * 2 * E.std()  # vs |E| ~ 310 eV without reference energies
    e0 = np.array(stats["atomic_energies"])
    assert abs((np.array([2, 1, 6]) @ e0[[1, 2, 0]]) - E[:30].mean()) < 1e-6  # C2 O H6 composition
    F = np.concatenate([a.get_forces().ravel() for a in ethanol_frames[:30]])
    assert float(m.scale) == pytest.approx(np.sqrt(np.mean(F**2)), rel=1e-9)


def test_save_load_identical_predictions(trained, tmp_path):
    a = trained["valid"][0].copy()
    m1 = load_model(trained["path"])
    a.calc = SciMLCalculator(m1)
    e1, f1 = a.get_potential_energy(), a.get_forces()
    save_model(m1, tmp_path / "again.pt")
    a.calc = SciMLCalculator(str(tmp_path / "again.pt"))
    assert a.get_potential_energy() == e1
    np.testing.assert_array_equal(a.get_forces(), f1)
    payload = torch.load(tmp_path / "again.pt", weights_only=False)
    for key in ("species", "cutoff", "model_config", "dtype", "sciml_version", "format_version"):
        assert key in payload
    assert payload["species"] == [1, 6, 8] and payload["dtype"] == "float64"


def test_load_refuses_incompatible_files(trained, tmp_path):
    payload = torch.load(trained["path"], weights_only=False)
    bad = dict(payload, format_version=99)
    torch.save(bad, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_model(tmp_path / "future.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a sciml potential"):
        load_model(tmp_path / "other.pt")
    bad = dict(payload, model_config=dict(payload["model_config"], num_channels=7))
    torch.save(bad, tmp_path / "arch.pt")
    with pytest.raises(ValueError, match="does not match the architecture"):
        load_model(tmp_path / "arch.pt")
    with pytest.raises(ValueError, match="training checkpoint"):
        load_model(trained["path"].with_name("model.ckpt"))


def test_version1_files_load_with_the_e3nn_kernel(tmp_path):
    """Files from development builds (format 1, no tensor_product key) load with e3nn's kernel, same numbers."""
    m = tiny_model(tensor_product="e3nn")
    save_model(m, tmp_path / "v2.pt")
    payload = torch.load(tmp_path / "v2.pt", weights_only=False)
    hp = dict(payload["model_config"])
    hp.pop("tensor_product")
    torch.save(dict(payload, format_version=1, model_config=hp), tmp_path / "v1.pt")
    a = molecule("CH3CH2OH")
    results = []
    for f in ("v2.pt", "v1.pt"):
        a.calc = SciMLCalculator(str(tmp_path / f))
        results.append((a.get_potential_energy(), a.get_forces()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert load_model(tmp_path / "v1.pt").config.tensor_product == "e3nn"


def test_nve_energy_conservation(trained):
    start = trained["valid"][3].copy()
    calc = SciMLCalculator(trained["result"].model)
    res = run_md(start, calc, steps=400, dt_fs=0.25, temperature_K=300, ensemble="nve", progress=False)
    s = res.summary()
    print("NVE drift (eV/atom/ps):", s["drift_eV_per_atom_per_ps"], "Etot std meV/atom", s["etot_std_meV_per_atom"])
    assert abs(s["drift_eV_per_atom_per_ps"]) < 2e-3
    # total energy fluctuates far less than kinetic energy exchanges with potential energy
    assert np.std(res.etot) < 0.05 * np.std(res.ekin)


@pytest.mark.parametrize("scheduler", ["plateau", "cosine"])
def test_resume_after_mid_epoch_kill_matches_uninterrupted(ethanol_frames, tmp_path, scheduler):
    """Killed in the middle of an epoch, resumed from the last (mid-epoch) checkpoint: same final weights."""
    train, valid = ethanol_frames[:12], ethanol_frames[100:104]
    cfg = TrainConfig(model=dict(num_channels=8, cutoff=4.0, radial_hidden=8), batch_size=4, max_epochs=4,
                      checkpoint_every=2, scheduler=scheduler, min_lr=1e-4, plateau_patience=0, progress=False)
    full = train_potential(train, valid, tmp_path / "a" / "m.pt", cfg, resume=False)
    assert full.steps == 12  # 3 batches per epoch

    class Killed(Exception):
        pass

    def kill_at_5(info):
        if info["step"] == 5:
            raise Killed

    with pytest.raises(Killed):
        train_potential(train, valid, tmp_path / "b" / "m.pt", cfg, resume=False, callback=kill_at_5)
    ck = torch.load(tmp_path / "b" / "m.ckpt", weights_only=False)
    # the last checkpoint (step 4) lies inside epoch 2: one of its three batches done
    assert (ck["state"]["step"], ck["state"]["epoch"], ck["state"]["batch"]) == (4, 1, 1)
    resumed = []
    res = train_potential(train, valid, tmp_path / "b" / "m.pt", cfg, resume=True,
                          callback=lambda info: resumed.append((info["step"], info["lr"])))
    assert [s for s, _ in resumed] == list(range(5, 13))  # continued with the next batch, not restarted
    assert res.steps == 12 and res.epochs == 4
    ca = torch.load(tmp_path / "a" / "m.ckpt", weights_only=False)
    cb = torch.load(tmp_path / "b" / "m.ckpt", weights_only=False)
    for part in ("model", "ema"):
        for k in ca[part]:
            torch.testing.assert_close(cb[part][k], ca[part][k], rtol=1e-10, atol=1e-12)
    assert [r["valid_loss"] for r in cb["state"]["history"]] == pytest.approx(
        [r["valid_loss"] for r in ca["state"]["history"]], rel=1e-9)
    assert [r["lr"] for r in cb["state"]["history"]] == pytest.approx([r["lr"] for r in ca["state"]["history"]])
    # a checkpoint for other settings is refused, not silently mixed
    with pytest.raises(ValueError, match="different data or settings"):
        train_potential(train[:8], valid, tmp_path / "b" / "m.pt", cfg, resume=True)


def test_max_time_stops_training(ethanol_frames, tmp_path):
    cfg = TrainConfig(model=dict(num_channels=8, cutoff=4.0), batch_size=2, max_epochs=1000, max_time=2.0,
                      progress=False)
    res = train_potential(ethanol_frames[:10], ethanol_frames[100:102], tmp_path / "m.pt", cfg, resume=False)
    assert res.stop_reason == "max_time"
    assert res.wall_time_s < 15
    assert (tmp_path / "m.pt").exists()


def test_committee_mean_and_spread(trained):
    a = trained["valid"][0].copy()
    m1, m2 = tiny_model(seed=1), tiny_model(seed=2)
    singles = []
    for m in (m1, m2):
        a.calc = SciMLCalculator(m)
        singles.append((a.get_potential_energy(), a.get_forces()))
    a.calc = SciMLCalculator([m1, m2])
    e = a.get_potential_energy()
    r = a.calc.results
    assert e == pytest.approx(0.5 * (singles[0][0] + singles[1][0]), abs=1e-12)
    assert r["energy_std"] == pytest.approx(abs(singles[0][0] - singles[1][0]) / np.sqrt(2), rel=1e-9)
    np.testing.assert_allclose(r["forces"], 0.5 * (singles[0][1] + singles[1][1]), atol=1e-12)
    assert r["forces_std"].shape == (len(a), 3) and r["forces_std"].max() > 0
    with pytest.raises(ValueError, match="must agree"):
        SciMLCalculator([m1, tiny_model(species=(1, 8))])


def test_calculator_properties(trained):
    a = trained["valid"][0].copy()
    a.calc = SciMLCalculator(str(trained["path"]))
    e = a.get_potential_energy()
    assert a.get_potential_energies().sum() == pytest.approx(e, abs=1e-9)
    assert a.calc.get_property("free_energy", a) == e
    assert "stress" not in a.calc.results  # molecule: no stress


@pytest.mark.parametrize(
    "atoms, match",
    [
        (Atoms("SiH", positions=[[0, 0, 0], [1.5, 0, 0]]), "unknown element"),
        (Atoms("OH", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN/inf positions"),
        (Atoms("OH", positions=[[0, 0, 0], [0, 0, 0]]), "overlapping atoms"),
        (Atoms(), "empty structure"),
    ],
)
def test_bad_structures_get_clear_errors(mol_model, atoms, match):
    atoms.calc = SciMLCalculator(mol_model)
    with pytest.raises(ValueError, match=match):
        atoms.get_potential_energy()


def test_wrong_force_shape_in_training_data(ethanol_frames, tmp_path):
    bad = ethanol_frames[5].copy()
    bad.calc = SinglePointCalculator(bad, energy=-1.0, forces=np.zeros((len(bad), 2)))
    frames = list(ethanol_frames[:4]) + [bad]
    with pytest.raises(ValueError, match=r"structure 4: forces have shape \(9, 2\), expected \(9, 3\)"):
        train_potential(frames, ethanol_frames[100:102], tmp_path / "m.pt", TrainConfig(progress=False))


def test_bad_training_config_names_key():
    with pytest.raises(ValueError, match="lerning_rate"):
        TrainConfig.from_dict({"lerning_rate": 0.1})
    with pytest.raises(ValueError, match="num_chanels"):
        TrainConfig.from_dict({"model": {"num_chanels": 4}})


def test_training_with_stress_on_periodic_copper(tmp_path):
    """Stress labels (EMT, strained cells) enter the loss and the metrics; errors drop with training."""
    from sciml.datasets import load_pes

    frames = load_pes("cu_emt_300K", index=":14")
    cfg = TrainConfig(model=dict(num_channels=8, cutoff=4.0, radial_hidden=8), batch_size=2, max_epochs=6,
                      stress_weight=100.0, lr=0.01, progress=False)
    res = train_potential(frames[:10], frames[10:14], tmp_path / "cu.pt", cfg, resume=False)
    first, last = res.history[0], res.history[-1]
    assert "valid_stress_mae_GPa" in last
    assert last["valid_loss"] < first["valid_loss"]
    m = evaluate(res.model, frames[10:14])
    # independent reference: the ASE calculator's 3x3 stress against the labels, averaged by hand, in GPa
    from ase import units

    errs = []
    for f in frames[10:14]:
        ref = f.get_stress(voigt=False)
        b = f.copy()
        b.calc = SciMLCalculator(res.model)
        errs.append(np.abs(b.get_stress(voigt=False) - ref))
    assert m["stress_mae_GPa"] == pytest.approx(float(np.mean(errs)) / units.GPa, rel=1e-6)
    assert m["stress_mae_GPa"] > 1e-6  # a real error, not an empty average
    a = frames[11].copy()
    a.calc = SciMLCalculator(res.model)
    s = a.get_stress()
    assert s.shape == (6,)
    from sciml.potentials import predict_graphs

    g = frames_to_graphs([frames[11]], 4.0, [29])
    S = predict_graphs(res.model, g, stress=True)[0]["stress"]  # (3, 3) from the batched path
    np.testing.assert_allclose(s, [S[0, 0], S[1, 1], S[2, 2], S[1, 2], S[0, 2], S[0, 1]], rtol=1e-9, atol=1e-12)
