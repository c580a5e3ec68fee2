"""selection_report workflow: Bumpus demo end to end, and a user CSV."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sciml.workflows import selection_report
from sciml.workflows.engine import Job, run_workflow


def test_plan_is_json_able_jobs():
    jobs = selection_report.plan(selection_report.Config())
    assert [j.name for j in jobs] == ["analysis", "field_mixed", "field_measurement"]
    assert all(isinstance(j, Job) and j.fn.__module__ == "sciml.selection.study" for j in jobs)
    json.dumps([j.kwargs for j in jobs])
    assert len(selection_report.plan(selection_report.Config(field_study=False))) == 1


def test_demo_runs_end_to_end(tmp_path):
    cfg = selection_report.demo_config()
    res = run_workflow("selection_report", cfg, out=tmp_path, executor="local")
    assert res.ok, res.summary()
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n"] == 136 and set(m["groups"]) == {"f", "m"}
    assert m["beta"]["total_length_mm"] < 0 and m["beta"]["length_humerus_in"] > 0
    assert set(m["surface_beta"]) == set(cfg.traits)
    for f in ("report.md", "gradients.csv", "gamma.csv", "canonical_eigenvalues.csv", "group_test.csv",
              "surface_gradients.csv", "fitness_functions.png", "fitness_surface.png", "canonical.png"):
        assert (tmp_path / f).exists(), f
    md = (tmp_path / "report.md").read_text()
    assert "Nonparametric fitness surface" in md and "sex = f" in md and "## Diagnostics" in md
    assert (tmp_path / "diagnostics.csv").exists() and "diagnostics_flagged" in m
    # the simulated field study: random effects, episodes, imputation, measurement error
    fm = json.loads((tmp_path / "field_mixed" / "metrics.json").read_text())
    assert "year:mass" in fm["variance_components"] and set(fm["episode_gradients"]) == {
        "survived", "mated", "eggs", "total"}
    fmd = (tmp_path / "field_mixed" / "report.md").read_text()
    for section in ("## Random effects", "## Episodes of selection", "## Missing values", "## Diagnostics"):
        assert section in fmd, section
    for f in ("per_level_gradients.png", "episodes.png", "blups.csv", "episodes_opportunity.csv"):
        assert (tmp_path / "field_mixed" / f).exists(), f
    me = json.loads((tmp_path / "field_measurement" / "metrics.json").read_text())
    assert 0.5 < me["repeatability"]["mass"] < 0.95 and abs(me["beta"]["mass"]) > abs(me["beta_naive"]["mass"])
    assert "## Measurement error" in (tmp_path / "field_measurement" / "report.md").read_text()
    assert "field_mixed/report.md" in md
    again = run_workflow("selection_report", cfg, out=tmp_path, executor="local")
    assert again.skipped == ["analysis", "field_mixed", "field_measurement"]


def test_user_csv_continuous(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(150, 2)), columns=["a", "b"])
    df["W"] = np.exp(0.4 * df.a - 0.2 * df.b ** 2) * rng.gamma(4, 0.25, 150)
    csv = tmp_path / "pop.csv"
    df.to_csv(csv, index=False)
    cfg = selection_report.Config(data=str(csv), fitness="W", traits=["a", "b"], fitness_type="continuous",
                                  groups=None, bootstrap=200, permutations=99, surface=False, field_study=False)
    res = run_workflow("selection_report", cfg, out=tmp_path / "run", executor="local")
    assert res.ok, res.summary()
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["beta"]["a"] > 0.2 and "surface_beta" not in m
