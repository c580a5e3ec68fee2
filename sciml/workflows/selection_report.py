"""Workflow ``selection_report``: Lande--Arnold analysis of a CSV file (Bumpus's sparrows by
default) -> gradient tables, canonical analysis, GP fitness surface, diagnostics, plots and a
Markdown report; optionally a simulated multi-year field study that shows random effects
(fluctuating selection), episodes of selection, multiple imputation and measurement-error
correction.

All science lives in :mod:`sciml.selection` (``run_analysis``/``collect_report`` in
``sciml.selection.study``); this module maps the workflow contract onto it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sciml._io import atomic_write_json, atomic_write_text
from sciml.selection.study import collect_report, run_analysis
from sciml.workflows.jobs import Job

__all__ = ["Config", "demo_config", "plan", "report"]

BUMPUS_TRAITS = ["total_length_mm", "alar_extent_mm", "weight_g", "length_beak_and_head_mm", "length_humerus_in"]
FIELD_TRAITS = ["mass", "wing", "tarsus"]


@dataclass
class Config:
    """Settings of the selection report.

    data: ``"bumpus"`` (bundled), ``"field_simulation"`` or a CSV path; fitness/traits/groups: column
    names (``groups: null`` for none; ``fitness: null`` with ``episodes`` = the product of the
    components); fitness_type: continuous | binary | count; standardize: sd | mean | none;
    bootstrap/permutations: replicates (0 = analytic inference); quadratic: null (gamma when the
    data allow it) | true | false; random_effects / random_slopes: grouping columns (nested,
    outermost first) and traits whose gradients vary among levels of the first; episodes: fitness
    components in the order they act; measurement_error: ``{trait: variance of one measurement}``;
    individual: identifier column of repeated measures (long format); missing: drop | impute
    (``imputations`` data sets); check: run the diagnostics; surface: fit a GP fitness surface
    (``surface_iter`` optimiser steps, ``surface_samples`` posterior draws); field_study: also
    analyse a simulated multi-year study (``field_years`` x ``field_birds_per_year`` birds) with
    random year effects and slopes, episodes, imputation and measurement-error correction.
    """

    data: str = "bumpus"
    fitness: str | None = "survived"
    traits: list[str] = field(default_factory=lambda: list(BUMPUS_TRAITS))
    fitness_type: str = "binary"
    standardize: str = "sd"
    groups: str | None = "sex"
    bootstrap: int = 2000
    permutations: int = 1000
    seed: int = 0
    quadratic: bool | None = None
    surface: bool = True
    surface_iter: int = 150
    surface_samples: int = 200
    random_effects: list[str] | None = None
    random_slopes: list[str] | None = None
    episodes: list[str] | None = None
    measurement_error: dict[str, float] | None = None
    individual: str | None = None
    missing: str = "drop"
    imputations: int = 20
    check: bool = True
    field_study: bool = True
    field_years: int = 20
    field_birds_per_year: int = 60
    field_bootstrap: int = 200
    field_imputations: int = 5


def demo_config() -> Config:
    """Bumpus by sex with 300 bootstrap replicates, 200 permutations and a short GP fit, plus a small
    simulated field study (12 years x 40 birds, 100 replicates, 3 imputations)."""
    return Config(bootstrap=300, permutations=200, surface_iter=80, surface_samples=100, field_years=12,
                  field_birds_per_year=40, field_bootstrap=100, field_imputations=3)


def plan(cfg: Config) -> list[Job]:
    """The analysis of ``cfg.data`` and, with ``field_study``, two analyses of the simulated field study."""
    kwargs = {"data": cfg.data, "fitness": cfg.fitness, "traits": list(cfg.traits), "fitness_type": cfg.fitness_type,
              "standardize": cfg.standardize, "groups": cfg.groups, "bootstrap": cfg.bootstrap,
              "permutations": cfg.permutations, "seed": cfg.seed, "quadratic": cfg.quadratic,
              "surface": cfg.surface, "surface_iter": cfg.surface_iter, "surface_samples": cfg.surface_samples,
              "random_effects": cfg.random_effects, "random_slopes": cfg.random_slopes, "episodes": cfg.episodes,
              "measurement_error": cfg.measurement_error, "individual": cfg.individual, "missing": cfg.missing,
              "imputations": cfg.imputations, "check": cfg.check}
    jobs = [Job(name="analysis", fn=run_analysis, kwargs=kwargs)]
    if cfg.field_study:
        field_kw = {"data": f"field_simulation:{cfg.field_years}x{cfg.field_birds_per_year}", "fitness": "fitness",
                    "traits": list(FIELD_TRAITS), "fitness_type": "count", "bootstrap": cfg.field_bootstrap,
                    "seed": cfg.seed, "surface": False, "check": True}
        jobs.append(Job(name="field_mixed", fn=run_analysis, kwargs={
            **field_kw, "random_effects": ["year"], "random_slopes": ["mass"], "missing": "impute",
            "imputations": cfg.field_imputations, "episodes": ["survived", "mated", "eggs"],
            "title": "Simulated field study: fluctuating selection, episodes, imputed tarsus"}))
        jobs.append(Job(name="field_measurement", fn=run_analysis, kwargs={
            **field_kw, "measurement_error": {"mass": 0.64},
            "title": "Simulated field study: gradients corrected for the scale error of mass"}))
    return jobs


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Copy tables, plots and report.md of each job into ``out`` (the field study into
    ``out/field_mixed`` and ``out/field_measurement``); write metrics.json."""
    metrics = collect_report(results["analysis"], out)
    extra = [n for n in ("field_mixed", "field_measurement") if n in results]
    for name in extra:
        metrics[name] = collect_report(results[name], out / name)
    if extra:
        md = (out / "report.md").read_text()
        md += "\n## Simulated field study\n\n" + "\n".join(
            f"- [{n}]({n}/report.md): {results[n].get('title', n)}" for n in extra) + "\n"
        atomic_write_text(out / "report.md", md)
        atomic_write_json(out / "metrics.json", metrics)
    return metrics
