"""``sciml gp train|eval`` commands (heavy imports happen inside the commands)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``gp`` command group to the root ``sciml`` app."""
    gp = typer.Typer(help="Gaussian-process energy surfaces (energies + forces, marginal-likelihood hyperparameters).",
                     no_args_is_help=True)

    @gp.command("train")
    def train(
        train: Path = typer.Option(..., "--train", help="Training frames (extxyz or ASE .db) with energy and forces."),
        out: Path = typer.Option(..., "--out", help="Where to save the model (torch file)."),
        n_train: Optional[int] = typer.Option(None, "--n-train", help="Use the first N frames (default: all)."),
        kernel: str = typer.Option("matern52", "--kernel", help="matern52 or rbf."),
        seed: int = typer.Option(0, "--seed", help="Seed of the hyperparameter-tuning subset."),
        n_tune: int = typer.Option(25, "--n-tune", help="Frames used to fit the hyperparameters."),
        symmetry: str = typer.Option("auto", "--symmetry", help="auto, on or off (permutations of identical atoms)."),
        n_scales: int = typer.Option(1, "--n-scales", help="Kernel components with their own length-scale."),
        calibrate: Optional[Path] = typer.Option(
            None, "--calibrate", help="Held-out labelled frames: rescale predicted stds to 95% coverage on them."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
        kind: str = typer.Option("global", "--kind", help="global (one molecule) or local (materials: "
                                 "sparse GP on atomic environments)."),
        n_sparse: int = typer.Option(1000, "--n-sparse", help="--kind local: inducing environments."),
        cutoff: float = typer.Option(5.0, "--cutoff", help="--kind local: environment cutoff (Å)."),
        valid: Optional[Path] = typer.Option(
            None, "--valid", help="--kind local: held-out labelled frames; the stds are calibrated on them."),
    ) -> None:
        """Fit a GP potential and save it; prints a JSON summary (hyperparameters, Laplace errors, fit time)."""
        if kind == "local":
            from sciml.gp.local_cli import train_local

            try:
                summary = train_local(train, out, n_train, n_sparse, cutoff, valid, seed, quiet)
            except ValueError as err:
                raise typer.BadParameter(str(err)) from err
            typer.echo(json.dumps(summary, indent=2))
            return
        if kind != "global":
            raise typer.BadParameter(f"--kind must be global or local, got {kind!r}")
        from sciml.atoms import read_frames
        from sciml.gp.model import GPPotential

        if kernel not in ("matern52", "rbf"):
            raise typer.BadParameter(f"--kernel must be matern52 or rbf, got {kernel!r}")
        sym = {"auto": "auto", "on": True, "off": False}.get(symmetry)
        if sym is None:
            raise typer.BadParameter(f"--symmetry must be auto, on or off, got {symmetry!r}")
        frames = read_frames(train)
        if n_train is not None:
            if n_train < 2:
                raise typer.BadParameter(f"--n-train must be at least 2, got {n_train}")
            if n_train > len(frames):
                raise typer.BadParameter(f"--n-train {n_train} but {str(train)!r} holds only {len(frames)} frames")
            frames = frames[:n_train]
        model = GPPotential(kernel=kernel, seed=seed, n_tune=n_tune, symmetry=sym, n_scales=n_scales,
                            progress=not quiet).fit(frames)
        calibration = model.calibrate(read_frames(calibrate)) if calibrate is not None else None
        model.save(out)
        summary = dict(
            model=str(out), n_train=model.n_train_, kernel=kernel, n_permutations=len(model.permutations_),
            lengthscale=model.lengthscale_, lengthscales=[float(v) for v in model.lengthscales_],
            signal_std_eV=model.signal_std_, energy_noise_eV=model.energy_noise_,
            force_noise_eV_per_A=model.force_noise_, mean_energy_eV=model.mean_energy_, nlml=model.nlml_,
            fit_time_s=model.fit_time_, tune_time_s=model.tune_time_, calibration=calibration,
            laplace_std_err=None if model.laplace_ is None else
            {k: float(v) for k, v in model.laplace_.table()["std_err"].items()},
        )
        typer.echo(json.dumps(summary, indent=2))

    @gp.command("eval")
    def evaluate_cmd(
        model: Path = typer.Option(..., "--model", help="Model saved by `sciml gp train`."),
        data: Path = typer.Option(..., "--data", help="Labelled test frames (extxyz or ASE .db)."),
        as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
        std_frames: Optional[int] = typer.Option(
            100, "--std-frames", help="Test frames used for the uncertainty metrics (cost grows with N^2 each); "
            "-1 for all."),
    ) -> None:
        """Test-set errors (meV, meV/Å), mean predicted force std and 95%-interval coverage."""
        from sciml.gp.local_cli import eval_local, is_local_model

        if is_local_model(model):
            metrics = eval_local(model, data, std_frames)
            typer.echo(json.dumps(metrics, indent=2) if as_json else
                       "\n".join(f"{k:34s} {v}" for k, v in metrics.items()))
            return
        from sciml.atoms import read_frames
        from sciml.gp.model import GPPotential, evaluate

        gp_model = GPPotential.load(model)
        frames = read_frames(data)
        metrics = evaluate(gp_model, frames, max_std_structures=None if (std_frames is None or std_frames < 0)
                           else std_frames)
        if as_json:
            typer.echo(json.dumps(metrics, indent=2))
        else:
            for k, v in metrics.items():
                typer.echo(f"{k:34s} {v}")

    app.add_typer(gp, name="gp")
