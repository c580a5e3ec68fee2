"""Calibration of classifier probabilities: temperature scaling and the expected calibration error.

*Temperature scaling* (Guo, Pleiss, Sun & Weinberger, ICML 2017): a trained network's
logits ``z`` become ``softmax(z / T + b)``. The temperature ``T > 0`` (parametrised as
``log T``, so it stays positive) and, optionally, per-class biases ``b`` (centred,
``sum(b) = 0``, since a common shift does not change a softmax; "vector scaling" without
the per-class slopes) are fitted by minimising the negative log-likelihood of held-out
labels with gradients (torch, L-BFGS with a strong-Wolfe line search, float64). A
temperature alone never changes the arg-max, so accuracy is unchanged; biases can.

*Expected calibration error* (Naeini, Cooper & Hauskrecht, AAAI 2015; Guo et al. 2017):
the confidence of a prediction is its largest class probability. With ``n_bins`` bins of
equal width on [0, 1] -- bin ``m`` holds confidences in ``((m - 1) / M, m / M]`` (the first
bin also holds 0) --

    ECE = sum_m (|B_m| / N) * |accuracy(B_m) - mean confidence(B_m)|,

the gap between how often the predictions are right and how sure they are, averaged over
bins weighted by their size. 0 is perfect; it is reported on the windows it is computed on
(the calibration set during :meth:`RNNClassifier.calibrate`; fresh windows for an honest
figure). The default of 15 bins follows Guo et al.

Example
-------
>>> import numpy as np
>>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
>>> round(expected_calibration_error([0, 1, 1], proba, n_bins=10), 4)  # (0.1 + 0.8 + 0.3) / 3
0.4
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["expected_calibration_error", "reliability_table", "pool_reliability", "ece_of_table", "fit_temperature",
           "TemperatureScaling"]


def _check_proba(y: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(proba, dtype=float)
    if P.ndim != 2 or P.shape[0] == 0:
        raise ValueError(f"proba must have shape (n_samples, n_classes) with n_samples > 0, got {P.shape}")
    if not np.all(np.isfinite(P)) or np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("proba must hold finite, non-negative rows that sum to 1")
    y = _check_labels(y, P.shape[0], P.shape[1])
    return y, P


def _check_labels(y: Any, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, got values {y.min()}..{y.max()}")
    return y.astype(np.int64)


def reliability_table(y: Any, proba: Any, n_bins: int = 15) -> pd.DataFrame:
    """Per confidence bin (equal width on [0, 1]): ``lower``, ``upper``, ``count``, mean
    ``confidence``, ``accuracy`` and ``gap`` = accuracy - confidence (NaN for empty bins).

    The data of a reliability diagram; :func:`expected_calibration_error` is
    ``sum(count * |gap|) / sum(count)`` over the non-empty bins.
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    y, P = _check_proba(y, proba)
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], conf, side="left")  # bin m holds ((m-1)/M, m/M]; 0 goes to bin 0
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return pd.DataFrame({"lower": edges[:-1], "upper": edges[1:], "count": count, "confidence": mean_conf,
                         "accuracy": acc, "gap": acc - mean_conf}, index=pd.RangeIndex(n_bins, name="bin"))


def pool_reliability(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One reliability table from several with the same bins (e.g. one per seed): the table of
    all their windows together (counts add, confidence and accuracy are count-weighted means)."""
    if not tables:
        raise ValueError("no reliability tables to pool")
    first = tables[0]
    for t in tables[1:]:
        if len(t) != len(first) or not np.allclose(t["upper"], first["upper"]):
            raise ValueError("reliability tables to pool must use the same bins")
    count = sum(t["count"].to_numpy() for t in tables)
    conf = sum(np.nan_to_num(t["confidence"].to_numpy() * t["count"].to_numpy()) for t in tables)
    acc = sum(np.nan_to_num(t["accuracy"].to_numpy() * t["count"].to_numpy()) for t in tables)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, acc = conf / count, acc / count
    return pd.DataFrame({"lower": first["lower"].to_numpy(), "upper": first["upper"].to_numpy(), "count": count,
                         "confidence": conf, "accuracy": acc, "gap": acc - conf}, index=first.index.copy())


def ece_of_table(tab: pd.DataFrame) -> float:
    """The expected calibration error of a reliability table (``sum(count * |gap|) / sum(count)``)."""
    used = tab["count"] > 0
    return float((tab.loc[used, "count"] * tab.loc[used, "gap"].abs()).sum() / tab["count"].sum())


def expected_calibration_error(y: Any, proba: Any, n_bins: int = 15) -> float:
    """Expected calibration error of class probabilities ``proba`` (n, K) for labels ``y``
    (equal-width confidence bins; see the module docstring)."""
    return ece_of_table(reliability_table(y, proba, n_bins))


@dataclass
class TemperatureScaling:
    """A fitted temperature (and per-class biases): ``calibrated logits = logits / temperature + bias``."""

    temperature: float
    bias: np.ndarray
    nll_before: float
    nll_after: float
    converged: bool
    n_iter: int
    info: dict = field(default_factory=dict)

    def transform(self, logits: Any) -> np.ndarray:
        """Calibrated logits (same shape)."""
        return np.asarray(logits, dtype=float) / self.temperature + self.bias

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated class probabilities."""
        return softmax(self.transform(logits))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax (stable)."""
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: Any, y: Any, biases: bool = False, max_iter: int = 200) -> TemperatureScaling:
    """Fit ``T`` (and centred per-class biases) minimising the held-out NLL of ``softmax(logits / T + b)``.

    Gradient-based: torch L-BFGS (strong-Wolfe line search) on ``log T`` (and ``b``) in float64.
    ``converged`` is True when the final gradient norm is below 1e-5 per parameter scale.
    With ``biases=True`` every class must occur in ``y`` (an absent class's bias has no
    finite optimum).

    Example
    -------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 2000)
    >>> logits = 3.0 * (np.eye(3)[y] + rng.normal(0, 0.7, (2000, 3)))  # overconfident scores
    >>> fit_temperature(logits, y).temperature > 1
    True
    """
    import torch

    Z = np.asarray(logits, dtype=float)
    if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] < 2:
        raise ValueError(f"logits must have shape (n_samples, n_classes >= 2), got {Z.shape}")
    if not np.all(np.isfinite(Z)):
        raise ValueError("logits contain NaN/inf")
    y = _check_labels(y, Z.shape[0], Z.shape[1])
    if biases:
        missing = sorted(set(range(Z.shape[1])) - set(np.unique(y).tolist()))
        if missing:
            raise ValueError(f"biases=True needs every class in the calibration labels; class(es) {missing} absent")
    L = torch.as_tensor(Z, dtype=torch.float64)
    t = torch.as_tensor(y)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b_raw = torch.zeros(Z.shape[1], dtype=torch.float64, requires_grad=biases)
    params = [log_t, b_raw] if biases else [log_t]

    def nll() -> torch.Tensor:
        return torch.nn.functional.cross_entropy(L * torch.exp(-log_t) + (b_raw - b_raw.mean()), t)

    with torch.no_grad():
        before = float(torch.nn.functional.cross_entropy(L, t))
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    opt.step(closure)
    loss = float(closure().detach())
    grad = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    T = float(torch.exp(log_t.detach()))
    bias = (b_raw - b_raw.mean()).detach().numpy().copy()
    n_iter = int(opt.state[log_t].get("n_iter", 0))
    if not 1e-3 < T < 1e3:
        warnings.warn(f"fitted temperature {T:.3g} is extreme: the calibration set is (nearly) separable "
                      "or uninformative; use more or harder held-out windows", RuntimeWarning, stacklevel=2)
    return TemperatureScaling(temperature=T, bias=bias, nll_before=before, nll_after=loss,
                              converged=bool(grad < 1e-5), n_iter=n_iter, info={"grad_norm": grad})
