"""``sciml selection``: Lande--Arnold analysis of a CSV file from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``selection`` command to the root ``sciml`` app."""

    @app.command("selection")
    def selection(
        data: Path = typer.Argument(..., help="CSV file, one row per individual."),
        fitness: str = typer.Option(..., "--fitness", help="Fitness column (absolute fitness)."),
        traits: str = typer.Option(..., "--traits", help="Comma-separated trait columns, e.g. A,B,C."),
        fitness_type: str = typer.Option("continuous", "--fitness-type", help="continuous | binary | count."),
        standardize: str = typer.Option("sd", "--standardize", help="sd | mean | none."),
        bootstrap: int = typer.Option(0, "--bootstrap", help="Case-bootstrap replicates (0: analytic SEs)."),
        permutations: int = typer.Option(0, "--permutations", help="Permutations for p-values (0: analytic)."),
        groups: Optional[str] = typer.Option(None, "--groups", help="Group column (e.g. sex): per-group analyses."),
        linear_only: bool = typer.Option(False, "--linear-only", help="Skip the quadratic model (gamma)."),
        ci: str = typer.Option("bca", "--ci", help="Bootstrap interval: bca | percentile."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
        report: Optional[Path] = typer.Option(None, "--report", help="Write tables, plots and report.md to DIR."),
        surface: bool = typer.Option(False, "--surface", help="With --report: fit a GP fitness surface too."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    ) -> None:
        """Lande-Arnold selection gradients (beta, gamma), differentials, canonical analysis.

        Example: sciml selection birds.csv --fitness survived --traits weight_g,total_length_mm
        --fitness-type binary --bootstrap 2000 --permutations 2000 --groups sex --report out/
        """
        import json
        import warnings

        import pandas as pd

        from sciml.selection import lande_arnold

        if json_out and report is not None:
            typer.echo("Error: give either --json or --report, not both", err=True)
            raise typer.Exit(2)
        if not data.is_file():
            typer.echo(f"Error: data file {str(data)!r} not found", err=True)
            raise typer.Exit(2)
        df = pd.read_csv(data)
        std = None if standardize.lower() in ("none", "null", "") else standardize
        trait_list = [t.strip() for t in traits.split(",") if t.strip()]

        def _show(w):
            typer.echo(f"warning: {w.message}", err=True)

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = lande_arnold(df, fitness, trait_list, fitness_type=fitness_type, standardize=std,
                                   bootstrap=bootstrap, permutations=permutations, groups=groups, seed=seed,
                                   quadratic=not linear_only, ci_method=ci, progress=not quiet)
        except (ValueError, TypeError) as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from exc
        seen = set()
        for w in caught:
            if issubclass(w.category, UserWarning) and str(w.message) not in seen:
                seen.add(str(w.message))
                _show(w)
        if json_out:
            typer.echo(json.dumps(_clean(res.to_dict()), indent=2))
            return
        if report is not None:
            from sciml.selection.report import write_report

            surf = grads = None
            if surface:
                from sciml.selection.surfaces import fitness_surface

                surf = fitness_surface(res, progress=not quiet)
                grads = surf.average_gradients(n_samples=200, seed=seed)
            write_report(res, report, surface=surf, surface_gradients=grads, dataset=str(data))
            typer.echo(f"report written to {report}/report.md")
            return
        typer.echo(res.summary())


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
