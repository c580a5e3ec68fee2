"""`sciml motifs census|study` and the before/after study on tiny settings."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from scipy import stats
from typer.testing import CliRunner

import sciml.motifs.engine as engine_mod
from sciml.cli import app
from sciml.motifs import StudyConfig, analyse_seeds, compare_training, load_config
from sciml.motifs.engine import resolve_engine

torch.set_num_threads(1)
runner = CliRunner()


def test_cli_census_counts_and_json(tmp_path):
    G = nx.gnp_random_graph(30, 0.15, directed=True, seed=0)
    path = tmp_path / "g.edgelist"
    path.write_text("\n".join(f"{u} {v}" for u, v in G.edges()) + "\n")
    res = runner.invoke(app, ["motifs", "census", str(path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    ref = nx.triadic_census(nx.relabel_nodes(G, str))
    assert {k: v["count"] for k, v in data["motifs"].items()} == {k: ref[k] for k in data["motifs"]}
    assert data["engine"] == resolve_engine("auto")
    res = runner.invoke(app, ["motifs", "census", str(path), "--size", "4", "--null", "degree", "--n-random", "20",
                              "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data["motifs"]) == 199 and set(data["motifs"]["204"]) >= {"count", "z", "p_value", "sp"}
    assert data["engine"] == resolve_engine("auto") and data["seed"] == 0
    res = runner.invoke(app, ["motifs", "census", str(path), "--n-random", "20", "--engine", "numpy", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["engine"] == "numpy"
    res = runner.invoke(app, ["motifs", "census", str(path), "--n-random", "10"])
    assert res.exit_code == 0 and "feed-forward loop" in res.output


def test_cli_census_npy_and_errors(tmp_path):
    np.save(tmp_path / "w.npy", np.random.default_rng(0).normal(size=(20, 20)))
    res = runner.invoke(app, ["motifs", "census", str(tmp_path / "w.npy"), "--threshold", "0.1", "--mode", "density"])
    assert res.exit_code == 0, res.output
    assert "20 nodes, 38 edges" in res.output
    res = runner.invoke(app, ["motifs", "census", str(tmp_path / "w.npy"), "--threshold", "99"])
    assert res.exit_code == 2 and "threshold=99.0" in res.output
    res = runner.invoke(app, ["motifs", "census", str(tmp_path / "nope.graphml")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["motifs", "census", str(tmp_path / "w.npy"), "--threshold", "0.1", "--engine", "gpu"])
    assert res.exit_code == 2 and "engine must be one of" in res.output


def test_cli_named_engine_never_falls_back(tmp_path, monkeypatch):
    G = nx.gnp_random_graph(30, 0.15, directed=True, seed=1)
    path = tmp_path / "g.edgelist"
    path.write_text("\n".join(f"{u} {v}" for u, v in G.edges()) + "\n")
    monkeypatch.setattr(engine_mod, "HAVE_NUMBA", False)
    res = runner.invoke(app, ["motifs", "census", str(path), "--n-random", "5", "--engine", "numba", "--json"])
    assert res.exit_code == 2 and "numba is not installed" in res.output
    res = runner.invoke(app, ["motifs", "census", str(path), "--n-random", "5", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["engine"] == "numpy"


TINY = dict(seeds=[0, 1], n_train=300, n_valid=100, n_test=150, hidden_size=12, epochs=2, patience=None,
            snapshot_every=1, density=0.2, n_random=15)


def _check_paired_tests_against_scipy(cmp):
    """The table's paired t-test, Wilcoxon and BH values equal scipy's on the study's own Z-scores."""
    tab = cmp.table()
    for k in tab.index:
        b, a = cmp.z_before[k].to_numpy(float), cmp.z_after[k].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 2 or np.std(a[ok] - b[ok]) == 0:
            assert np.isnan(tab.loc[k, "p_ttest"])
            continue
        ref = stats.ttest_rel(a[ok], b[ok])
        assert tab.loc[k, "t"] == pytest.approx(ref.statistic) and tab.loc[k, "p_ttest"] == pytest.approx(ref.pvalue)
        assert tab.loc[k, "p_wilcoxon"] == pytest.approx(stats.wilcoxon(a[ok], b[ok]).pvalue)
        assert tab.loc[k, "diff_mean"] == pytest.approx(np.mean(a[ok] - b[ok]))
    for col, adj in (("p_ttest", "p_adj"), ("p_wilcoxon", "p_adj_wilcoxon")):
        fin = tab[col].notna()
        np.testing.assert_allclose(tab.loc[fin, adj], stats.false_discovery_control(tab.loc[fin, col], method="bh"))
    return tab


def _fake_result(seed, z_before, z_after):
    stats_ = lambda z: {"z": z, "sp": z, "ffl": {"coherent": 1, "incoherent": 1}, "engine": "numpy"}  # noqa: E731
    return {"seed": seed, "accuracy": 0.9, "macro_f1": 0.9, "f1": {}, "best_epoch": 1, "weight_change": 0.1,
            "before": stats_(z_before), "after": stats_(z_after), "saliency": {"donor": [0.0]}, "boundary": 1}


def test_paired_tests_find_a_planted_change_and_match_scipy():
    """12 seeds x 13 motifs: 030T rises by 3 (SD 1); the others do not change."""
    rng = np.random.default_rng(0)
    keys = ["021D", "021U", "021C", "111D", "111U", "030T", "030C", "201", "120D", "120U", "120C", "210", "300"]
    results = []
    for seed in range(12):
        zb = {k: float(rng.normal()) for k in keys}
        za = {k: zb[k] + float(rng.normal()) + (3.0 if k == "030T" else 0.0) for k in keys}
        results.append(_fake_result(seed, zb, za))
    cmp = analyse_seeds(results)
    tab = _check_paired_tests_against_scipy(cmp)
    assert tab.loc["030T", "change"] == "up" and tab.loc["030T", "p_adj"] < 1e-3
    assert (tab.drop(index="030T")["p_adj"] > 0.05).all()
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(tab["p_adj"], multipletests(tab["p_ttest"], method="fdr_bh")[1])


def test_compare_training_tiny(tmp_path):
    cmp = compare_training(StudyConfig(**TINY), out=tmp_path, progress=False)
    tab = _check_paired_tests_against_scipy(cmp)
    assert len(tab) == 13 and {"z_before", "z_after", "p_ttest", "p_wilcoxon", "p_adj", "change"} <= set(tab.columns)
    assert tab["p_ttest"].notna().sum() >= 10  # the check above compared real numbers
    for f in ("metrics.json", "report.md", "motif_changes.csv", "z_profiles.png", "z_distributions.png",
              "saliency.png", "ffl_coherence.csv", "reliability.png", "calibration.csv", "seed_0/logo_donor.png",
              "seed_0/history.png", "seed_0/result.json", "seed_0/model.pt", "seed_1/snapshots/init.npy",
              "seed_1/snapshots/final.npy"):
        assert (tmp_path / f).exists(), f
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["engine"] == resolve_engine("auto")
    assert all(r[w]["engine"] == resolve_engine("auto") for r in cmp.results for w in ("before", "after"))
    # calibration: the per-seed ECE values are those of the saved model on the regenerated test windows
    from sciml.motifs import RNNClassifier, make_splice_dataset
    from sciml.motifs.calibration import expected_calibration_error

    ds = make_splice_dataset(300 + 100 + 150, length=32, decoy_fraction=0.5, seed=0)
    _, valid, test = ds.split(300, 100, seed=0)
    clf = RNNClassifier.load(tmp_path / "seed_0" / "model.pt")
    cal = cmp.results[0]["calibration"]
    assert cal["ece_test_after"] == pytest.approx(expected_calibration_error(test.labels, clf.predict_proba(test)))
    assert cal["temperature"] == clf.temperature_ and cmp.results[0]["accuracy"] == clf.score(test)
    assert cal["accuracy_test_before"] == cmp.results[0]["accuracy"]  # a temperature changes no prediction
    assert cal["ece_valid_after"] <= cal["ece_valid_before"] + 0.02
    assert metrics["ece_test_after_mean"] == pytest.approx(np.mean([r["calibration"]["ece_test_after"]
                                                                    for r in cmp.results]))
    assert "## Calibration" in (tmp_path / "report.md").read_text()
    r = cmp.results[0]
    # matched density: before and after graphs have the same number of edges
    assert r["before"]["n_edges"] == r["after"]["n_edges"] == round(0.2 * 12 * 11)
    assert "RNN motif study: 2 seeds" in cmp.summary()
    again = compare_training(StudyConfig(**TINY), out=tmp_path, progress=False)  # reuses per-seed results
    assert again.table().equals(tab)


def test_cli_study_and_config_validation(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text("seeds: [0]\nn_train: 200\nn_valid: 60\nn_test: 100\nhidden_size: 12\ndensity: 0.25\nepochs: 1\nn_random: 5\n")
    assert load_config(cfg).hidden_size == 12
    (tmp_path / "er.yaml").write_text("null: er\n")  # unquoted YAML `null` key
    assert load_config(tmp_path / "er.yaml").null == "er"
    res = runner.invoke(app, ["motifs", "study", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "report.md").exists()
    (tmp_path / "bad.yaml").write_text("hiden_size: 8\n")
    res = runner.invoke(app, ["motifs", "study", "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "hiden_size" in res.output
    with pytest.raises(ValueError, match="density"):
        StudyConfig(density=0)
