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
                 dataset: str | None = None, episodes=None, diagnostics=None) -> dict:
    """Write tables (CSV), plots (PNG), ``result.json``, ``summary.txt`` and ``report.md``.

    ``surface`` is an optional fitted :class:`~sciml.selection.FitnessSurface` and
    ``surface_gradients`` the ``(beta, gamma)`` pair from its ``average_gradients()``;
    ``episodes`` an :class:`~sciml.selection.EpisodeResult` and ``diagnostics`` the
    :class:`~sciml.selection.Diagnostics` of ``result.check()``, each reported in its own section.
    Returns a dict of headline metrics (JSON-able).

    Example
    -------
    >>> write_report(res, "selection_out")    # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = _write_tables(result, out, surface_gradients)
    files += _write_extra_tables(result, out, episodes, diagnostics)
    files += _write_plots(result, out, surface, episodes)
    doc = result.to_dict()
    if episodes is not None:
        doc["episodes"] = episodes.to_dict()
    if diagnostics is not None:
        doc["diagnostics"] = diagnostics.table.replace({np.nan: None}).to_dict(orient="records")
    atomic_write_json(out / "result.json", doc)
    text = result.summary() + ("\n\n" + episodes.summary() if episodes is not None else "") \
        + ("\n\n" + str(diagnostics) if diagnostics is not None else "")
    atomic_write_text(out / "summary.txt", text + "\n")
    files += ["result.json", "summary.txt"]
    md = _markdown(result, files, surface_gradients, title, dataset, episodes, diagnostics)
    atomic_write_text(out / "report.md", "\n".join(md))
    files.append("report.md")
    return _headline_metrics(result, files, surface_gradients, episodes, diagnostics)


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


def _write_extra_tables(result, out: Path, episodes, diagnostics) -> list[str]:
    """CSV tables of the random effects, measurement error, imputation, episodes and diagnostics."""
    tables = {}
    for name, df, index in (("variance_components.csv", result.variance_components, False),
                            ("random_effects_test.csv", result.random_effects_test, False),
                            ("blups.csv", result.blups, False),
                            ("repeatability.csv", result.repeatability, True),
                            ("beta_naive.csv", result.beta_naive, True),
                            ("missing_information.csv", result.missing_information, False)):
        if df is not None:
            tables[name] = (df, index)
    if episodes is not None:
        tables["episodes_gradients.csv"] = (episodes.gradients, True)
        tables["episodes_differentials.csv"] = (episodes.differentials, True)
        tables["episodes_opportunity.csv"] = (episodes.opportunity, True)
        tables["episodes_table.csv"] = (episodes.table(), False)
    if diagnostics is not None:
        tables["diagnostics.csv"] = (diagnostics.table, False)
        tables["influence.csv"] = (diagnostics.influence, True)
    for name, (df, index) in tables.items():
        atomic_write_text(out / name, df.to_csv(index=index))
    return list(tables)


def _write_plots(result, out: Path, surface, episodes=None) -> list[str]:
    """PNG figures: gradients, fitness functions, fitness surface and canonical axes (two or more
    traits), per-level gradients (random effects) and episodes."""
    import matplotlib.pyplot as plt

    from .plots import (plot_canonical, plot_episodes, plot_fitness_functions, plot_fitness_surface,
                        plot_gradients, plot_per_level_gradients)

    figs = {"gradients.png": lambda: plot_gradients(result),
            "fitness_functions.png": lambda: plot_fitness_functions(result, surface=surface)}
    if len(result.traits) >= 2:
        figs["fitness_surface.png"] = lambda: plot_fitness_surface(result, surface=surface)
        if result.canonical is not None:
            figs["canonical.png"] = lambda: plot_canonical(result)
    if result.blups is not None:
        figs["per_level_gradients.png"] = lambda: plot_per_level_gradients(result)
    if episodes is not None:
        figs["episodes.png"] = lambda: plot_episodes(episodes)
    for name, make in figs.items():
        fig = make()
        atomic_savefig(fig, out / name)
        plt.close(fig)
    return list(figs)


def _markdown(result, files: list[str], surface_gradients, title: str | None, dataset: str | None,
              episodes=None, diagnostics=None) -> list[str]:
    """The lines of ``report.md``: header and notes, then one section per analysis, then the figures."""
    md = _md_header(result, title, dataset)
    md += ["", "## Linear selection gradients (beta)", "", f"Method: {result.methods.get('beta', '')}.", "",
           _vec_md(result.beta), "", "## Selection differentials (S)", "", _vec_md(result.differentials), ""]
    if result.average_gradients is not None:
        md += ["## Average gradients of the GLM fitness function (Janzen & Stern)", "",
               _vec_md(result.average_gradients), ""]
    md += _md_gamma(result) + _md_groups(result) + _md_random_effects(result) + _md_measurement(result)
    md += _md_imputation(result) + _md_episodes(episodes) + _md_diagnostics(diagnostics) + _md_surface(surface_gradients)
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


def _md_random_effects(result) -> list[str]:
    if result.variance_components is None:
        return []
    md = ["## Random effects", "", f"Model: {result.methods.get('beta', '')}.", "",
          "Variance components (relative-fitness scale):", "", _md_table(result.variance_components), "",
          "Likelihood-ratio tests:", "",
          _md_table(result.random_effects_test[["group", "test", "statistic", "df", "p_value"]]), ""]
    if result.random_slopes:
        sl = result.blups[result.blups["coef"] != "intercept"]
        md += ["Per-level gradients (mean gradient + BLUP; prediction-error SD in `blups.csv`), "
               "see `per_level_gradients.png`:", "",
               _md_table(sl.pivot(index="level", columns="coef", values="estimate").reset_index()), ""]
    return md


def _md_measurement(result) -> list[str]:
    if result.repeatability is None:
        return []
    comp = pd.DataFrame({"corrected": result.beta["estimate"], "naive (attenuated)": result.beta_naive["estimate"]})
    return ["## Measurement error", "", f"Method: {result.methods.get('beta', '')}.", "",
            "Gradients corrected for measurement error vs the naive ones:", "",
            _md_table(comp.reset_index(names="trait")), "", "Error variance and repeatability per trait:", "",
            _md_table(result.repeatability[["error_variance", "latent_variance", "repeatability", "repeatability_ci_low",
                                            "repeatability_ci_high", "reliability_of_recorded"]]
                      .reset_index(names="trait")), ""]


def _md_imputation(result) -> list[str]:
    if result.missing_information is None:
        return []
    mi = result.missing_information
    return ["## Missing values", "", f"{result.imputations} imputations by chained equations (posterior sampling); "
            "estimates pooled by Rubin's rules. Fraction of missing information of the linear gradients:", "",
            _md_table(mi[mi["type"] == "beta"]), ""]


def _md_episodes(episodes) -> list[str]:
    if episodes is None:
        return []
    return ["## Episodes of selection (Arnold & Wade)", "",
            f"Components {' x '.join(episodes.components)}; individuals entering each episode: "
            + ", ".join(f"{k} {v}" for k, v in episodes.reached.items()) + ".", "",
            "Selection gradients (columns add up to the total):", "",
            _md_table(episodes.gradients.reset_index(names="trait")), "",
            "Selection differentials:", "", _md_table(episodes.differentials.reset_index(names="trait")), "",
            "Opportunity for selection:", "", _md_table(episodes.opportunity.reset_index(names="episode")), ""]


def _md_diagnostics(diagnostics) -> list[str]:
    if diagnostics is None:
        return []
    flagged = diagnostics.flagged
    md = ["## Diagnostics", ""]
    if not len(flagged):
        md += ["No check flagged a problem (all checks in `diagnostics.csv`).", ""]
    for _, r in flagged.iterrows():
        md.append(f"- **{r['check']} ({r['subject']})**: {r['advice']}.")
    return md + [""]


def _md_surface(surface_gradients) -> list[str]:
    if surface_gradients is None:
        return []
    sb, sg = surface_gradients
    return ["## Nonparametric fitness surface (Gaussian process)", "",
            "Average gradients beta = E[dW/dz]/E[W] and gamma = E[d2W/dzdz']/E[W] by autograd; "
            "posterior mean, SD and 95% posterior interval.", "",
            _md_table(sb.reset_index(names="trait")), "", _md_table(sg), ""]


def _headline_metrics(result, files: list[str], surface_gradients, episodes=None, diagnostics=None) -> dict:
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
    if result.variance_components is not None:
        metrics["variance_components"] = {f"{r['group']}:{r['term']}": r["estimate"]
                                          for _, r in result.variance_components.iterrows()}
    if result.repeatability is not None:
        metrics["repeatability"] = result.repeatability["repeatability"].to_dict()
        metrics["beta_naive"] = result.beta_naive["estimate"].to_dict()
    if episodes is not None:
        metrics["episode_gradients"] = {c: episodes.gradients[c].to_dict() for c in episodes.gradients.columns}
        metrics["opportunity"] = episodes.opportunity["I"].to_dict()
    if diagnostics is not None:
        metrics["diagnostics_flagged"] = [f"{r['check']} ({r['subject']})" for _, r in diagnostics.flagged.iterrows()]
    return metrics
