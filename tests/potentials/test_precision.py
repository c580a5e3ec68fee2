"""float32 / float64 evaluation: agreement within stated tolerances, and no global side effects."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from potentials_testlib import tiny_model

from sciml.potentials import SciMLCalculator

SPECIES = (13, 28, 29, 46, 47, 78, 79)  # the alloy elements of the bundled subset (Al Ni Cu Pd Ag Pt Au)

# Stated tolerances of float32 against float64 for a model with O(1) outputs (eV, Å); measured
# worst cases on these frames: 5e-7 eV/atom, 1e-7 eV/Å, 8e-10 eV/Å^3 (float32 rounding, eps 1.2e-7).
E_TOL_PER_ATOM = 2e-6  # eV/atom
F_TOL = 1e-6  # eV/Å
S_TOL = 1e-8  # eV/Å^3


@pytest.fixture(scope="module")
def alloy_frames():
    from sciml.datasets import load_alloys

    frames = load_alloys()
    return [frames[k] for k in range(0, len(frames), 25)]


def test_float32_agrees_with_float64_on_alloy_frames(alloy_frames):
    m = tiny_model(species=SPECIES)
    c64, c32 = SciMLCalculator(m, dtype="float64"), SciMLCalculator(m, dtype="float32", max_edges=500)
    assert {str(next(c.models[0].parameters()).dtype) for c in (c64, c32)} == {"torch.float64", "torch.float32"}
    worst = np.zeros(3)
    for a in alloy_frames:
        r = []
        for c in (c64, c32):
            b = a.copy()
            b.calc = c
            r.append((b.get_potential_energy(), b.get_forces(), b.get_stress()))
        (e64, f64, s64), (e32, f32, s32) = r
        assert np.abs(f64).max() > 1e-2  # forces are not trivially zero
        worst = np.maximum(worst, [abs(e32 - e64) / len(a), np.abs(f32 - f64).max(), np.abs(s32 - s64).max()])
    assert worst[0] < E_TOL_PER_ATOM, worst
    assert worst[1] < F_TOL, worst
    assert worst[2] < S_TOL, worst
    assert worst[1] > 0  # float32 really ran in float32


@pytest.mark.parametrize("default", [torch.float32, torch.float64])
def test_default_dtype_and_callers_model_unchanged(default, alloy_frames):
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        m = tiny_model(species=SPECIES)  # float64 model
        for dtype in ("float32", "float64", torch.float32, None):
            calc = SciMLCalculator(m, dtype=dtype, device=torch.device("cpu"))
            a = alloy_frames[0].copy()
            a.calc = calc
            a.get_forces()
            a.get_stress()
            assert torch.get_default_dtype() == default
        assert next(m.parameters()).dtype == torch.float64  # the caller's object is not converted
    finally:
        torch.set_default_dtype(old)


def test_bad_dtype_is_named():
    m = tiny_model(species=SPECIES)
    for bad in ("float16", torch.int32):
        with pytest.raises(ValueError, match="dtype must be"):
            SciMLCalculator(m, dtype=bad)
