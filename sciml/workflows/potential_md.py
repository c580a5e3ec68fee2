"""Workflow ``potential_md``: reference data (tblite GFN2-xTB) -> equivariant potential -> test errors -> MD.

One job does the chain (each step is resumable: data generation and training checkpoint
themselves, so a re-run after a kill continues). The report writes ``metrics.json``,
``test_errors.csv``, ``md_nve.csv``, ``md_langevin.csv``, ``parity.png``,
``md_temperature.png`` and ``report.md``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from .jobs import Job


@dataclass
class Config:
    """Settings of the potential_md workflow (times in fs, temperatures in K, lengths in Å)."""

    structure: str = "CH3CH2OH"  # ase.build.molecule name or a structure file
    dataset: Optional[str] = None  # use a bundled data set (e.g. "ethanol_gfn2_500K") instead of generating
    calculator: str = "gfn2-xtb"  # reference method for generate_pes
    n_frames: int = 400
    data_temperature_K: float = 500.0
    data_stride: int = 20
    data_equilibration_steps: int = 200
    n_train: int = 250
    n_valid: int = 50
    split_seed: int = 0
    num_channels: int = 32
    num_layers: int = 2
    lmax: int = 2
    cutoff: float = 5.0
    batch_size: int = 5
    lr: float = 0.01
    max_epochs: int = 500
    max_time_s: float = 600.0
    dtype: str = "float64"
    md_steps: int = 2000
    md_dt_fs: float = 0.5
    md_temperature_K: float = 300.0
    md_friction_per_fs: float = 0.01
    seed: int = 0
    threads: Optional[int] = None
    device: Optional[str] = None


def demo_config() -> Config:
    """Small settings: the whole workflow in about a minute on a laptop (40 s of training)."""
    return Config(n_frames=100, data_stride=10, data_equilibration_steps=100, n_train=80, n_valid=10,
                  num_channels=16, cutoff=4.5, max_epochs=300, max_time_s=40.0, md_steps=200)


def plan(cfg: Config) -> list[Job]:
    return [Job(name="potential_md", fn=run_potential_md, kwargs=asdict(cfg))]


def run_potential_md(workdir: Path, **kw) -> dict:
    """Job: generate/load data, split, train, evaluate on the test split, run NVE and Langevin MD."""
    import ase.io
    import numpy as np
    import pandas as pd
    import torch

    from .._io import atomic_write_text
    from ..atoms import read_frames, split_frames, write_frames
    from ..datasets import generate_pes, load_pes
    from ..potentials import SciMLCalculator, TrainConfig, evaluate, train_potential
    from ..potentials.graph import frames_to_graphs
    from ..potentials.md import run_md
    from ..potentials.train import predict_graphs

    cfg = Config(**kw)
    workdir = Path(workdir).resolve()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # 1. reference data
    if cfg.dataset:
        frames = load_pes(cfg.dataset)[: cfg.n_frames]
    else:
        data = workdir / "data.extxyz"
        if data.exists() and len(read_frames(data)) >= cfg.n_frames:
            frames = read_frames(data)[: cfg.n_frames]
        else:
            from ase.build import molecule

            start = Path(cfg.structure)
            atoms = ase.io.read(str(start)) if start.exists() else molecule(cfg.structure)
            frames = generate_pes(atoms, data, n_frames=cfg.n_frames, calculator=cfg.calculator,
                                  temperature_K=cfg.data_temperature_K, stride=cfg.data_stride,
                                  equilibration_steps=cfg.data_equilibration_steps, seed=cfg.seed, progress=False)
    train, valid, test = split_frames(frames, cfg.n_train, cfg.n_valid, seed=cfg.split_seed)
    for name, fr in (("train", train), ("valid", valid), ("test", test)):
        write_frames(workdir / f"{name}.extxyz", fr)
    # 2. training
    tcfg = TrainConfig(
        model=dict(num_channels=cfg.num_channels, num_layers=cfg.num_layers, lmax=cfg.lmax, cutoff=cfg.cutoff),
        batch_size=cfg.batch_size, lr=cfg.lr, max_epochs=cfg.max_epochs, max_time=cfg.max_time_s,
        dtype=cfg.dtype, device=cfg.device, seed=cfg.seed, progress=False,
    )
    res = train_potential(train, valid, workdir / "model.pt", tcfg)
    model = res.model
    # 3. test errors and parity data
    test_metrics = evaluate(model, test)
    graphs = frames_to_graphs(test, model.cutoff, model.species, dtype=model.dtype)
    pred = predict_graphs(model, graphs)
    parity = pd.DataFrame({
        "energy_ref_eV": [a.get_potential_energy() for a in test],
        "energy_pred_eV": [p["energy"] for p in pred],
        "n_atoms": [len(a) for a in test],
    })
    atomic_write_text(workdir / "parity_energy.csv", parity.to_csv(index=False))
    fref = np.concatenate([a.get_forces().ravel() for a in test])
    fpred = np.concatenate([p["forces"].ravel() for p in pred])
    atomic_write_text(workdir / "parity_forces.csv",
                      pd.DataFrame({"force_ref_eV_A": fref, "force_pred_eV_A": fpred}).to_csv(index=False))
    # 4. MD from a test structure
    calc = SciMLCalculator(model)
    start = test[0].copy()
    start.calc = None
    md = {}
    for ens in ("nve", "langevin"):
        r = run_md(start, calc, cfg.md_steps, cfg.md_dt_fs, temperature_K=cfg.md_temperature_K, ensemble=ens,
                   friction_per_fs=cfg.md_friction_per_fs, trajectory=workdir / f"md_{ens}.extxyz",
                   log=workdir / f"md_{ens}.csv", seed=cfg.seed, progress=False)
        md[ens] = r.summary()
    return {
        "workdir": str(workdir),
        "n_frames": len(frames), "n_train": len(train), "n_valid": len(valid), "n_test": len(test),
        "training": res.to_dict(),
        "test": test_metrics,
        "md": md,
    }


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Write metrics.json, CSVs, parity and temperature plots and report.md."""
    import pandas as pd

    from .._io import atomic_write_json, atomic_write_text

    out = Path(out)
    r = results["potential_md"]
    wd = Path(r["workdir"])
    metrics = {
        "n_frames": r["n_frames"], "n_train": r["n_train"], "n_valid": r["n_valid"], "n_test": r["n_test"],
        "num_parameters": r["training"]["num_parameters"], "train_steps": r["training"]["steps"],
        "train_epochs": r["training"]["epochs"], "train_stop_reason": r["training"]["stop_reason"],
        "train_wall_time_s": r["training"]["wall_time_s"],
        **{f"test_{k}": v for k, v in r["test"].items()},
        "nve_drift_eV_per_atom_per_ps": r["md"]["nve"]["drift_eV_per_atom_per_ps"],
        "nve_etot_std_meV_per_atom": r["md"]["nve"]["etot_std_meV_per_atom"],
        "nve_steps_per_s": r["md"]["nve"]["steps_per_s"],
        "langevin_mean_temperature_K": r["md"]["langevin"]["mean_temperature_K"],
        "langevin_steps_per_s": r["md"]["langevin"]["steps_per_s"],
    }
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_text(out / "test_errors.csv", pd.DataFrame([r["test"]]).to_csv(index=False))
    _plot_parity(wd, out, r["test"])
    _plot_md(wd, out, r["md"], cfg.md_temperature_K)
    t = r["test"]
    md_nve, md_lan = r["md"]["nve"], r["md"]["langevin"]
    text = f"""# potential_md report

Reference data: {r['n_frames']} frames ({'bundled ' + cfg.dataset if cfg.dataset else cfg.calculator + ' Langevin MD of ' + cfg.structure + f' at {cfg.data_temperature_K:g} K'}),
split {r['n_train']} train / {r['n_valid']} valid / {r['n_test']} test (seed {cfg.split_seed}).

Model: equivariant potential, {metrics['num_parameters']:,} parameters (C={cfg.num_channels}, lmax={cfg.lmax},
{cfg.num_layers} layers, cutoff {cfg.cutoff:g} Å), trained {metrics['train_steps']} steps / {metrics['train_epochs']} epochs
in {metrics['train_wall_time_s']:.0f} s (stopped: {metrics['train_stop_reason']}).

## Test errors ({t['n_structures']} structures)

| quantity | MAE | RMSE |
|---|---|---|
| energy (meV/atom) | {t['energy_mae_meV_per_atom']:.3f} | {t['energy_rmse_meV_per_atom']:.3f} |
| energy (meV) | {t['energy_mae_meV']:.2f} | {t['energy_rmse_meV']:.2f} |
| forces (meV/Å) | {t['forces_mae_meV_per_A']:.2f} | {t['forces_rmse_meV_per_A']:.2f} |

![parity](parity.png)

## Molecular dynamics ({cfg.md_steps} steps of {cfg.md_dt_fs:g} fs from a test structure, {cfg.md_temperature_K:g} K)

| run | energy drift (eV/atom/ps) | E_tot std (meV/atom) | mean T (K) | steps/s |
|---|---|---|---|---|
| NVE | {md_nve['drift_eV_per_atom_per_ps']:.2e} | {md_nve['etot_std_meV_per_atom']:.3f} | {md_nve['mean_temperature_K']:.0f} | {md_nve['steps_per_s']:.0f} |
| Langevin | (thermostatted) | {md_lan['etot_std_meV_per_atom']:.3f} | {md_lan['mean_temperature_K']:.0f} | {md_lan['steps_per_s']:.0f} |

![temperature](md_temperature.png)
"""
    atomic_write_text(out / "report.md", text)
    metrics["headline"] = {  # shown in the demo index
        "test_forces_mae_meV_per_A": metrics.get("test_forces_mae_meV_per_A"),
        "test_energy_mae_meV_per_atom": metrics.get("test_energy_mae_meV_per_atom"),
        "nve_drift_eV_per_atom_per_ps": metrics.get("nve_drift_eV_per_atom_per_ps"),
        "nve_steps_per_s": metrics.get("nve_steps_per_s"),
    }
    return metrics


def _plot_parity(wd: Path, out: Path, test: dict) -> None:
    """parity.png: predicted vs reference energy per atom and force components on the test frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .._io import atomic_savefig

    pe = pd.read_csv(wd / "parity_energy.csv")
    pf = pd.read_csv(wd / "parity_forces.csv")
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    epa_ref = pe.energy_ref_eV / pe.n_atoms
    epa_pred = pe.energy_pred_eV / pe.n_atoms
    ax[0].scatter(epa_ref, epa_pred, s=8)
    lim = [min(epa_ref.min(), epa_pred.min()), max(epa_ref.max(), epa_pred.max())]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel="reference energy (eV/atom)", ylabel="predicted (eV/atom)",
              title=f"energy, MAE {test['energy_mae_meV_per_atom']:.2f} meV/atom")
    ax[1].scatter(pf.force_ref_eV_A, pf.force_pred_eV_A, s=3, alpha=0.5)
    lim = [pf.values.min(), pf.values.max()]
    ax[1].plot(lim, lim, "k--", lw=0.8)
    ax[1].set(xlabel="reference force (eV/Å)", ylabel="predicted (eV/Å)",
              title=f"forces, MAE {test['forces_mae_meV_per_A']:.1f} meV/Å")
    fig.tight_layout()
    atomic_savefig(fig, out / "parity.png")
    plt.close(fig)


def _plot_md(wd: Path, out: Path, md: dict, target_K: float) -> None:
    """md_temperature.png (temperature and NVE energy change) and the MD logs as CSV."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .._io import atomic_savefig, atomic_write_text

    fig, ax = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for ens in ("nve", "langevin"):
        log = pd.read_csv(wd / f"md_{ens}.csv")
        atomic_write_text(out / f"md_{ens}.csv", log.to_csv(index=False))
        ax[0].plot(log.time_ps, log.temperature_K, label=ens.upper() if ens == "nve" else "Langevin", lw=0.8)
        if ens == "nve":
            n = md["nve"]["n_atoms"]
            ax[1].plot(log.time_ps, 1000 * (log.etot_eV - log.etot_eV.iloc[0]) / n, label="E_tot", lw=0.8)
            ax[1].plot(log.time_ps, 1000 * (log.epot_eV - log.epot_eV.iloc[0]) / n, label="E_pot", lw=0.6, alpha=0.6)
    ax[0].axhline(target_K, color="k", ls="--", lw=0.6)
    ax[0].set(ylabel="temperature (K)")
    ax[0].legend()
    ax[1].set(xlabel="time (ps)", ylabel="NVE energy change (meV/atom)")
    ax[1].legend()
    fig.tight_layout()
    atomic_savefig(fig, out / "md_temperature.png")
    plt.close(fig)
