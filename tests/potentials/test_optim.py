"""AdamW, the learning-rate schedules and early stopping, each against its defining formula."""
from __future__ import annotations

import math

import pytest
import torch

from sciml.potentials import EquivariantPotential, ModelConfig, TrainConfig, train_potential

SMALL = dict(num_channels=8, cutoff=4.0, radial_hidden=8)


def _initial_weights(species, cfg: TrainConfig) -> dict:
    """The weights train_potential starts from (the model built right after ``torch.manual_seed(seed)``)."""
    torch.manual_seed(cfg.seed)
    m = EquivariantPotential(ModelConfig(species=species, **cfg.model)).double()
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def test_adamw_decays_weights_decoupled_from_the_gradient(ethanol_frames, tmp_path):
    """After one step from the same start, Adam (no decay) - AdamW = lr * weight_decay * w0 (decoupled decay)."""
    train, valid = ethanol_frames[:4], ethanol_frames[100:102]
    lr, wd = 1e-3, 0.1
    after = {}
    for opt in ("adam", "adamw"):
        cfg = TrainConfig(model=SMALL, batch_size=4, lr=lr, optimizer=opt, weight_decay=wd if opt == "adamw" else None,
                          max_steps=1, scheduler="none", progress=False)
        train_potential(train, valid, tmp_path / opt / "m.pt", cfg, resume=False)
        after[opt] = torch.load(tmp_path / opt / "m.ckpt", weights_only=False)["model"]
    w0 = _initial_weights([1, 6, 8], cfg)
    moved = 0
    for k, p0 in w0.items():
        torch.testing.assert_close(after["adam"][k] - after["adamw"][k], lr * wd * p0, rtol=0, atol=1e-12)
        moved += int((after["adam"][k] - p0).abs().max() > 0.5 * lr)  # Adam's first step moves by ~lr
    assert moved > 0
    assert TrainConfig(optimizer="adamw").effective_weight_decay == 0.01
    assert TrainConfig(optimizer="adamw", weight_decay=0.0).effective_weight_decay == 0.0  # explicit 0 is kept
    assert TrainConfig().effective_weight_decay == 0.0


def test_cosine_schedule_with_warmup_follows_its_formula(ethanol_frames, tmp_path):
    lr, min_lr, T, W = 0.01, 1e-3, 10, 3
    cfg = TrainConfig(model=SMALL, batch_size=2, lr=lr, min_lr=min_lr, scheduler="cosine", warmup_steps=W,
                      max_steps=T, progress=False)
    seen = []
    res = train_potential(ethanol_frames[:6], ethanol_frames[100:102], tmp_path / "m.pt", cfg, resume=False,
                          callback=lambda info: seen.append(info["lr"]))
    expected = [(min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * k / T))) * min(1.0, (k + 1) / W)
                for k in range(T)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert res.stop_reason == "max_steps" and res.steps == T
    # the progress is the largest fraction of any limit: with max_epochs the sole limit it is steps/epochs
    cfg2 = TrainConfig(model=SMALL, batch_size=2, lr=lr, min_lr=0.0, scheduler="cosine", max_epochs=2, progress=False)
    seen2 = []
    train_potential(ethanol_frames[:6], ethanol_frames[100:102], tmp_path / "m2.pt", cfg2, resume=False,
                    callback=lambda info: seen2.append(info["lr"]))
    assert seen2 == pytest.approx([lr * 0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)], rel=1e-12)


def test_early_stopping_after_patience_validations_without_improvement(ethanol_frames, tmp_path):
    """With a step too small to change any weight the validation loss never improves after the first epoch:
    training must stop after exactly 1 + patience validations and keep the first one."""
    patience = 3
    cfg = TrainConfig(model=SMALL, batch_size=4, lr=1e-300, min_lr=0.0, ema_decay=0.0, max_epochs=50, early_stopping_patience=patience,
                      progress=False)
    res = train_potential(ethanol_frames[:8], ethanol_frames[100:103], tmp_path / "m.pt", cfg, resume=False)
    assert res.stop_reason == "early_stopping"
    assert res.epochs == 1 + patience and len(res.history) == 1 + patience
    assert [r["best"] for r in res.history] == [True] + [False] * patience
    assert len({r["valid_loss"] for r in res.history}) == 1


def test_plateau_schedule_halves_after_patience(ethanol_frames, tmp_path):
    """No improvement (frozen weights): the LR drops by plateau_factor after plateau_patience + 1 bad validations."""
    cfg = TrainConfig(model=SMALL, batch_size=4, lr=1e-300, min_lr=0.0, ema_decay=0.0, max_epochs=6, plateau_patience=1,
                      plateau_factor=0.5, early_stopping_patience=100, progress=False)
    res = train_potential(ethanol_frames[:4], ethanol_frames[100:102], tmp_path / "m.pt", cfg, resume=False)
    # validation k (k=0..5) reports the LR used in epoch k; drops take effect in the epoch after validations 2, 4
    assert [r["lr"] / 1e-300 for r in res.history] == pytest.approx([1, 1, 1, 0.5, 0.5, 0.25])


def test_callback_can_stop_training(ethanol_frames, tmp_path):
    cfg = TrainConfig(model=SMALL, batch_size=2, max_epochs=10, progress=False)
    res = train_potential(ethanol_frames[:6], ethanol_frames[100:102], tmp_path / "m.pt", cfg, resume=False,
                          callback=lambda info: info["step"] >= 4)
    assert res.stop_reason == "callback" and res.steps == 4
    assert res.history[-1]["step"] == 4  # the partial epoch was validated
    assert (tmp_path / "m.pt").exists()


def test_bad_schedule_settings_are_named():
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=0.01, min_lr=0.1).validate()
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1).validate()
    with pytest.raises(ValueError, match="stress_weight"):
        TrainConfig(stress_weight=-1.0).validate()


def test_stage_two_switches_loss_weights_at_its_progress(ethanol_frames, tmp_path):
    """Validation losses follow the loss formula with the stage-one weights before ``start`` and the stage-two
    weights after; the best model is chosen again within stage two."""
    w1, w2 = (1.0, 100.0), (1000.0, 10.0)
    cfg = TrainConfig(model=SMALL, batch_size=2, max_steps=8, valid_max_steps=1, scheduler="cosine",
                      energy_weight=w1[0], forces_weight=w1[1],
                      stage_two={"start": 0.5, "energy_weight": w2[0], "forces_weight": w2[1]}, progress=False)
    res = train_potential(ethanol_frames[:6], ethanol_frames[100:103], tmp_path / "m.pt", cfg, resume=False)
    rows = res.history
    assert [r["stage"] for r in rows] == [1 if r["step"] <= 4 else 2 for r in rows]
    for r in rows:
        wE, wF = w1 if r["stage"] == 1 else w2
        expected = wE * (r["valid_energy_rmse_meV_per_atom"] / 1e3) ** 2 + wF * (r["valid_forces_rmse_meV_per_A"] / 1e3) ** 2
        assert r["valid_loss"] == pytest.approx(expected, rel=1e-9)
    assert next(r for r in rows if r["stage"] == 2)["best"]
    with pytest.raises(ValueError, match="stage_two"):
        TrainConfig(stage_two={"start": 1.5}).validate()
    with pytest.raises(ValueError, match="stage_two"):
        TrainConfig(stage_two={"begin": 0.5}).validate()
