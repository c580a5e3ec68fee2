"""sciml.metrics: the one implementation of error and uncertainty metrics."""
import numpy as np
import pytest
from scipy.stats import norm, spearmanr

from sciml.metrics import (
    EV_PER_A3_TO_GPA,
    ErrorAccumulator,
    coverage,
    error_metrics,
    metrics_from_sums,
    uncertainty_metrics,
)


def _data(seed=0, sizes=(3, 5, 4)):
    rng = np.random.default_rng(seed)
    e_ref = rng.normal(size=len(sizes))
    e_pred = e_ref + rng.normal(scale=0.01, size=len(sizes))
    f_ref = [rng.normal(size=(n, 3)) for n in sizes]
    f_pred = [f + rng.normal(scale=0.05, size=f.shape) for f in f_ref]
    s_ref = rng.normal(scale=0.01, size=(len(sizes), 6))
    s_pred = s_ref + rng.normal(scale=1e-4, size=s_ref.shape)
    return e_pred, e_ref, np.array(sizes), f_pred, f_ref, s_pred, s_ref


def test_error_metrics_match_direct_formulas():
    e_pred, e_ref, n, f_pred, f_ref, s_pred, s_ref = _data()
    m = error_metrics(e_pred, e_ref, n, f_pred, f_ref, s_pred, s_ref)
    de = e_pred - e_ref
    df = np.concatenate([(p - r).ravel() for p, r in zip(f_pred, f_ref)])
    ds = (s_pred - s_ref).ravel()
    assert m["n_structures"] == 3 and m["n_atoms"] == 12
    assert m["energy_mae_meV"] == pytest.approx(1000 * np.abs(de).mean(), rel=1e-12)
    assert m["energy_rmse_meV"] == pytest.approx(1000 * np.sqrt((de**2).mean()), rel=1e-12)
    assert m["energy_mae_meV_per_atom"] == pytest.approx(1000 * np.abs(de / n).mean(), rel=1e-12)
    assert m["forces_mae_meV_per_A"] == pytest.approx(1000 * np.abs(df).mean(), rel=1e-12)
    assert m["forces_rmse_meV_per_A"] == pytest.approx(1000 * np.sqrt((df**2).mean()), rel=1e-12)
    assert m["stress_mae_GPa"] == pytest.approx(160.21766208 * np.abs(ds).mean(), rel=1e-12)
    assert EV_PER_A3_TO_GPA == pytest.approx(160.2176634, rel=1e-6)   # 1 eV/Å^3 = 160.2 GPa (CODATA)


def test_accumulator_in_batches_equals_one_shot_and_sums_are_reducible():
    e_pred, e_ref, n, f_pred, f_ref, s_pred, s_ref = _data(1, sizes=(2, 7, 3, 5))
    one = error_metrics(e_pred, e_ref, n, f_pred, f_ref, s_pred, s_ref)
    parts = []
    for idx in ([0, 1], [2, 3]):
        acc = ErrorAccumulator()
        acc.add(e_pred[idx] - e_ref[idx], n[idx], np.concatenate([f_pred[i] - f_ref[i] for i in idx]),
                s_pred[idx] - s_ref[idx])
        parts.append(acc.sums)
    merged = metrics_from_sums(parts[0] + parts[1])          # what an all-reduce does
    for k, v in one.items():
        assert merged[k] == pytest.approx(v, rel=1e-12), k


def test_coverage_and_uncertainty_metrics_on_gaussian_errors():
    rng = np.random.default_rng(3)
    std = rng.uniform(0.5, 2.0, size=200_000)
    err = rng.normal(size=std.size) * std
    assert coverage(err, std, 0.95) == pytest.approx(0.95, abs=0.003)
    u = uncertainty_metrics(err, std, "forces")
    assert u["forces_coverage_68"] == pytest.approx(0.6827, abs=0.004)
    assert u["forces_coverage_95"] == pytest.approx(0.95, abs=0.003)
    assert u["forces_std_mean_meV_per_A"] == pytest.approx(1000 * std.mean(), rel=1e-12)
    assert u["forces_error_to_std_ratio"] == pytest.approx(1.0, abs=0.01)
    assert u["forces_spearman_std_vs_error"] == pytest.approx(spearmanr(std, np.abs(err)).statistic, abs=1e-12)
    # over-confident predictions (std too small by 2x) cover less, as the Gaussian says
    assert coverage(err, std / 2, 0.95) == pytest.approx(2 * norm.cdf(1.959964 / 2) - 1, abs=0.004)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n_atoms"):
        ErrorAccumulator().add([0.1, 0.2], [3])
    with pytest.raises(ValueError, match="forces: predictions have shape"):
        error_metrics([1.0], [1.0], [2], np.zeros((1, 2, 3)), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="coverage level"):
        coverage([0.1], [1.0], 1.5)
    with pytest.raises(ValueError, match="quantity"):
        uncertainty_metrics([0.1, 0.2, 0.3], [1, 1, 1], "charges")
