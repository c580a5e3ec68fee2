"""Workflow ``rnn_motifs``: train and calibrate RNNs on splice-site recognition over K seeds
(one job per seed), then compare the motifs of their circuits before vs after training.

The report holds the paired motif tests, the expected calibration error before/after (a
temperature fitted on each seed's validation windows) and a reliability diagram
(``reliability.png``).

All science lives in :mod:`sciml.motifs.study`; this module only maps the workflow contract
(``Config``, ``demo_config``, ``plan``, ``report``) onto it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciml.motifs.study import StudyConfig, analyse_seeds, run_seed
from sciml.workflows.jobs import Job

__all__ = ["Config", "demo_config", "plan", "report"]


@dataclass
class Config(StudyConfig):
    """Same fields as :class:`sciml.motifs.StudyConfig` (seeds, task, model, training, motif settings)."""


def demo_config() -> Config:
    """Tiny settings: 3 seeds, short training, 50 null graphs -- well under a minute."""
    return Config(seeds=[0, 1, 2], n_train=800, n_valid=150, n_test=300, hidden_size=16, epochs=8,
                  patience=3, snapshot_every=2, density=0.15, n_random=50)


def plan(cfg: Config) -> list[Job]:
    """One training-and-analysis job per seed."""
    kwargs = cfg.job_kwargs()
    return [Job(name=f"seed_{s}", fn=run_seed, kwargs={"seed": int(s), **kwargs}) for s in cfg.seeds]


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    """Paired before/after analysis across seeds: metrics.json, CSVs, plots (incl. the reliability
    diagram) and report.md in ``out``."""
    return analyse_seeds(results).save(out)
