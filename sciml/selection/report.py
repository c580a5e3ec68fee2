"""Write a selection analysis to a folder: CSV tables, PNG plots, JSON and a Markdown report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sciml._io import atomic_savefig, atomic_write_json, atomic_write_text


def _md_table(df: pd.DataFrame, digits: int = 3) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append("" if np.isnan(v) else (f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _vec_md(df: pd.DataFrame) -> str:
    return _md_table(df[["estimate", "se", "ci_low", "ci_high", "p_value"]].reset_index(names="trait"))


def write_report(result, out: str | Path, surface=None, surface_gradients=None, title: str | None = None,
                 dataset: str | None = None) -> dict:
    """Write tables (CSV), plots (PNG), ``result.json``, ``summary.txt`` and ``report.md``.

    ``surface`` is an optional fitted :class:`~sciml.selection.FitnessSurface` and
    ``surface_gradients`` the ``(beta, gamma)`` pair from its ``average_gradients()``.
    Returns a dict of headline metrics (JSON-able).

    Example
    -------
    >>> write_report(res, "selection_out")    # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = _write_tables(result, out, surface_gradients)
    files += _write_plots(result, out, surface)
    atomic_write_json(out / "result.json", result.to_dict())
    atomic_write_text(out / "summary.txt", result.summary() + "\n")
    files += ["result.json", "summary.txt"]
    md = _markdown(result, files, surface_gradients, title, dataset)
    atomic_write_text(out / "report.md", "\n".join(md))
    files.append("report.md")
    return _headline_metrics(result, files, surface_gradients)


def _write_tables(result, out: Path, surface_gradients) -> list[str]:
    """CSV tables: all estimates (tidy), gamma, canonical analysis, group test, GP surface gradients."""
    tables = {"gradients.csv": (result.table(groups=True), False)}
    if result.gamma is not None:
        tables["gamma.csv"] = (result.gamma, True)
    if result.canonical is not None:
        tables["canonical_eigenvalues.csv"] = (result.canonical.eigenvalues, True)
        tables["canonical_M.csv"] = (result.canonical.M, True)
    if result.group_test is not None:
        tables["group_test.csv"] = (result.group_test, False)
    if surface_gradients is not None:
        sb, sg = surface_gradients
        tables["surface_gradients.csv"] = (pd.concat([sb.reset_index(names="trait_i").assign(trait_j="", type="beta"),
                                                      sg.assign(type="gamma")], ignore_index=True), False)
    for name, (df, index) in tables.items():
        atomic_write_text(out / name, df.to_csv(index=index))
    return list(tables)


def _write_plots(result, out: Path, surface) -> list[str]:
    """PNG figures: gradients, fitness functions, fitness surface and canonical axes (two or more traits)."""
    import matplotlib.pyplot as plt

    from .plots import plot_canonical, plot_fitness_functions, plot_fitness_surface, plot_gradients

    figs = {"gradients.png": lambda: plot_gradients(result),
            "fitness_functions.png": lambda: plot_fitness_functions(result, surface=surface)}
    if len(result.traits) >= 2:
        figs["fitness_surface.png"] = lambda: plot_fitness_surface(result, surface=surface)
        if result.canonical is not None:
            figs["canonical.png"] = lambda: plot_canonical(result)
    for name, make in figs.items():
        fig = make()
        atomic_savefig(fig, out / name)
        plt.close(fig)
    return list(figs)


def _markdown(result, files: list[str], surface_gradients, title: str | None, dataset: str | None) -> list[str]:
    """The lines of ``report.md``: header and notes, then one section per analysis, then the figures."""
    md = _md_header(result, title, dataset)
    md += ["", "## Linear selection gradients (beta)", "", f"Method: {result.methods.get('beta', '')}.", "",
           _vec_md(result.beta), "", "## Selection differentials (S)", "", _vec_md(result.differentials), ""]
    if result.average_gradients is not None:
        md += ["## Average gradients of the GLM fitness function (Janzen & Stern)", "",
               _vec_md(result.average_gradients), ""]
    md += _md_gamma(result) + _md_groups(result) + _md_surface(surface_gradients)
    md += ["## Figures", ""] + [f"![{f}]({f})" for f in files if f.endswith(".png")] + [""]
    return md


def _md_header(result, title: str | None, dataset: str | None) -> list[str]:
    std = {"sd": "standardised to unit variance (SD, n-1)", "mean": "mean-standardised",
           None: "centred, original units"}[result.standardize]
    md = [f"# {title or 'Selection analysis'}", ""]
    if dataset:
        md += [f"Data: `{dataset}`.", ""]
    md += [f"Lande-Arnold analysis of **{result.fitness}** ({result.fitness_type} fitness) on "
           f"{len(result.traits)} traits, {std}; n = {result.n}"
           + (f", relative fitness within groups of `{result.group_col}`" if result.group_col else "") + ".",
           f"Bootstrap replicates: {result.bootstrap}; permutations: {result.permutations}.", ""]
    return md + [f"- Note: {note}" for note in result.notes]


def _md_gamma(result) -> list[str]:
    md = []
    if result.gamma is not None:
        md += ["## Quadratic selection gradients (gamma, diagonal doubled)", "",
               f"Method: {result.methods.get('gamma', '')}.", "",
               _md_table(result.gamma.reset_index(names="trait")), "", "p-values:", "",
               _md_table(result.gamma_p.reset_index(names="trait")), ""]
    if result.canonical is not None:
        ev = result.canonical.eigenvalues
        md += ["## Canonical analysis of gamma", "", f"Method: {ev['method'].iloc[0]}.", "",
               _md_table(ev[["estimate", "se", "ci_low", "ci_high", "p_value"]].reset_index(names="axis")), "",
               "Eigenvectors (columns):", "", _md_table(result.canonical.M.reset_index(names="trait")), ""]
    return md


def _md_groups(result) -> list[str]:
    if result.group_test is None:
        return []
    md = [f"## Do gradients differ between groups of `{result.group_col}`?", "", _md_table(result.group_test), ""]
    for g, r in result.groups.items():
        md += [f"### {result.group_col} = {g} (n = {r.n})", "", _vec_md(r.beta), ""]
        md += [f"- Note: {note}" for note in r.notes] + ([""] if r.notes else [])
    return md


def _md_surface(surface_gradients) -> list[str]:
    if surface_gradients is None:
        return []
    sb, sg = surface_gradients
    return ["## Nonparametric fitness surface (Gaussian process)", "",
            "Average gradients beta = E[dW/dz]/E[W] and gamma = E[d2W/dzdz']/E[W] by autograd; "
            "posterior mean, SD and 95% posterior interval.", "",
            _md_table(sb.reset_index(names="trait")), "", _md_table(sg), ""]


def _headline_metrics(result, files: list[str], surface_gradients) -> dict:
    metrics = {"n": result.n, "fitness": result.fitness, "fitness_type": result.fitness_type,
               "traits": result.traits,
               "beta": result.beta["estimate"].to_dict(), "beta_p": result.beta["p_value"].to_dict(),
               "files": files}
    if result.gamma is not None:
        metrics["gamma_diag"] = dict(zip(result.traits, np.diag(result.gamma.to_numpy()).tolist()))
        metrics["canonical_eigenvalues"] = result.canonical.eigenvalues["estimate"].tolist()
    if result.groups:
        metrics["groups"] = {str(g): r.beta["estimate"].to_dict() for g, r in result.groups.items()}
    if result.group_test is not None:
        metrics["group_test_p"] = dict(zip(result.group_test["gradients"], result.group_test["p_value"]))
    if surface_gradients is not None:
        metrics["surface_beta"] = surface_gradients[0]["estimate"].to_dict()
    return metrics


# --------------------------------------------------------------------------------------------
# Whole analysis as one job (used by the ``selection_report`` workflow)
# --------------------------------------------------------------------------------------------
def load_table(data: str) -> "pd.DataFrame":
    """``"bumpus"`` -> :func:`sciml.datasets.load_bumpus`; otherwise read a CSV file."""
    if data == "bumpus":
        from sciml.datasets import load_bumpus

        return load_bumpus()
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"data {data!r} is neither 'bumpus' nor an existing CSV file")
    return pd.read_csv(path)


def run_analysis(data: str, fitness: str, traits: list[str], fitness_type: str = "continuous",
                 standardize: str | None = "sd", groups: str | None = None, bootstrap: int = 0,
                 permutations: int = 0, seed: int = 0, quadratic: bool = True, surface: bool = True,
                 surface_iter: int = 150, surface_samples: int = 200, *, workdir: str | Path) -> dict:
    """Load ``data``, run :func:`~sciml.selection.lande_arnold` (+ GP fitness surface) and write
    the full report into ``workdir/report``. Returns the headline metrics and the report folder.

    Example
    -------
    >>> run_analysis("bumpus", "survived", ["weight_g", "total_length_mm"], "binary",
    ...              workdir="out")                                    # doctest: +SKIP
    """
    import warnings

    from .analysis import lande_arnold

    df = load_table(data)
    std = None if standardize in (None, "none", "None", "") else standardize
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lande_arnold(df, fitness, list(traits), fitness_type=fitness_type, standardize=std,
                           bootstrap=bootstrap, permutations=permutations, groups=groups or None, seed=seed,
                           quadratic=quadratic, progress=False)
    surf = grads = None
    if surface:
        from .surfaces import fitness_surface

        surf = fitness_surface(res, n_iter=surface_iter, seed=seed, progress=False)
        grads = surf.average_gradients(n_samples=surface_samples, seed=seed)
    out = Path(workdir) / "report"
    metrics = write_report(res, out, surface=surf, surface_gradients=grads,
                           title=f"Selection analysis of {data}", dataset=data)
    metrics["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    metrics["report_dir"] = str(out)
    return metrics


def collect_report(result: dict, out: str | Path) -> dict:
    """Copy the files of a :func:`run_analysis` job into ``out`` (atomically) and write
    ``metrics.json``; returns the metrics."""
    from sciml._io import atomic_write

    out = Path(out)
    src = Path(result["report_dir"])
    for name in result.get("files", []):
        with atomic_write(out / name, "wb") as fh:
            fh.write((src / name).read_bytes())
    metrics = {k: v for k, v in result.items() if k != "report_dir"}
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
