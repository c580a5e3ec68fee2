"""FLARE-style on-the-fly learning of the local GP (sciml.gp.active.on_the_fly) on a tiny EMT alloy."""
from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT

from sciml.gp.active import on_the_fly

from local_testdata import alloy_set, triclinic_alloy


def test_on_the_fly_labels_uncertain_frames_and_grows_the_model(tmp_path):
    start = triclinic_alloy(7, rattle=0.02)
    calls = []

    class CountingEMT(EMT):
        def calculate(self, *a, **k):
            calls.append(1)
            super().calculate(*a, **k)

    res = on_the_fly(start, reference=CountingEMT(), steps=10, std_threshold=0.05, n_add=2, refit_every=2,
                     max_reference_calls=5, temperature_K=900, timestep_fs=4.0, test_frames=alloy_set(3, seed=50,
                     repeat=(2, 2, 2)), gp_params=dict(cutoff=4.0, n_max=3, l_max=2, max_iter=30), out=tmp_path,
                     progress=False)
    assert len(res.log) == 10
    assert res.reference_calls == len(res.frames) == 2 + len(res.labels) <= 5
    assert len(calls) >= res.reference_calls                    # every labelled frame went to the reference
    assert len(res.labels) >= 1
    lab = res.labels
    assert (lab["max_local_std"] > lab["threshold"]).all()
    assert res.log["labelled"].sum() == len(lab)
    assert np.all(np.diff(lab["n_sparse"]) > 0) and lab["n_sparse"].iloc[0] > 16
    assert lab["retuned"].tolist()[:2] == [False, True]
    assert (lab["forces_mae_meV_per_A"] > 0).all() and "test_forces_mae_meV_per_A" in lab
    for f in ("md_log.csv", "labels.csv", "dataset.extxyz", "model.pt"):
        assert (tmp_path / f).exists()
    assert "reference calls" in res.summary()


def test_on_the_fly_rejects_bad_settings():
    start = triclinic_alloy(8)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        on_the_fly(start, "emt", steps=0)
    with pytest.raises(ValueError, match="std_threshold must be positive"):
        on_the_fly(start, "emt", std_threshold=0.0)
    with pytest.raises(ValueError, match="max_reference_calls"):
        on_the_fly(start, "emt", max_reference_calls=1)
