"""Bumpus (1898) end to end, the result object's tables, and the ``sciml selection`` command."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sciml.selection import lande_arnold

from selection_helpers import BUMPUS_TRAITS, bumpus


@pytest.fixture(scope="module")
def bumpus_result():
    return lande_arnold(bumpus(), "survived", BUMPUS_TRAITS, fitness_type="binary", groups="sex",
                        bootstrap=500, permutations=200, seed=0, progress=False)


def test_bumpus_by_sex(bumpus_result):
    res = bumpus_result
    assert res.n == 136 and {g: r.n for g, r in res.groups.items()} == {"f": 49, "m": 87}
    b = res.beta
    assert list(b.columns) == ["estimate", "se", "ci_low", "ci_high", "p_value"]
    assert list(b.index) == BUMPUS_TRAITS
    # the classic result: selection against large total length and weight, for a long humerus
    assert b.loc["total_length_mm", "estimate"] < 0 and b.loc["total_length_mm", "ci_high"] < 0
    assert b.loc["weight_g", "estimate"] < 0 and b.loc["weight_g", "ci_high"] < 0
    assert b.loc["length_humerus_in", "estimate"] > 0 and b.loc["length_humerus_in", "ci_low"] > 0
    m = res.groups["m"].beta
    assert m.loc["total_length_mm", "estimate"] < 0 and m.loc["total_length_mm", "p_value"] < 0.05
    # binary fitness: Janzen-Stern average gradients have the same signs as the OLS gradients
    js = res.average_gradients["estimate"]
    big = b["estimate"].abs() > 0.2
    assert np.all(np.sign(js[big]) == np.sign(b["estimate"][big]))
    assert res.gamma.shape == (5, 5) and np.allclose(res.gamma, res.gamma.T)
    gt = res.group_test.set_index("gradients")
    assert gt.loc["beta", "df"] == 5 and gt.loc["gamma", "df"] == 15   # sex x trait interactions
    assert "p_permutation" in res.group_test


def test_result_tables_and_display(bumpus_result):
    res = bumpus_result
    tab = res.table()
    assert list(tab.columns) == ["term", "type", "estimate", "se", "ci_low", "ci_high", "p_value", "method"]
    assert set(tab["type"]) >= {"S", "beta", "C", "gamma", "beta_avg", "gamma_avg", "lambda", "theta"}
    assert (tab.query("type == 'gamma'").shape[0]) == 15
    core = tab[tab["type"].isin(["S", "beta", "C", "gamma", "beta_avg", "lambda"])]
    assert core[["estimate", "se", "ci_low", "ci_high", "p_value"]].notna().all().all()
    assert (core["ci_low"] <= core["ci_high"]).all() and core["p_value"].between(0, 1).all()
    tg = res.table(groups=True)
    assert set(tg["group"]) == {"pooled", "f", "m"}
    s = res.summary()
    for text in ("Linear selection gradients beta", "diagonal doubled", "Canonical analysis", "sex"):
        assert text in s
    assert "SelectionResult" in repr(res)
    json.dumps(res.to_dict(), allow_nan=True)
    for df in (res.gamma_se, res.gamma_p):
        assert df.shape == (5, 5) and list(df.index) == BUMPUS_TRAITS


def test_cli_json_report_and_errors(tmp_path):
    from sciml.cli import app

    csv = tmp_path / "bumpus.csv"
    bumpus().to_csv(csv, index=False)
    runner = CliRunner()
    traits = "total_length_mm,weight_g,length_humerus_in"
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "survived", "--traits", traits,
                            "--fitness-type", "binary", "--bootstrap", "200", "--permutations", "99",
                            "--groups", "sex", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 136 and set(out["groups"]) == {"f", "m"}
    rows = pd.DataFrame(out["table"])
    assert rows.query("type == 'beta' and term == 'total_length_mm'")["estimate"].iloc[0] < 0
    rep = tmp_path / "rep"
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "survived", "--traits", traits,
                            "--fitness-type", "binary", "--report", str(rep), "--quiet"])
    assert r.exit_code == 0, r.output
    for f in ("report.md", "gradients.csv", "gamma.csv", "fitness_functions.png", "fitness_surface.png",
              "canonical.png", "result.json"):
        assert (rep / f).exists(), f
    assert "Linear selection gradients" in (rep / "report.md").read_text()
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "survived", "--traits", "sex,weight_g"])
    assert r.exit_code == 2 and "trait column 'sex' is not numeric" in r.output
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "survived", "--traits", "weight_g", "--linear-only"])
    assert r.exit_code == 0 and "Linear selection gradients" in r.stdout


NINE = ["total_length_mm", "alar_extent_mm", "weight_g", "length_beak_and_head_mm", "length_humerus_in",
        "length_femur_in", "length_tibiotarsus_in", "skull_width_in", "keel_length_in"]
# Janzen & Stern (1998, Evolution 52:1564), Tables 1 and 2: least-squares selection gradients (and their
# standard errors) on all nine log-transformed traits, standardised within each sex
JANZEN_STERN = {"m": ([-0.516, 0.097, -0.272, 0.051, 0.164, 0.116, -0.018, 0.137, 0.164],
                      [0.100, 0.128, 0.093, 0.093, 0.168, 0.169, 0.128, 0.085, 0.087]),
                "f": ([-0.213, -0.143, -0.531, 0.061, 0.328, -0.174, 0.427, -0.019, 0.169],
                      [0.284, 0.318, 0.253, 0.322, 0.369, 0.360, 0.349, 0.260, 0.237])}


@pytest.mark.parametrize("sex", ["m", "f"])
def test_bumpus_nine_traits_published_least_squares_beta(sex):
    from sciml.selection import SelectionWarning

    df = bumpus()
    df = df[df["sex"] == sex].copy()
    df[NINE] = np.log(df[NINE])
    if sex == "f":
        # 49 females cannot carry the 55-parameter quadratic model: beta is still estimated
        with pytest.warns(SelectionWarning, match="55 parameters but only 49 individuals"):
            res = lande_arnold(df, "survived", NINE, fitness_type="binary")
        assert res.gamma is None
    else:
        import warnings

        from sciml.selection import SeparationWarning
        with warnings.catch_warnings():        # the 55-term logistic model separates 87 males: expected
            warnings.simplefilter("ignore", SeparationWarning)
            res = lande_arnold(df, "survived", NINE, fitness_type="binary")
    beta, se = JANZEN_STERN[sex]
    np.testing.assert_allclose(res.beta["estimate"], beta, atol=5e-4)
    np.testing.assert_allclose(res.models["linear"].bse[1:], se, atol=5e-4)
    # the p-values come from the logistic regression on the same nine traits
    import statsmodels.api as sm
    Z = df[NINE].to_numpy()
    U = (Z - Z.mean(0)) / Z.std(0, ddof=1)
    ref = sm.GLM(df["survived"].to_numpy(float), sm.add_constant(U), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(res.beta["p_value"], ref.pvalues[1:], rtol=1e-6)


def test_bumpus_nine_traits_by_sex_in_one_call():
    df = bumpus()
    df[NINE] = np.log(df[NINE])
    with pytest.warns(Warning):
        res = lande_arnold(df, "survived", NINE, fitness_type="binary", groups="sex", progress=False)
    for sex in ("m", "f"):
        np.testing.assert_allclose(res.groups[sex].beta["estimate"], JANZEN_STERN[sex][0], atol=5e-4)
    assert res.groups["f"].gamma is None
    gt = res.group_test.set_index("gradients")
    assert np.isfinite(gt.loc["beta", "p_value"]) and "not testable" in gt.loc["gamma", "method"]


def test_cli_random_effects_episodes_measurement_error_impute_check(tmp_path):
    from sciml.cli import app
    from sciml.selection.simulate import simulate_field_study

    csv = tmp_path / "field.csv"
    simulate_field_study(n_years=12, birds_per_year=40, seed=2).to_csv(csv, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["selection", str(csv), "--traits", "mass,wing,tarsus", "--fitness-type", "count",
                            "--random-effects", "year", "--random-slopes", "mass", "--episodes", "survived,mated,eggs",
                            "--missing", "impute", "--imputations", "3", "--check", "--linear-only", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["random_effects"] == ["year"] and out["imputations"] == 3
    assert {row["group"] for row in out["variance_components"]} == {"year", "residual"}
    eps = pd.DataFrame(out["episodes"]["table"])
    beta = eps[eps["type"] == "beta"].pivot(index="term", columns="episode", values="estimate")
    np.testing.assert_allclose(beta[["survived", "mated", "eggs"]].sum(axis=1), beta["total"], atol=1e-12)
    assert {d["check"] for d in out["diagnostics"]} >= {"variance inflation factor", "Cook's distance"}
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "fitness", "--traits", "mass,wing", "--fitness-type",
                            "count", "--measurement-error", "mass=0.64", "--linear-only", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "Measurement error and repeatability" in r.stdout and "Naive gradients" in r.stdout
    r = runner.invoke(app, ["selection", str(csv), "--fitness", "fitness", "--traits", "mass", "--measurement-error",
                            "mass:0.64"])
    assert r.exit_code == 2 and "expected TRAIT=VARIANCE" in r.output
    rep = tmp_path / "rep"
    r = runner.invoke(app, ["selection", str(csv), "--traits", "mass,wing", "--fitness-type", "count",
                            "--random-effects", "year", "--random-slopes", "mass", "--episodes", "survived,mated,eggs",
                            "--check", "--report", str(rep), "--quiet", "--linear-only", "--bootstrap", "100"])
    assert r.exit_code == 0, r.output
    md = (rep / "report.md").read_text()
    for section in ("## Random effects", "## Episodes of selection", "## Diagnostics"):
        assert section in md
    assert (rep / "per_level_gradients.png").exists() and (rep / "episodes.png").exists()
