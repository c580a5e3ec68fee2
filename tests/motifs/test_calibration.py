"""Calibration: ECE against a hand computation and a known-truth simulation, the fitted temperature
against an independent optimiser and a planted temperature, and RNNClassifier.calibrate on a
deliberately over-trained network (lower ECE on fresh windows, unchanged accuracy, saved with the model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from sciml.motifs import RNNClassifier, make_splice_dataset
from sciml.motifs.calibration import (expected_calibration_error, fit_temperature, pool_reliability,
                                      reliability_table, softmax)

torch.set_num_threads(1)


def _draw(rng, p):
    """One label per row of class probabilities ``p``."""
    return (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, p.shape[1] - 1)


def test_ece_by_hand_on_a_tiny_case():
    # 6 predictions over 3 classes, 4 bins of width 0.25:
    #   confidences 0.5, 0.6, 0.7 -> bin (0.5, 0.75]: correct 1, 0, 1; 0.3 -> (0.25, 0.5];
    #   0.95, 0.9 -> (0.75, 1]: correct 1, 0.   (0.5 sits on an edge: it belongs to (0.25, 0.5].)
    proba = np.array([
        [0.50, 0.30, 0.20],  # conf 0.50, predicts 0, label 0: right  -> bin 1
        [0.20, 0.60, 0.20],  # conf 0.60, predicts 1, label 2: wrong  -> bin 2
        [0.10, 0.20, 0.70],  # conf 0.70, predicts 2, label 2: right  -> bin 2
        [0.30, 0.35, 0.35],  # conf 0.35, predicts 1, label 1: right  -> bin 1
        [0.95, 0.03, 0.02],  # conf 0.95, predicts 0, label 0: right  -> bin 3
        [0.05, 0.90, 0.05],  # conf 0.90, predicts 1, label 0: wrong  -> bin 3
    ])
    y = np.array([0, 2, 2, 1, 0, 0])
    # bin 1: 2 windows, accuracy 1, mean conf 0.425 -> |gap| 0.575
    # bin 2: 2 windows, accuracy 0.5, mean conf 0.65  -> |gap| 0.15
    # bin 3: 2 windows, accuracy 0.5, mean conf 0.925 -> |gap| 0.425
    hand = (2 * 0.575 + 2 * 0.15 + 2 * 0.425) / 6
    assert expected_calibration_error(y, proba, n_bins=4) == pytest.approx(hand, abs=1e-12)
    tab = reliability_table(y, proba, n_bins=4)
    assert tab["count"].tolist() == [0, 2, 2, 2]
    np.testing.assert_allclose(tab["confidence"].iloc[1:], [0.425, 0.65, 0.925])
    np.testing.assert_allclose(tab["accuracy"].iloc[1:], [1.0, 0.5, 0.5])
    # one bin: |overall accuracy - mean confidence|
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(abs(4 / 6 - proba.max(1).mean()))
    # pooling two halves gives the table of the whole
    pooled = pool_reliability([reliability_table(y[:3], proba[:3], 4), reliability_table(y[3:], proba[3:], 4)])
    np.testing.assert_allclose(pooled.fillna(-1).to_numpy(), tab.fillna(-1).to_numpy())


def test_ece_is_small_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (20000, 3))
    p = softmax(z)
    y = _draw(rng, p)  # labels drawn from the stated probabilities
    assert expected_calibration_error(y, p) < 0.015  # sampling noise only
    assert expected_calibration_error(y, softmax(3 * z)) > 0.1  # sharpened: overconfident


def test_temperature_matches_an_independent_optimiser_and_a_planted_value():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2.0, (6000, 4))
    y = _draw(rng, softmax(z))
    logits = 2.5 * z  # true temperature 2.5
    fit = fit_temperature(logits, y)

    def nll(T):
        return -log_softmax(logits / T, axis=1)[np.arange(len(y)), y].mean()

    ref = minimize_scalar(nll, bounds=(0.05, 50), method="bounded", options={"xatol": 1e-10})
    assert fit.converged
    assert fit.temperature == pytest.approx(ref.x, rel=1e-5)
    assert fit.nll_after == pytest.approx(ref.fun, rel=1e-9) and fit.nll_before == pytest.approx(nll(1.0))
    assert fit.temperature == pytest.approx(2.5, rel=0.05)
    np.testing.assert_array_equal(fit.bias, 0.0)
    # biases: a planted class shift is recovered (centred), NLL never worse than temperature alone
    shift = np.array([0.8, -0.3, 0.0, -0.5])
    yb = _draw(rng, softmax(z + shift))
    fb = fit_temperature(logits, yb, biases=True)
    ft = fit_temperature(logits, yb)
    assert fb.nll_after <= ft.nll_after + 1e-12
    np.testing.assert_allclose(fb.bias, shift - shift.mean(), atol=0.12)
    assert fb.temperature == pytest.approx(2.5, rel=0.06)


def test_calibration_input_errors():
    with pytest.raises(ValueError, match="class\\(es\\) \\[2\\] absent"):
        fit_temperature(np.zeros((4, 3)), np.array([0, 1, 0, 1]), biases=True)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error([0, 1], [[0.5, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_table([0], [[1.0, 0.0]], n_bins=0)


@pytest.fixture(scope="module")
def overtrained():
    """32 hidden units, 250 training windows, 60 epochs without early stopping: memorised, overconfident."""
    ds = make_splice_dataset(2250, length=32, seed=3)
    train, valid, fresh = ds.split(250, 500, seed=3)
    clf = RNNClassifier(hidden_size=32, epochs=60, patience=None, batch_size=25, lr=5e-3, seed=0).fit(train)
    return clf, train, valid, fresh


def test_calibrating_an_overtrained_rnn_lowers_ece_on_fresh_windows(overtrained, tmp_path):
    clf, train, valid, fresh = overtrained
    assert clf.score(train) > 0.93 and clf.history_["train_loss"].iloc[-1] < 0.2  # it did memorise ...
    assert clf.score(fresh) < clf.score(train) - 0.15  # ... and does not generalise that well
    p0, pred0, acc0 = clf.predict_proba(fresh), clf.predict(fresh), clf.score(fresh)
    ece0 = expected_calibration_error(fresh.labels, p0)
    ece_valid0 = expected_calibration_error(valid.labels, clf.predict_proba(valid))
    assert clf.calibrate(valid) is clf
    p1 = clf.predict_proba(fresh)
    ece1 = expected_calibration_error(fresh.labels, p1)
    assert clf.temperature_ > 1.5  # overconfident logits are softened
    assert ece1 < 0.5 * ece0, (ece0, ece1)
    np.testing.assert_array_equal(clf.predict(fresh), pred0)  # temperature only: same predictions
    assert clf.score(fresh) == acc0
    np.testing.assert_allclose(p1.sum(1), 1.0)
    cal = clf.calibration_
    assert cal["ece_after"] < cal["ece_before"] and cal["nll_after"] < cal["nll_before"] and cal["converged"]
    assert cal["ece_before"] == pytest.approx(ece_valid0, abs=1e-12)
    assert cal["ece_after"] == pytest.approx(expected_calibration_error(valid.labels, clf.predict_proba(valid)))
    # the same with X, y instead of the data set
    T = clf.temperature_
    clf.calibrate(valid.X, valid.labels)
    assert clf.temperature_ == pytest.approx(T, rel=1e-9)
    # saved and loaded with the model
    path = clf.save(tmp_path / "model.pt")
    back = RNNClassifier.load(path)
    np.testing.assert_allclose(back.predict_proba(fresh), p1, rtol=1e-6, atol=1e-9)
    assert back.calibration_ == clf.calibration_ and back.temperature_ == clf.temperature_
    np.testing.assert_array_equal(back.recurrent_weights_, clf.recurrent_weights_)
    np.testing.assert_array_equal(back.initial_weights_, clf.initial_weights_)
    # biases: at least as good a fit on the calibration windows
    nll_t = cal["nll_after"]
    clf.calibrate(valid, biases=True)
    assert clf.calibration_["nll_after"] <= nll_t + 1e-9 and len(clf.calibration_["biases"]) == 3
    assert RNNClassifier.load(clf.save(tmp_path / "b.pt")).class_bias_.tolist() == clf.class_bias_.tolist()
    # refitting resets the calibration
    clf2 = RNNClassifier(hidden_size=8, epochs=1, seed=0).fit(train)
    assert clf2.temperature_ == 1.0 and clf2.calibration_ is None


def test_calibrate_errors(overtrained, tmp_path):
    clf, _, valid, _ = overtrained
    with pytest.raises(RuntimeError, match="not fitted"):
        RNNClassifier().calibrate(valid)
    with pytest.raises(TypeError, match="either a data set"):
        clf.calibrate(valid, valid.labels)
    with pytest.raises(ValueError, match="needs labels"):
        clf.calibrate(valid.X)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        clf.calibrate(valid.X[:2], np.array([0, 5]))
    with pytest.raises(ValueError, match="does not exist"):
        RNNClassifier.load(tmp_path / "nope.pt")
