"""Workflow ``selection_report``: Lande--Arnold analysis of a CSV file (Bumpus's sparrows by
default) -> gradient tables, canonical analysis, GP fitness surface, plots and a Markdown report.

All science lives in :mod:`sciml.selection` (``run_analysis``/``collect_report`` in
``sciml.selection.report``); this module maps the workflow contract onto it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sciml.selection.report import collect_report, run_analysis
from sciml.workflows.jobs import Job

__all__ = ["Config", "demo_config", "plan", "report"]

BUMPUS_TRAITS = ["total_length_mm", "alar_extent_mm", "weight_g", "length_beak_and_head_mm", "length_humerus_in"]


@dataclass
class Config:
    """Settings of the selection report.

    data: ``"bumpus"`` (bundled) or a CSV path; fitness/traits/groups: column names
    (``groups: null`` for none); fitness_type: continuous | binary | count; standardize: sd |
    mean | none; bootstrap/permutations: replicates (0 = analytic inference); surface: fit a GP
    fitness surface (``surface_iter`` optimiser steps, ``surface_samples`` posterior draws).
    """

    data: str = "bumpus"
    fitness: str = "survived"
    traits: list[str] = field(default_factory=lambda: list(BUMPUS_TRAITS))
    fitness_type: str = "binary"
    standardize: str = "sd"
    groups: str | None = "sex"
    bootstrap: int = 2000
    permutations: int = 1000
    seed: int = 0
    quadratic: bool = True
    surface: bool = True
    surface_iter: int = 150
    surface_samples: int = 200


def demo_config() -> Config:
    """Bumpus by sex with 300 bootstrap replicates, 200 permutations and a short GP fit."""
    return Config(bootstrap=300, permutations=200, surface_iter=80, surface_samples=100)


def plan(cfg: Config) -> list[Job]:
    """A single job: the whole analysis (it takes seconds)."""
    kwargs = {"data": cfg.data, "fitness": cfg.fitness, "traits": list(cfg.traits), "fitness_type": cfg.fitness_type,
              "standardize": cfg.standardize, "groups": cfg.groups, "bootstrap": cfg.bootstrap,
              "permutations": cfg.permutations, "seed": cfg.seed, "quadratic": cfg.quadratic,
              "surface": cfg.surface, "surface_iter": cfg.surface_iter, "surface_samples": cfg.surface_samples}
    return [Job(name="analysis", fn=run_analysis, kwargs=kwargs)]


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Copy tables, plots and report.md of the analysis job into ``out``; write metrics.json."""
    return collect_report(results["analysis"], out)
