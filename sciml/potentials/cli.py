"""``sciml potential train|eval|md`` (heavy imports happen inside the commands)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

potential_app = typer.Typer(
    help="E(3)-equivariant neural potentials: train, evaluate, run MD.", no_args_is_help=True
)


def _threads(n: Optional[int]) -> None:
    if n is not None:
        import torch

        if n < 1:
            raise typer.BadParameter(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


@potential_app.command("train")
def train_cmd(
    train: Path = typer.Option(..., "--train", help="Training frames (extxyz or ASE db) with energy and forces."),
    valid: Path = typer.Option(..., "--valid", help="Validation frames."),
    out: Path = typer.Option(..., "--out", help="Model file to write (best EMA weights)."),
    max_time: Optional[float] = typer.Option(None, "--max-time", help="Wall-clock budget in seconds."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig keys (model: {...})."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda if available)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (overrides the config)."),
    max_epochs: Optional[int] = typer.Option(None, "--max-epochs", help="Epoch limit (overrides the config)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float64 (default) or float32."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from OUT's checkpoint if present."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a potential; writes OUT, OUT-stem.ckpt and OUT-stem.metrics.csv. Works under torchrun/srun."""
    _threads(threads)
    from ..atoms import read_frames
    from .train import TrainConfig, train_potential

    try:
        cfg = TrainConfig.from_yaml(config) if config else TrainConfig()
        for key, val in (("max_time", max_time), ("device", device), ("seed", seed), ("max_epochs", max_epochs),
                         ("dtype", dtype)):
            if val is not None:
                setattr(cfg, key, val)
        if quiet:
            cfg.progress = False
        cfg.validate()
        tr = read_frames(train)
        va = read_frames(valid)
        res = train_potential(tr, va, out, cfg, resume=resume)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(json.dumps(res.to_dict(), indent=2, default=float))


@potential_app.command("eval")
def eval_cmd(
    model: Path = typer.Option(..., "--model", help="Model file."),
    data: Path = typer.Option(..., "--data", help="Labelled frames (extxyz or ASE db)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Override the stored precision."),
    batch_size: int = typer.Option(16, "--batch-size"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
) -> None:
    """Energy/force (and stress) errors of MODEL on DATA (meV, meV/atom, meV/Å)."""
    _threads(threads)
    import time

    from ..atoms import read_frames
    from .model import load_model
    from .train import evaluate

    try:
        m = load_model(model, device=device, dtype=dtype)
        frames = read_frames(data)
        t0 = time.perf_counter()
        metrics = evaluate(m, frames, batch_size=batch_size)
        metrics["eval_time_s"] = time.perf_counter() - t0
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            typer.echo(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")


@potential_app.command("md")
def md_cmd(
    model: list[Path] = typer.Option(..., "--model", help="Model file (repeat for a committee)."),
    structure: Path = typer.Option(..., "--structure", help="Start structure (any ASE-readable file)."),
    steps: int = typer.Option(..., "--steps", help="Number of MD steps."),
    dt: float = typer.Option(..., "--dt", help="Time step in fs."),
    out: Path = typer.Option(..., "--out", help="Trajectory (extxyz)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Initial / bath temperature in K."),
    ensemble: str = typer.Option("nve", "--ensemble", help="nve or langevin."),
    friction: float = typer.Option(0.01, "--friction", help="Langevin friction in 1/fs."),
    log: Optional[Path] = typer.Option(None, "--log", help="Energy log CSV (default: OUT-stem.energy.csv)."),
    write_every: int = typer.Option(10, "--write-every", help="Trajectory stride in steps."),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float64 or float32 (default: as stored)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Run ASE MD with the model; writes the trajectory and an energy log; prints a JSON summary."""
    _threads(threads)
    import ase.io

    from .calculator import SciMLCalculator
    from .md import run_md

    try:
        if not structure.exists():
            raise FileNotFoundError(f"structure file not found: {structure}")
        atoms = ase.io.read(str(structure), index=0)
        calc = SciMLCalculator([str(m) for m in model], device=device, dtype=dtype)
        log = log or out.with_name(out.stem + ".energy.csv")
        res = run_md(atoms, calc, steps, dt, temperature_K=temperature, ensemble=ensemble.lower(),
                     friction_per_fs=friction, trajectory=out, log=log, write_every=write_every, seed=seed,
                     progress=not quiet)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    summary = res.summary()
    summary.update({"trajectory": str(out), "log": str(log)})
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    """Add the ``potential`` command group to the root ``sciml`` app."""
    app.add_typer(potential_app, name="potential")
