"""Splice-site generator (literature PWMs, decoys), readers and the classification report."""
from __future__ import annotations

import numpy as np
import pytest

from sciml.motifs import DONOR_PWM, make_splice_dataset, one_hot, read_sequences
from sciml.motifs.tasks import classification_report


def test_generator_sites_and_decoys():
    ds = make_splice_dataset(4000, length=40, seed=1)
    b = ds.boundary
    seqs = np.array([list(s) for s in ds.sequences])
    donors, acceptors, neither = (seqs[ds.labels == k] for k in (1, 2, 0))
    assert (donors[:, b] == "G").all() and (donors[:, b + 1] == "T").all()
    assert (acceptors[:, b - 2] == "A").all() and (acceptors[:, b - 1] == "G").all()
    # consensus frequencies follow the PWM: donor +5 is G in ~75 % of sites (Zhang 1998)
    assert abs((donors[:, b + 4] == "G").mean() - DONOR_PWM[2, 7]) < 0.05
    # polypyrimidine tract of acceptors
    tract = acceptors[:, b - 15:b - 4]
    assert np.isin(tract, ["C", "T"]).mean() > 0.7
    # decoys: about a quarter of negatives carry GT at the donor position, a quarter AG at the acceptor position
    gt = ((neither[:, b] == "G") & (neither[:, b + 1] == "T")).mean()
    ag = ((neither[:, b - 2] == "A") & (neither[:, b - 1] == "G")).mean()
    assert 0.2 < gt < 0.35 and 0.2 < ag < 0.35
    assert ds.X.shape == (4000, 40, 4) and np.allclose(ds.X.sum(axis=2), 1)
    assert make_splice_dataset(50, seed=3).sequences == make_splice_dataset(50, seed=3).sequences


def test_generator_validation():
    with pytest.raises(ValueError, match="length"):
        make_splice_dataset(10, length=10)
    with pytest.raises(ValueError, match="decoy_fraction"):
        make_splice_dataset(10, decoy_fraction=2)


def test_readers(tmp_path):
    (tmp_path / "s.fasta").write_text(">a label=donor\nACGT\nAC\n>b|acceptor\nTTTTGG\n>c label=neither\nNNACGT\n")
    ds = read_sequences(tmp_path / "s.fasta")
    assert ds.sequences == ["ACGTAC", "TTTTGG", "NNACGT"] and ds.labels.tolist() == [1, 2, 0]
    assert np.allclose(ds.X[2, 0], 0.25)
    (tmp_path / "s.csv").write_text("sequence,label\nacgt,exon\nttga,intron\n")
    ds = read_sequences(tmp_path / "s.csv")
    assert ds.classes == ("exon", "intron") and ds.labels.tolist() == [0, 1]
    (tmp_path / "bad.csv").write_text("sequence,label\nACGT,x\nACG,y\n")
    with pytest.raises(ValueError, match="sequence 1 has length 3"):
        read_sequences(tmp_path / "bad.csv")
    (tmp_path / "bad2.fasta").write_text(">a|donor\nACXT\n")
    with pytest.raises(ValueError, match="invalid character 'X' at position 2"):
        read_sequences(tmp_path / "bad2.fasta")
    (tmp_path / "nolab.fasta").write_text(">a\nACGT\n")
    with pytest.raises(ValueError, match="no label"):
        read_sequences(tmp_path / "nolab.fasta")


def test_one_hot_and_report():
    assert one_hot(["ACGT"])[0].argmax(1).tolist() == [0, 1, 2, 3]
    rep = classification_report([0, 0, 1, 2], [0, 1, 1, 2])
    assert rep["accuracy"] == 0.75
    assert rep["per_class"]["donor"]["precision"] == 0.5 and rep["per_class"]["neither"]["recall"] == 0.5
    assert rep["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
