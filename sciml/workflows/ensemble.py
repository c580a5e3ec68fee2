"""Workflow ``ensemble``: M potentials trained with different seeds (a job array) -> committee calculator.

Each job trains one model on the same split with its own seed (initial weights and batch
order). The report builds :class:`~sciml.potentials.SciMLCalculator` from all model files and
compares the committee spread with the actual error on the test split: ``metrics.json``,
``members.csv``, ``uncertainty_atoms.csv``, ``uncertainty_structures.csv``,
``uncertainty.png`` and ``report.md``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from .jobs import Job


@dataclass
class Config:
    """Settings of the ensemble workflow."""

    dataset: Optional[str] = "ethanol_gfn2_500K"  # bundled data set name
    data_file: Optional[str] = None  # or labelled frames (extxyz / ASE db); overrides dataset
    n_train: int = 200
    n_valid: int = 50
    n_test: int = 200
    split_seed: int = 0
    n_models: int = 4
    first_seed: int = 0
    num_channels: int = 32
    num_layers: int = 2
    lmax: int = 2
    cutoff: float = 5.0
    batch_size: int = 5
    lr: float = 0.01
    max_epochs: int = 300
    max_time_s: float = 300.0
    dtype: str = "float64"
    threads: Optional[int] = None
    device: Optional[str] = None
    gpu: bool = False


def demo_config() -> Config:
    """Tiny settings: 3 small models trained for a few seconds each."""
    return Config(n_train=30, n_valid=8, n_test=20, n_models=3, num_channels=8, cutoff=4.0, max_epochs=20,
                  max_time_s=8.0)


def _frames(cfg: Config):
    from ..atoms import read_frames, split_frames
    from ..datasets import load_pes

    if cfg.data_file:
        frames = read_frames(cfg.data_file)
    elif cfg.dataset:
        frames = load_pes(cfg.dataset)
    else:
        raise ValueError("ensemble config: set dataset or data_file")
    return split_frames(frames, cfg.n_train, cfg.n_valid, cfg.n_test, seed=cfg.split_seed)


def plan(cfg: Config) -> list[Job]:
    if cfg.n_models < 2:
        raise ValueError(f"n_models must be >= 2 for a committee, got {cfg.n_models}")
    base = asdict(cfg)
    return [
        Job(name=f"model_{k:02d}", fn=train_member, kwargs={**base, "seed": cfg.first_seed + k}, gpu=cfg.gpu)
        for k in range(cfg.n_models)
    ]


def train_member(workdir: Path, seed: int, **kw) -> dict:
    """Job: train one committee member with ``seed``; returns its model path and validation errors."""
    import torch

    from ..potentials import TrainConfig, train_potential

    cfg = Config(**kw)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train, valid, _ = _frames(cfg)
    tcfg = TrainConfig(
        model=dict(num_channels=cfg.num_channels, num_layers=cfg.num_layers, lmax=cfg.lmax, cutoff=cfg.cutoff),
        batch_size=cfg.batch_size, lr=cfg.lr, max_epochs=cfg.max_epochs, max_time=cfg.max_time_s,
        dtype=cfg.dtype, device=cfg.device, seed=seed, progress=False,
    )
    workdir = Path(workdir).resolve()
    res = train_potential(train, valid, workdir / "model.pt", tcfg)
    return {"seed": seed, "model_path": str(workdir / "model.pt"), **res.to_dict()}


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Committee of all trained members: uncertainty vs error on the test split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from .._io import atomic_savefig, atomic_write_json, atomic_write_text
    from ..potentials import SciMLCalculator, evaluate, load_model
    from ..potentials.uncertainty import calibration_summary, committee_errors

    out = Path(out)
    _, _, test = _frames(cfg)
    names = sorted(results)
    models = [load_model(results[n]["model_path"], device=cfg.device) for n in names]
    members = []
    for n, m in zip(names, models):
        e = evaluate(m, test)
        members.append({"job": n, "seed": results[n]["seed"], "steps": results[n]["steps"],
                        "energy_mae_meV": e["energy_mae_meV"], "forces_mae_meV_per_A": e["forces_mae_meV_per_A"]})
    members = pd.DataFrame(members)
    calc = SciMLCalculator(models)
    s_df, a_df = committee_errors(calc, test)
    summ = calibration_summary(s_df, a_df)
    metrics = {
        "n_models": len(models),
        **summ,
        "member_forces_mae_meV_per_A_mean": float(members.forces_mae_meV_per_A.mean()),
        "member_energy_mae_meV_mean": float(members.energy_mae_meV.mean()),
    }
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "members.csv", members.to_csv(index=False))
    atomic_write_text(out / "uncertainty_atoms.csv", a_df.to_csv(index=False))
    atomic_write_text(out / "uncertainty_structures.csv", s_df.to_csv(index=False))
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    ax[0].scatter(1000 * a_df.force_std_eV_A, 1000 * a_df.force_error_eV_A, s=4, alpha=0.4)
    lim = [0, 1000 * max(a_df.force_std_eV_A.max(), a_df.force_error_eV_A.max())]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel="committee force spread |σ_F| (meV/Å)", ylabel="force error |ΔF| (meV/Å)",
              title=f"per atom, Spearman ρ = {summ['forces_spearman_std_vs_error']:.2f}")
    ax[1].scatter(1000 * s_df.energy_std_eV, 1000 * s_df.energy_error_eV.abs(), s=8)
    lim = [0, 1000 * max(s_df.energy_std_eV.max(), s_df.energy_error_eV.abs().max())]
    ax[1].plot(lim, lim, "k--", lw=0.8)
    ax[1].set(xlabel="committee energy spread σ_E (meV)", ylabel="|energy error| (meV)",
              title=f"per structure, Spearman ρ = {summ['energy_spearman_std_vs_error']:.2f}")
    fig.tight_layout()
    atomic_savefig(fig, out / "uncertainty.png")
    plt.close(fig)
    rows = "\n".join(f"| {r.job} | {r.seed} | {r.steps} | {r.energy_mae_meV:.2f} | {r.forces_mae_meV_per_A:.2f} |"
                     for r in members.itertuples())
    text = f"""# ensemble report

{len(models)} potentials trained on the same {cfg.n_train}-frame split with different seeds, evaluated as a
committee (mean prediction, spread = standard deviation across members) on {summ['n_structures']} test structures.

| member | seed | steps | energy MAE (meV) | force MAE (meV/Å) |
|---|---|---|---|---|
{rows}
| **committee mean** | | | {summ['energy_mae_meV']:.2f} | {summ['forces_mae_meV_per_A']:.2f} |

## Does the spread track the error?

- Spearman correlation of per-atom force spread with force error: {summ['forces_spearman_std_vs_error']:.3f}
  over {summ['n_atoms']} atoms (p = {summ['forces_spearman_pvalue']:.2g}; a random ranking exceeds
  {summ['forces_spearman_null_999']:.3f} with probability 0.1 %); per-structure energy spread vs |error|:
  {summ['energy_spearman_std_vs_error']:.3f}.
- Force components within the committee's 68 % / 95 % intervals (1σ / 1.96σ): {summ['forces_coverage_68']:.2f} / {summ['forces_coverage_95']:.2f}
  (0.68 / 0.95 if the spread were a calibrated Gaussian error bar).
- RMS error / RMS spread = {summ['forces_error_to_std_ratio']:.2f} (> 1: the committee is over-confident;
  scale its σ by this factor for calibrated error bars).

![uncertainty](uncertainty.png)
"""
    atomic_write_text(out / "report.md", text)
    return metrics
