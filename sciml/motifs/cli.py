"""``sciml motifs ...`` commands (heavy imports happen inside the commands)."""
from __future__ import annotations

from pathlib import Path
import typer


def register(app: typer.Typer) -> None:
    """Add the ``motifs`` command group to the root ``sciml`` app."""
    sub = typer.Typer(help="Network motifs of directed graphs and trained RNN circuits.", no_args_is_help=True)

    @sub.command("census")
    def census(
        graph: Path = typer.Argument(..., help="GRAPH.edgelist (u v [weight] per line), .graphml, or .npy weight matrix"),
        size: int = typer.Option(3, "--size", help="motif size: 3 or 4"),
        null: str = typer.Option("mutual", "--null", help="null model: mutual | degree | er"),
        n_random: int = typer.Option(0, "--n-random", help="number of random graphs (0: counts only)"),
        seed: int = typer.Option(0, "--seed", help="random seed"),
        threshold: float = typer.Option(0.0, "--threshold", help=".npy only: threshold passed to weights_to_graph"),
        mode: str = typer.Option("absolute", "--mode", help=".npy only: absolute | quantile | density"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
        engine: str = typer.Option("auto", "--engine",
                                   help="auto | numba | numpy (census and null-model kernels; recorded in the output)"),
    ) -> None:
        """Count 3- or 4-node motifs of a directed graph (and their Z-scores with --n-random)."""
        import json

        import pandas as pd

        from .census import motif_census, motif_name
        from .engine import resolve_engine
        from .graphs import read_graph
        from .significance import motif_significance

        try:
            used = resolve_engine(engine)
            G = read_graph(graph, threshold=threshold, mode=mode)
            if n_random > 0:
                df = motif_significance(G, size=size, null=null, n_random=n_random, seed=seed, engine=used)
            else:
                counts = motif_census(G, size=size, engine=used)
                df = pd.DataFrame({"count": list(counts.values()), "name": [motif_name(k) for k in counts]},
                                  index=pd.Index(list(counts), name="motif"))
        except (ValueError, TypeError, ImportError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        if as_json:
            payload = {
                "graph": str(graph), "n_nodes": G.number_of_nodes(), "n_edges": G.number_of_edges(), "size": size,
                "null": null if n_random else None, "n_random": n_random, "seed": seed if n_random else None,
                "engine": used,
                "motifs": {str(k): {c: (None if isinstance(v, float) and v != v else v) for c, v in row.items()}
                           for k, row in df.to_dict(orient="index").items()},
            }
            typer.echo(json.dumps(payload, indent=2, default=float))
        else:
            typer.echo(f"{graph}: {G.number_of_nodes()} nodes, {G.number_of_edges()} edges (engine: {used})")
            with pd.option_context("display.max_rows", 300, "display.width", 160):
                typer.echo(df.to_string(float_format=lambda v: f"{v:.4g}"))

    @sub.command("study")
    def study(
        config: Path = typer.Option(..., "--config", help="YAML file with StudyConfig fields"),
        out: Path = typer.Option(..., "--out", help="output folder"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
    ) -> None:
        """Train RNNs over several seeds and compare motifs before vs after training."""
        from .study import compare_training, load_config

        try:
            cfg = load_config(config)
        except (ValueError, TypeError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        cmp = compare_training(cfg, out=out, progress=not quiet)
        typer.echo(cmp.summary())
        typer.echo(f"report: {out / 'report.md'}")

    app.add_typer(sub, name="motifs")
