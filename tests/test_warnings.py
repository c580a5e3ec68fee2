"""Warnings raised deep inside sciml name the user's line (sciml._warnings.user_stacklevel)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sciml.selection import SelectionWarning, lande_arnold


def _too_few_for_gamma() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 4)), columns=list("abcd"))   # 15 quadratic parameters > 12 rows
    df["W"] = rng.gamma(5, 0.2, 12)
    return df


@pytest.mark.parametrize("groups", [None, "g"])
def test_selection_warning_points_at_the_callers_line(groups):
    df = _too_few_for_gamma()
    if groups:
        df = pd.concat([df, _too_few_for_gamma()], ignore_index=True)
        df["g"] = ["x"] * 12 + ["y"] * 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lande_arnold(df, "W", list("abcd"), groups=groups, progress=False)
    ours = [w for w in caught if issubclass(w.category, SelectionWarning)]
    assert ours, "expected a SelectionWarning (quadratic model not estimable)"
    assert all(w.filename == __file__ for w in ours), [(w.filename, w.lineno) for w in ours]
