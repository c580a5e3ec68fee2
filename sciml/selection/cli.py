"""``sciml selection``: Lande--Arnold analysis of a CSV file from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _variances(text: str | None) -> dict[str, float] | None:
    """``"mass=0.64,wing=0.2"`` -> ``{"mass": 0.64, "wing": 0.2}`` (errors name the bad entry)."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--measurement-error entry {item!r}: expected TRAIT=VARIANCE, e.g. mass=0.64") from None
        if not sep or not name.strip():
            raise ValueError(f"--measurement-error entry {item!r}: expected TRAIT=VARIANCE, e.g. mass=0.64")
    return out


def register(app: typer.Typer) -> None:
    """Add the ``selection`` command to the root ``sciml`` app."""

    @app.command("selection")
    def selection(
        data: Path = typer.Argument(..., help="CSV file, one row per individual (per measurement with --individual)."),
        fitness: Optional[str] = typer.Option(None, "--fitness", help="Fitness column (absolute fitness); default "
                                              "with --episodes: the product of the components."),
        traits: str = typer.Option(..., "--traits", help="Comma-separated trait columns, e.g. A,B,C."),
        fitness_type: str = typer.Option("continuous", "--fitness-type", help="continuous | binary | count."),
        standardize: str = typer.Option("sd", "--standardize", help="sd | mean | none."),
        bootstrap: int = typer.Option(0, "--bootstrap", help="Bootstrap replicates (0: analytic SEs)."),
        permutations: int = typer.Option(0, "--permutations", help="Permutations for p-values (0: analytic)."),
        groups: Optional[str] = typer.Option(None, "--groups", help="Group column (e.g. sex): per-group analyses."),
        random_effects: Optional[str] = typer.Option(None, "--random-effects", help="Grouping columns of random "
                                                     "effects, outermost first, nested (e.g. year or site,brood)."),
        random_slopes: Optional[str] = typer.Option(None, "--random-slopes", help="Traits whose gradients vary among "
                                                    "levels of the first random effect (fluctuating selection)."),
        episodes: Optional[str] = typer.Option(None, "--episodes", help="Fitness components in order, e.g. "
                                               "survived,mated,eggs: Arnold-Wade episodes of selection."),
        measurement_error: Optional[str] = typer.Option(None, "--measurement-error", help="Error variance of one "
                                                        "measurement, e.g. mass=0.64,wing=0.2."),
        individual: Optional[str] = typer.Option(None, "--individual", help="Individual column of repeated "
                                                 "measures (long format): measurement error estimated."),
        missing: str = typer.Option("drop", "--missing", help="drop | impute (multiple imputation) | raise."),
        imputations: int = typer.Option(20, "--imputations", help="Imputed data sets with --missing impute."),
        check: bool = typer.Option(False, "--check", help="Diagnostics with advice (collinearity, influence, ...)."),
        linear_only: bool = typer.Option(False, "--linear-only", help="Skip the quadratic model (gamma)."),
        ci: str = typer.Option("bca", "--ci", help="Bootstrap interval: bca | percentile."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
        report: Optional[Path] = typer.Option(None, "--report", help="Write tables, plots and report.md to DIR."),
        surface: bool = typer.Option(False, "--surface", help="With --report: fit a GP fitness surface too."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    ) -> None:
        """Lande-Arnold selection gradients (beta, gamma), differentials, canonical analysis; random
        effects, measurement error, imputation, episodes of selection and diagnostics.

        Example: sciml selection birds.csv --fitness survived --traits weight_g,total_length_mm
        --fitness-type binary --bootstrap 2000 --permutations 2000 --groups sex --report out/

        Example: sciml selection field.csv --traits mass,wing --fitness-type count
        --random-effects year --random-slopes mass --episodes survived,mated,eggs --check --report out/
        """
        if json_out and report is not None:
            typer.echo("Error: give either --json or --report, not both", err=True)
            raise typer.Exit(2)
        if not data.is_file():
            typer.echo(f"Error: data file {str(data)!r} not found", err=True)
            raise typer.Exit(2)
        std = None if standardize.lower() in ("none", "null", "") else standardize
        try:
            res, ep, diag = _analyse_csv(
                data, fitness, _split(traits), dict(
                    fitness_type=fitness_type, standardize=std, bootstrap=bootstrap, permutations=permutations,
                    groups=groups, seed=seed, quadratic=False if linear_only else None, ci_method=ci,
                    progress=not quiet, random_effects=_split(random_effects), random_slopes=_split(random_slopes),
                    measurement_error=_variances(measurement_error), individual=individual, missing=missing,
                    imputations=imputations), _split(episodes), check)
        except (ValueError, TypeError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from exc
        _emit(res, ep, diag, json_out, report, surface, quiet, seed, data)


def _analyse_csv(data: Path, fitness: str | None, traits: list[str], options: dict, episodes: list[str] | None,
                 check: bool):
    """Read the CSV and run lande_arnold (+ episodes, + diagnostics); warnings echoed once each."""
    import warnings

    import pandas as pd

    from sciml.selection import lande_arnold, selection_episodes
    from sciml.selection.study import with_total_fitness

    df = pd.read_csv(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df, fit_col = with_total_fitness(df, fitness, episodes)
        res = lande_arnold(df, fit_col, traits, **options)
        ep = (selection_episodes(df, episodes, traits, standardize=options["standardize"],
                                 bootstrap=options["bootstrap"], seed=options["seed"], ci_method=options["ci_method"],
                                 progress=options["progress"]) if episodes else None)
        diag = res.check() if check else None
    seen = set()
    for w in caught:
        if issubclass(w.category, UserWarning) and str(w.message) not in seen:
            seen.add(str(w.message))
            typer.echo(f"warning: {w.message}", err=True)
    return res, ep, diag


def _emit(res, ep, diag, json_out: bool, report: Path | None, surface: bool, quiet: bool, seed: int,
          data: Path) -> None:
    """Print JSON or the summaries, or write the report folder."""
    import json

    if json_out:
        doc = res.to_dict()
        if ep is not None:
            doc["episodes"] = ep.to_dict()
        if diag is not None:
            doc["diagnostics"] = diag.table.to_dict(orient="records")
        typer.echo(json.dumps(_clean(doc), indent=2))
        return
    if report is not None:
        from sciml.selection.report import write_report

        surf = grads = None
        if surface:
            from sciml.selection.surfaces import fitness_surface

            surf = fitness_surface(res, progress=not quiet)
            grads = surf.average_gradients(n_samples=200, seed=seed)
        write_report(res, report, surface=surf, surface_gradients=grads, dataset=str(data), episodes=ep,
                     diagnostics=diag)
        typer.echo(f"report written to {report}/report.md")
        return
    typer.echo(res.summary())
    if ep is not None:
        typer.echo("\n" + ep.summary())
    if diag is not None:
        typer.echo("\n" + str(diag))


def _clean(o):
    import math

    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if hasattr(o, "item") and not isinstance(o, (str, bytes)):
        try:
            return _clean(o.item())
        except (ValueError, AttributeError):
            pass
    return o
