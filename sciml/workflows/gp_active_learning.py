"""Workflow ``gp_active_learning``: a GP potential grown by uncertainty-driven active learning.

Each job (one per seed) starts from ``n_initial`` labelled frames of a bundled data
set (default: ethanol, GFN2-xTB, 500 K), runs :func:`sciml.gp.active.active_learning`
(GP-driven Langevin MD, label the most uncertain frames with the reference
calculator, refit, repeat) and scores every fit against a held-out set of the
data set. The report writes ``metrics.json``, ``learning_curve.csv``,
``learning_curve.png`` and ``report.md``.

``mode: onthefly`` runs the FLARE-style mode instead (:func:`sciml.gp.active.on_the_fly`) on a
metal: MD with a :class:`~sciml.gp.LocalGPPotential` from the first frame of one trajectory of
the bundled alloy set (``dataset: alloys_emt``, trajectory ``seed``), EMT labels whenever an
atom's local-energy std exceeds ``otf_std_threshold`` times the GP's signal std, test errors on the other frames of that
trajectory after every label (one learning-curve row per label).
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
    mode: str = "frames"  # frames (global GP, refit on MD frames) or onthefly (local GP, FLARE-style, metals)
    otf_steps: int = 200  # onthefly: MD steps
    otf_std_threshold: float = 0.2  # onthefly: label when an atom's local-energy std exceeds this x signal std
    otf_n_add: int = 4  # onthefly: inducing environments added per label
    otf_refit_every: int = 5  # onthefly: all hyperparameters re-optimised every this many labels
    otf_cutoff: float = 4.5  # onthefly: local-environment cutoff (Å)


def demo_config() -> Config:
    """Tiny settings: the whole workflow in well under a minute on one core."""
    return Config(n_initial=8, n_test=30, n_iterations=3, md_steps=30, n_select=3, min_separation=5,
                  max_reference_calls=6, max_iter=15)


def onthefly_demo_config() -> Config:
    """Tiny on-the-fly run on a bundled alloy trajectory (EMT): a few labels in well under a minute."""
    return Config(mode="onthefly", dataset="alloys_emt", reference="emt", otf_steps=8, otf_std_threshold=0.1,
                  max_reference_calls=4, otf_refit_every=2, max_iter=20, otf_cutoff=4.0, timestep_fs=2.0)


def _check_mode(cfg: Config) -> None:
    if cfg.mode not in ("frames", "onthefly"):
        raise ValueError(f"mode must be 'frames' or 'onthefly', got {cfg.mode!r}")


def plan(cfg: Config) -> list[Job]:
    """One job per seed (the seed picks the initial frames and drives MD)."""
    _check_mode(cfg)
    kw = asdict(cfg)
    kw.pop("seeds")
    return [Job(name=f"seed_{s:02d}", fn=run_active_learning, kwargs=dict(kw, seed=s)) for s in cfg.seeds]


def run_active_learning(workdir: Path, seed: int, **kw) -> dict:
    """Job: pick initial and test frames from the data set, run active learning, return the curve."""
    import numpy as np

    from ..datasets import load_pes
    from ..gp.active import active_learning

    cfg = Config(**kw, seeds=[seed])
    if cfg.mode == "onthefly":
        return run_onthefly(workdir, cfg, seed)
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


def run_onthefly(workdir: Path, cfg: Config, seed: int) -> dict:
    """Job (``mode: onthefly``): on-the-fly local GP from the first frame of alloy trajectory ``seed``."""
    from ..datasets import load_alloys
    from ..gp.active import on_the_fly

    if cfg.dataset != "alloys_emt":
        raise ValueError(f"mode onthefly runs on the bundled metal set: dataset must be 'alloys_emt', got {cfg.dataset!r}")
    frames = [a for a in load_alloys() if int(a.info["trajectory"]) == seed]
    if len(frames) < 2:
        raise ValueError(f"alloy trajectory {seed} has {len(frames)} frames in the bundled set (seeds 0-9)")
    start = frames[0].copy()
    start.calc = None
    res = on_the_fly(start, reference=cfg.reference, steps=cfg.otf_steps, std_threshold=cfg.otf_std_threshold,
                     n_add=cfg.otf_n_add, refit_every=cfg.otf_refit_every, max_reference_calls=cfg.max_reference_calls,
                     temperature_K=float(frames[0].info.get("temperature_K", cfg.temperature_K)),
                     timestep_fs=cfg.timestep_fs, gp_params=dict(cutoff=cfg.otf_cutoff, max_iter=cfg.max_iter),
                     test_frames=frames[1:], out=workdir, seed=seed, progress=False)
    lab = res.labels
    curve = dict(iteration=list(range(len(lab))), n_train=lab["n_train"].tolist() if len(lab) else [],
                 test_forces_mae_meV_per_A=lab.get("test_forces_mae_meV_per_A", lab.get("forces_mae_meV_per_A")).tolist()
                 if len(lab) else [],
                 test_energy_mae_meV=lab["test_energy_mae_meV"].tolist() if len(lab) else [],
                 test_forces_coverage_95=[float("nan")] * len(lab),
                 md_max_force_std=lab["max_local_std"].tolist() if len(lab) else [],
                 step=lab["step"].tolist() if len(lab) else [],
                 labelled_forces_mae_meV_per_A=lab["forces_mae_meV_per_A"].tolist() if len(lab) else [])
    return dict(seed=seed, converged=False, reference_calls=res.reference_calls, n_train_final=len(res.frames),
                curve=curve, files=res.files, md_steps=len(res.log))


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
    unc = "max local-energy std at each label (meV)" if cfg.mode == "onthefly" else "max force std in MD (meV/Å)"
    ax[1].set(xlabel="training frames", ylabel=unc, title="model uncertainty")
    if cfg.mode != "onthefly":
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
    method = (f"On-the-fly (FLARE-style) local GP on bundled alloy trajectories: {cfg.otf_steps} MD steps, an EMT "
              f"label whenever an atom's local-energy std exceeds {cfg.otf_std_threshold:g} x the signal std, "
              f"{cfg.otf_n_add} inducing environments added per label; one row per label. "
              if cfg.mode == "onthefly" else "")
    text = f"""# gp_active_learning report

{method}
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

| seed | iteration | training frames | test force MAE (meV/Å) | test energy MAE (meV) | force coverage 95% | {unc} |
|---|---|---|---|---|---|---|
{rows}
"""
    atomic_write_text(out / "report.md", text)
    return metrics
