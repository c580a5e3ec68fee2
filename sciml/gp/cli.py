"""``sciml gp train|eval`` commands (heavy imports happen inside the commands)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _read_training(train: Path, n_train: Optional[int]):
    from sciml.atoms import read_frames

    frames = read_frames(train)
    if n_train is not None:
        if n_train < 2:
            raise typer.BadParameter(f"--n-train must be at least 2, got {n_train}")
        if n_train > len(frames):
            raise typer.BadParameter(f"--n-train {n_train} but {str(train)!r} holds only {len(frames)} frames")
        frames = frames[:n_train]
    return frames


def _summary(model, out: Path, calibration) -> dict:
    return dict(
        model=str(out), n_train=model.n_train_, kernel=model.kernel, n_permutations=len(model.permutations_),
        solver=model.solver_, lengthscale=model.lengthscale_, lengthscales=[float(v) for v in model.lengthscales_],
        length_scales=model.length_scales, descriptor_power=model.descriptor_power, n_tune=model.n_tune,
        variance_fractions=[float(v) for v in model.variance_fractions_], group_lengthscales=None if model.group_lengthscales_ is None else
        dict(zip(model.length_scale_groups_, (float(v) for v in model.group_lengthscales_))),
        signal_std_eV=model.signal_std_, energy_noise_eV=model.energy_noise_,
        force_noise_eV_per_A=model.force_noise_, mean_energy_eV=model.mean_energy_, nlml=model.nlml_,
        converged=model.converged_, fit_time_s=model.fit_time_, tune_time_s=model.tune_time_,
        calibration=calibration, solver_info=getattr(model, "solver_info_", None),
        laplace_std_err=None if model.laplace_ is None else
        {k: float(v) for k, v in model.laplace_.table()["std_err"].items()},
    )


# Over 100 lines with a reason: the declarations of the gp commands and their options (typer reads them
# from the signatures), not logic; each command body calls the library in a few lines.
def register(app: typer.Typer) -> None:
    """Add the ``gp`` command group to the root ``sciml`` app."""
    gp = typer.Typer(help="Gaussian-process energy surfaces (energies + forces, marginal-likelihood hyperparameters).",
                     no_args_is_help=True)

    @gp.command("train")
    def train(
        train: Path = typer.Option(..., "--train", help="Training frames (extxyz or ASE .db) with energy and forces."),
        out: Path = typer.Option(..., "--out", help="Where to save the model (torch file)."),
        valid: Optional[Path] = typer.Option(
            None, "--valid", help="Held-out labelled frames (not training frames): the predicted stds are "
            "calibrated to 95% coverage on them."),
        kind: str = typer.Option("global", "--kind", help="global (one molecule, exact/CG GP) or local."),
        n_train: Optional[int] = typer.Option(None, "--n-train", help="Use the first N frames (default: all)."),
        kernel: str = typer.Option("matern52", "--kernel", help="matern52 or rbf."),
        seed: int = typer.Option(0, "--seed", help="Seed of the hyperparameter-tuning subset."),
        n_tune: Optional[int] = typer.Option(None, "--n-tune", help="Frames used to fit the hyperparameters "
                                             "(default: GPPotential's)."),
        symmetry: str = typer.Option("auto", "--symmetry", help="auto, on or off (permutations of identical atoms)."),
        n_scales: Optional[int] = typer.Option(None, "--n-scales", help="Kernel components with their own "
                                               "length-scale (default: GPPotential's)."),
        descriptor_power: Optional[float] = typer.Option(
            None, "--descriptor-power", help="Exponent p of the descriptor r^-p (default: GPPotential's)."),
        length_scales: Optional[str] = typer.Option(
            None, "--length-scales", help="shared (one length-scale), pair (one per element pair, ARD) or orbit "
            "(default: GPPotential's)."),
        solver: str = typer.Option("auto", "--solver", help="auto, cholesky or cg."),
        max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Memory budget, e.g. 12GB "
                                                 "(default: half the machine's memory)."),
        calibrate: Optional[Path] = typer.Option(None, "--calibrate", hidden=True, help="Same as --valid."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
        n_sparse: int = typer.Option(1000, "--n-sparse", help="--kind local: inducing environments."),
        cutoff: float = typer.Option(5.0, "--cutoff", help="--kind local: environment cutoff (Å)."),
        descriptor: str = typer.Option("soap", "--descriptor", help="--kind local: soap (default) or radial "
                                       "(unnormalised species-resolved radial densities; the choice for metals)."),
    ) -> None:
        """Fit a GP potential and save it; prints a JSON summary (hyperparameters, Laplace errors, fit time)."""
        if kind not in ("global", "local"):
            raise typer.BadParameter(f"--kind must be global or local, got {kind!r}")
        if kind == "local":
            from sciml.gp.local_cli import train_local

            try:
                summary = train_local(train, out, n_train, n_sparse, cutoff,
                                      valid if valid is not None else calibrate, seed, quiet, descriptor)
            except ValueError as err:
                raise typer.BadParameter(str(err)) from err
            typer.echo(json.dumps(summary, indent=2))
            return
        from sciml.atoms import read_frames
        from sciml.gp.global_gp import GPPotential
        if kernel not in ("matern52", "rbf"):
            raise typer.BadParameter(f"--kernel must be matern52 or rbf, got {kernel!r}")
        sym = {"auto": "auto", "on": True, "off": False}.get(symmetry)
        if sym is None:
            raise typer.BadParameter(f"--symmetry must be auto, on or off, got {symmetry!r}")
        if solver not in ("auto", "cholesky", "cg"):
            raise typer.BadParameter(f"--solver must be auto, cholesky or cg, got {solver!r}")
        if valid is not None and calibrate is not None and valid != calibrate:
            raise typer.BadParameter("give the held-out frames once, with --valid")
        valid = valid if valid is not None else calibrate
        frames = _read_training(train, n_train)
        valid_frames = read_frames(valid) if valid is not None else None  # read (and validated) before the fit
        if valid_frames is not None:
            import numpy as np

            from sciml.gp.data import shared_configurations

            shared = shared_configurations(np.stack([a.positions for a in valid_frames]),
                                           np.stack([a.positions for a in frames])) if all(
                len(a) == len(frames[0]) for a in valid_frames) else []
            if shared:
                raise typer.BadParameter(f"--valid frames {shared[:5]} are training configurations; calibrate on "
                                         "held-out data")
        from sciml.gp.pair_groups import LENGTH_SCALE_KINDS

        if length_scales is not None and length_scales not in LENGTH_SCALE_KINDS:
            raise typer.BadParameter(f"--length-scales must be one of {', '.join(LENGTH_SCALE_KINDS)}, got "
                                     f"{length_scales!r}")
        extra = {k: v for k, v in dict(length_scales=length_scales, n_tune=n_tune, n_scales=n_scales,
                                       descriptor_power=descriptor_power).items() if v is not None}
        model = GPPotential(kernel=kernel, seed=seed, symmetry=sym, solver=solver,
                            max_memory=max_memory, progress=not quiet, **extra).fit(frames)
        calibration = model.calibrate(valid_frames) if valid_frames is not None else None
        model.save(out)
        typer.echo(json.dumps(_summary(model, out, calibration), indent=2))

    @gp.command("eval")
    def evaluate_cmd(
        model: Path = typer.Option(..., "--model", help="Model saved by `sciml gp train` (either kind)."),
        data: Path = typer.Option(..., "--data", help="Labelled test frames (extxyz or ASE .db)."),
        as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
        std_frames: Optional[int] = typer.Option(
            100, "--std-frames", help="Test frames used for the uncertainty metrics (cost grows with N^2 each); "
            "-1 for all."),
    ) -> None:
        """Test-set errors (meV, meV/Å), mean predicted force std, calibrated and raw 95%-interval coverage."""
        from sciml.atoms import read_frames
        from sciml.gp.evaluation import evaluate
        from sciml.gp.loading import load_model

        gp_model = load_model(model)
        frames = read_frames(data)
        k = None if (std_frames is None or std_frames < 0) else std_frames
        metrics = gp_model.evaluate(frames, max_std_structures=k) if hasattr(gp_model, "evaluate") else \
            evaluate(gp_model, frames, max_std_structures=k)
        if as_json:
            typer.echo(json.dumps(metrics, indent=2))
        else:
            for key, v in metrics.items():
                typer.echo(f"{key:34s} {v}")

    app.add_typer(gp, name="gp")
