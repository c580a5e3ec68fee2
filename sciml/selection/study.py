"""A whole selection study as one job (used by the ``selection_report`` workflow and the CLI):
load the data, run the analyses asked for, write the report folder.

``run_analysis`` runs :func:`~sciml.selection.lande_arnold` (with any of groups, random effects,
measurement error, imputation), :func:`~sciml.selection.selection_episodes` when fitness
components are given, the diagnostics of ``result.check()``, and optionally a Gaussian-process
fitness surface, and writes everything with :func:`~sciml.selection.report.write_report`.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from sciml._io import atomic_write, atomic_write_json

from .analysis import lande_arnold
from .episodes import selection_episodes
from .report import write_report

TOTAL_FITNESS = "total_fitness"


def load_table(data: str) -> pd.DataFrame:
    """``"bumpus"`` -> :func:`sciml.datasets.load_bumpus`; ``"field_simulation"`` (or
    ``"field_simulation:YEARSxBIRDS"``) -> the simulated multi-year study of
    :func:`sciml.selection.simulate.simulate_field_study` (seed 0); otherwise a CSV file."""
    if data == "bumpus":
        from sciml.datasets import load_bumpus

        return load_bumpus()
    if data.split(":")[0] == "field_simulation":
        from .simulate import simulate_field_study

        size = data.split(":")[1] if ":" in data else "20x60"
        try:
            years, birds = (int(x) for x in size.split("x"))
        except ValueError as exc:
            raise ValueError(f"data {data!r}: expected 'field_simulation:YEARSxBIRDS', e.g. 'field_simulation:20x60'") from exc
        return simulate_field_study(n_years=years, birds_per_year=birds, seed=0)
    path = Path(data)
    if not path.is_file():
        raise ValueError(f"data {data!r} is neither 'bumpus', 'field_simulation' nor an existing CSV file")
    return pd.read_csv(path)


def with_total_fitness(df: pd.DataFrame, fitness: str | None, episodes: Sequence[str] | None) -> tuple[pd.DataFrame, str]:
    """Without a fitness column, total fitness is the product of the episode components (missing
    components of individuals that did not reach them count as 0)."""
    if fitness is not None:
        return df, fitness
    if not episodes:
        raise ValueError("give a fitness column, or fitness components (episodes) whose product is total fitness")
    missing = [c for c in episodes if c not in df.columns]
    if missing:
        raise ValueError(f"episode columns not found in data: {missing}; available: {list(df.columns)}")
    total = np.ones(len(df))
    for c in episodes:
        total = total * pd.to_numeric(df[c], errors="raise").fillna(0.0).to_numpy()
    return df.assign(**{TOTAL_FITNESS: total}), TOTAL_FITNESS


def run_analysis(data: str, fitness: str | None, traits: list[str], fitness_type: str = "continuous",
                 standardize: str | None = "sd", groups: str | None = None, bootstrap: int = 0,
                 permutations: int = 0, seed: int = 0, quadratic: bool | None = None, surface: bool = True,
                 surface_iter: int = 150, surface_samples: int = 200, random_effects: Sequence[str] | None = None,
                 random_slopes: Sequence[str] | None = None, episodes: Sequence[str] | None = None,
                 measurement_error: Mapping[str, float] | None = None, individual: str | None = None,
                 missing: str = "drop", imputations: int = 20, check: bool = True, title: str | None = None, *,
                 workdir: str | Path) -> dict:
    """Load ``data``, run the analyses and write the full report into ``workdir/report``. Returns
    the headline metrics and the report folder.

    Example
    -------
    >>> run_analysis("bumpus", "survived", ["weight_g", "total_length_mm"], "binary",
    ...              workdir="out")                                    # doctest: +SKIP
    """
    df, fitness = with_total_fitness(load_table(data), fitness, episodes)
    std = None if standardize in (None, "none", "None", "") else standardize
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lande_arnold(df, fitness, list(traits), fitness_type=fitness_type, standardize=std,
                           bootstrap=bootstrap, permutations=permutations, groups=groups or None, seed=seed,
                           quadratic=quadratic, progress=False, random_effects=random_effects or None,
                           random_slopes=random_slopes or None, measurement_error=measurement_error or None,
                           individual=individual or None, missing=missing, imputations=imputations)
        ep = (selection_episodes(df, list(episodes), list(traits), standardize=std, bootstrap=bootstrap, seed=seed,
                                 progress=False) if episodes else None)
        diag = res.check() if check else None
    surf = grads = None
    if surface:
        from .surfaces import fitness_surface

        surf = fitness_surface(res, n_iter=surface_iter, seed=seed, progress=False)
        grads = surf.average_gradients(n_samples=surface_samples, seed=seed)
    out = Path(workdir) / "report"
    metrics = write_report(res, out, surface=surf, surface_gradients=grads, dataset=data, episodes=ep,
                           diagnostics=diag, title=title or f"Selection analysis of {data}")
    metrics["warnings"] = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    metrics["title"] = title or f"Selection analysis of {data}"
    metrics["report_dir"] = str(out)
    return metrics


def collect_report(result: dict, out: str | Path) -> dict:
    """Copy the files of a :func:`run_analysis` job into ``out`` (atomically) and write
    ``metrics.json``; returns the metrics."""
    out = Path(out)
    src = Path(result["report_dir"])
    for name in result.get("files", []):
        with atomic_write(out / name, "wb") as fh:
            fh.write((src / name).read_bytes())
    metrics = {k: v for k, v in result.items() if k != "report_dir"}
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
