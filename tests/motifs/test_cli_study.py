"""`sciml motifs census|study` and the before/after study on tiny settings."""
from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from sciml.cli import app
from sciml.motifs import StudyConfig, compare_training, load_config

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
    res = runner.invoke(app, ["motifs", "census", str(path), "--size", "4", "--null", "degree", "--n-random", "20",
                              "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert len(data["motifs"]) == 199 and set(data["motifs"]["204"]) >= {"count", "z", "p_value", "sp"}
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


TINY = dict(seeds=[0, 1], n_train=300, n_valid=100, n_test=150, hidden_size=12, epochs=2, patience=None,
            snapshot_every=1, density=0.2, n_random=15)


def test_compare_training_tiny(tmp_path):
    cmp = compare_training(StudyConfig(**TINY), out=tmp_path, progress=False)
    tab = cmp.table()
    assert len(tab) == 13 and {"z_before", "z_after", "p_ttest", "p_wilcoxon", "p_adj", "change"} <= set(tab.columns)
    for f in ("metrics.json", "report.md", "motif_changes.csv", "z_profiles.png", "z_distributions.png",
              "saliency.png", "ffl_coherence.csv", "seed_0/logo_donor.png", "seed_0/history.png", "seed_0/result.json", "seed_1/snapshots/init.npy", "seed_1/snapshots/final.npy"):
        assert (tmp_path / f).exists(), f
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
