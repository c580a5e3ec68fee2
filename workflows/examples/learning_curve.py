"""Learning curve of the equivariant potential: test errors vs training-set size, over seeds.

An example of a *user-defined* workflow (a sweep, one job per training-set size and seed) that
needs no change to sciml. Run it like a shipped one, locally or as a Slurm job array:

    sciml workflow run workflows/examples/learning_curve.yaml
    sciml workflow run workflows/examples/learning_curve.yaml --executor slurm --set executor.partition=gpu

A workflow module defines ``Config`` (typed, with defaults: the YAML ``config:`` section is validated
against it), ``demo_config()``, ``plan(cfg) -> list[Job]`` and ``report(cfg, out, results) -> dict``.
Job functions are top-level functions ``fn(**kwargs, workdir=Path) -> dict``; everything that
changes a job's result goes into its kwargs (results are reused only for identical kwargs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sciml.workflows import Job


@dataclass
class Config:
    dataset: str = "ethanol_gfn2_500K"  # bundled data set (sciml datasets list)
    sizes: list[int] = field(default_factory=lambda: [50, 100, 200, 400, 800])  # training-set sizes
    seeds: list[int] = field(default_factory=lambda: [0, 1])  # one model per (size, seed)
    n_valid: int = 100  # validation frames (early stopping)
    n_test: int = 400  # test frames, the same for every size
    num_channels: int = 32  # model width
    cutoff: float = 5.0  # neighbour cutoff (Å)
    max_epochs: int = 300
    max_time_s: float = 600.0  # training budget per model (s)
    device: Optional[str] = None  # cpu, cuda, or null for automatic
    gpu: bool = False  # ask the Slurm executor for a GPU per job


def demo_config() -> Config:
    return Config(sizes=[10, 20], seeds=[0], n_valid=5, n_test=20, num_channels=4, cutoff=4.0, max_epochs=3,
                  max_time_s=5.0)


def train_and_test(dataset: str, n_train: int, n_valid: int, n_test: int, seed: int, num_channels: int,
                   cutoff: float, max_epochs: int, max_time_s: float, device: Optional[str], workdir: Path) -> dict:
    """Job: train one potential on the first ``n_train`` frames of a fixed permutation; test errors."""
    from sciml.atoms import split_frames
    from sciml.datasets import load_pes
    from sciml.potentials import TrainConfig, evaluate, train_potential

    frames = load_pes(dataset)
    # the same valid/test frames for every size: split once with the largest pool, then take a prefix
    pool, valid, test = split_frames(frames, len(frames) - n_valid - n_test, n_valid, n_test, seed=0)
    cfg = TrainConfig(model={"num_channels": num_channels, "cutoff": cutoff}, max_epochs=max_epochs,
                      max_time=max_time_s, seed=seed, device=device, progress=False)
    res = train_potential(pool[:n_train], valid, workdir / "model.pt", cfg)
    return {"n_train": n_train, "seed": seed, "steps": res.steps, **evaluate(res.model, test)}


def plan(cfg: Config) -> list[Job]:
    common = {"dataset": cfg.dataset, "n_valid": cfg.n_valid, "n_test": cfg.n_test, "num_channels": cfg.num_channels,
              "cutoff": cfg.cutoff, "max_epochs": cfg.max_epochs, "max_time_s": cfg.max_time_s, "device": cfg.device}
    return [Job(f"n{n}_seed{s}", train_and_test, {**common, "n_train": n, "seed": s}, gpu=cfg.gpu)
            for n in cfg.sizes for s in cfg.seeds]


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from sciml._io import atomic_savefig, atomic_write_text

    table = pd.DataFrame(results.values()).sort_values(["n_train", "seed"])
    atomic_write_text(out / "learning_curve.csv", table.to_csv(index=False))
    curve = table.groupby("n_train")[["energy_mae_meV_per_atom", "forces_mae_meV_per_A"]].agg(["mean", "std"])
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    for a, col, label in ((ax[0], "energy_mae_meV_per_atom", "energy MAE (meV/atom)"),
                          (ax[1], "forces_mae_meV_per_A", "force MAE (meV/Å)")):
        a.errorbar(curve.index, curve[(col, "mean")], yerr=curve[(col, "std")].fillna(0), marker="o")
        a.set(xscale="log", yscale="log", xlabel="training frames", ylabel=label)
    fig.tight_layout()
    atomic_savefig(fig, out / "learning_curve.png")
    plt.close(fig)
    rows = "\n".join(f"| {n} | {r[('energy_mae_meV_per_atom', 'mean')]:.2f} | {r[('forces_mae_meV_per_A', 'mean')]:.1f} |"
                     for n, r in curve.iterrows())
    atomic_write_text(out / "report.md", f"# Learning curve ({cfg.dataset})\n\nMean over seeds {cfg.seeds}; "
                      f"test set of {cfg.n_test} frames.\n\n| training frames | energy MAE (meV/atom) | force MAE "
                      f"(meV/Å) |\n|---|---|---|\n{rows}\n\n![learning curve](learning_curve.png)\n")
    largest = curve.index.max()
    return {"sizes": list(cfg.sizes), "n_models": len(table),
            "headline": {"forces_mae_meV_per_A_largest": float(curve.loc[largest, ("forces_mae_meV_per_A", "mean")]),
                         "energy_mae_meV_per_atom_largest": float(curve.loc[largest, ("energy_mae_meV_per_atom", "mean")])},
            "curve": {int(n): {"energy_mae_meV_per_atom": float(r[("energy_mae_meV_per_atom", "mean")]),
                               "forces_mae_meV_per_A": float(r[("forces_mae_meV_per_A", "mean")])}
                      for n, r in curve.iterrows()}}
