"""Workflow ``gp_active_learning``: a GP potential grown by uncertainty-driven active learning.

Each job (one per seed) starts from ``n_initial`` labelled frames of a bundled data
set (default: ethanol, GFN2-xTB, 500 K), runs :func:`sciml.gp.active.active_learning`
(GP-driven Langevin MD, label the most uncertain frames with the reference
calculator, refit, repeat) and scores every fit against a held-out set of the
data set. The report writes ``metrics.json``, ``learning_curve.csv``,
``learning_curve.png`` and ``report.md``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .jobs import Job


@dataclass
class Config:
    """Settings of the gp_active_learning workflow (eV, Å, fs, K)."""

    dataset: str = "ethanol_gfn2_500K"  # bundled PES set: initial frames + held-out test frames
    reference: str = "gfn2-xtb"  # reference calculator for newly selected frames (same method as the data set)
    n_initial: int = 10
    n_test: int = 200
    n_iterations: int = 10
    md_steps: int = 100
    n_select: int = 5
    min_separation: int = 10
    target_force_std: float = 0.1
    max_reference_calls: int = 100
    temperature_K: float = 500.0
    timestep_fs: float = 0.5
    kernel: str = "matern52"
    n_tune: int = 25
    max_iter: int = 50
    seeds: list[int] = field(default_factory=lambda: [0])


def demo_config() -> Config:
    """Tiny settings: the whole workflow in well under a minute on one core."""
    return Config(n_initial=8, n_test=30, n_iterations=3, md_steps=30, n_select=3, min_separation=5,
                  max_reference_calls=6, max_iter=15)


def plan(cfg: Config) -> list[Job]:
    """One job per seed (the seed picks the initial frames and drives MD)."""
    kw = asdict(cfg)
    kw.pop("seeds")
    return [Job(name=f"seed_{s:02d}", fn=run_active_learning, kwargs=dict(kw, seed=s)) for s in cfg.seeds]


def run_active_learning(workdir: Path, seed: int, **kw) -> dict:
    """Job: pick initial and test frames from the data set, run active learning, return the curve."""
    import numpy as np

    from ..datasets import load_pes
    from ..gp.active import active_learning

    cfg = Config(**kw, seeds=[seed])
    frames = load_pes(cfg.dataset)
    if cfg.n_initial + cfg.n_test > len(frames):
        raise ValueError(f"n_initial + n_test = {cfg.n_initial + cfg.n_test} exceeds the {len(frames)} frames "
                         f"of {cfg.dataset!r}")
    perm = np.random.default_rng(seed).permutation(len(frames))
    initial = [frames[int(k)] for k in perm[: cfg.n_initial]]
    test = [frames[int(k)] for k in perm[len(frames) - cfg.n_test:]]
    res = active_learning(
        initial, reference=cfg.reference, test_frames=test, n_iterations=cfg.n_iterations, md_steps=cfg.md_steps,
        n_select=cfg.n_select, min_separation=cfg.min_separation, target_force_std=cfg.target_force_std,
        max_reference_calls=cfg.max_reference_calls, temperature_K=cfg.temperature_K, timestep_fs=cfg.timestep_fs,
        gp_params=dict(kernel=cfg.kernel, n_tune=cfg.n_tune, max_iter=cfg.max_iter), out=workdir, seed=seed,
        progress=False)
    return dict(seed=seed, converged=res.converged, reference_calls=res.reference_calls,
                n_train_final=len(res.frames), curve=res.curve.to_dict(orient="list"), files=res.files)


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Write metrics.json, learning_curve.csv, learning_curve.png and report.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from .._io import atomic_savefig, atomic_write_json, atomic_write_text

    out = Path(out)
    curves = []
    for name, r in sorted(results.items()):
        c = pd.DataFrame(r["curve"])
        c.insert(0, "seed", r["seed"])
        curves.append(c)
    curve = pd.concat(curves, ignore_index=True)
    atomic_write_text(out / "learning_curve.csv", curve.to_csv(index=False))
    final = curve.groupby("seed").tail(1)
    first = curve.groupby("seed").head(1)
    metrics = {
        "n_seeds": len(results),
        "n_initial": cfg.n_initial,
        "n_test": cfg.n_test,
        "n_train_final_mean": float(final["n_train"].mean()),
        "reference_calls_mean": float(sum(r["reference_calls"] for r in results.values()) / len(results)),
        "converged_fraction": float(sum(bool(r["converged"]) for r in results.values()) / len(results)),
        "initial_forces_mae_meV_per_A": float(first["test_forces_mae_meV_per_A"].mean()),
        "final_forces_mae_meV_per_A": float(final["test_forces_mae_meV_per_A"].mean()),
        "final_energy_mae_meV": float(final["test_energy_mae_meV"].mean()),
        "final_forces_coverage_95": float(final["test_forces_coverage_95"].mean()),
        "final_md_max_force_std": float(final["md_max_force_std"].mean()),
    }
    atomic_write_json(out / "metrics.json", metrics)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
    for seed, c in curve.groupby("seed"):
        ax[0].plot(c["n_train"], c["test_forces_mae_meV_per_A"], "o-", label=f"seed {seed}")
        ax[1].plot(c["n_train"], 1000 * c["md_max_force_std"], "o-", label=f"seed {seed}")
    ax[0].set(xlabel="training frames", ylabel="test force MAE (meV/Å)", title="learning curve")
    ax[1].set(xlabel="training frames", ylabel="max force std in MD (meV/Å)", title="model uncertainty")
    ax[1].axhline(1000 * cfg.target_force_std, color="k", ls="--", lw=0.7)
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, out / "learning_curve.png")
    plt.close(fig)
    rows = "\n".join(
        f"| {int(r.seed)} | {int(r.iteration)} | {int(r.n_train)} | {r.test_forces_mae_meV_per_A:.1f} | "
        f"{r.test_energy_mae_meV:.2f} | {r.test_forces_coverage_95:.3f} | {1000 * r.md_max_force_std:.0f} |"
        for r in curve.itertuples())
    text = f"""# gp_active_learning report

Data: `{cfg.dataset}`; start from {cfg.n_initial} labelled frames, held-out test set of {cfg.n_test} frames.
Each iteration: fit a {cfg.kernel} GP on energies + forces (hyperparameters by the exact marginal likelihood),
run {cfg.md_steps} steps of Langevin MD at {cfg.temperature_K:g} K with the GP, label the {cfg.n_select} most
uncertain frames with `{cfg.reference}`, refit. Stop at a max force std below {cfg.target_force_std:g} eV/Å or
after {cfg.max_reference_calls} reference calls.

Test force MAE: {metrics['initial_forces_mae_meV_per_A']:.1f} meV/Å at the start ->
{metrics['final_forces_mae_meV_per_A']:.1f} meV/Å at the end ({metrics['n_train_final_mean']:.0f} frames,
{metrics['reference_calls_mean']:.0f} reference calls; 95% force-interval coverage
{metrics['final_forces_coverage_95']:.3f}).

![learning curve](learning_curve.png)

| seed | iteration | training frames | test force MAE (meV/Å) | test energy MAE (meV) | force coverage 95% | max force std in MD (meV/Å) |
|---|---|---|---|---|---|---|
{rows}
"""
    atomic_write_text(out / "report.md", text)
    return metrics
