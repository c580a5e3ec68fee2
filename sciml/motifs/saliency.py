"""What the network looks at: input-gradient saliency of one-hot sequences.

For a sequence ``x`` (length x 4, one-hot) and class score ``s_c`` (the logit),
``gradient`` saliency is ``d s_c / d x`` and ``grad_x_input`` is ``x * d s_c / d x``
(for one-hot input: the gradient at the base actually present). Per-position profiles
average over held-out sequences of each class, scoring each sequence with its own class:
``|d s_c / d x|`` summed over the four channels, or ``|x * d s_c / d x|``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["saliency", "saliency_profile", "saliency_logo"]
_METHODS = ("gradient", "grad_x_input")


def saliency(model: Any, X: np.ndarray, target: int | np.ndarray | None = None, method: str = "gradient") -> np.ndarray:
    """Per-sequence saliency maps, shape (n, length, 4).

    ``model`` is a fitted :class:`sciml.motifs.RNNClassifier` (or any torch module mapping
    (n, L, 4) to class scores); ``target`` is the class whose score is differentiated
    (default: the predicted class; an array gives one class per sequence).

    Example
    -------
    >>> S = saliency(clf, ds.X[:10], target=1)  # doctest: +SKIP
    """
    import torch

    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    net = getattr(model, "module_", model)
    p = next(net.parameters())
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (n, length, 4), got {X.shape}")
    xt = torch.as_tensor(X, dtype=p.dtype, device=p.device).requires_grad_(True)
    was_training = net.training
    # train mode: cuDNN's RNN backward refuses eval mode; the network has no dropout or
    # batch-norm, so train and eval modes compute the same function
    net.train()
    scores = net(xt)
    if target is None:
        tgt = scores.argmax(1)
    else:
        tgt = torch.as_tensor(np.broadcast_to(np.asarray(target), (len(X),)).copy(), device=p.device)
    sel = scores.gather(1, tgt.view(-1, 1)).sum()
    (g,) = torch.autograd.grad(sel, xt)
    net.train(was_training)
    g = g.detach().cpu().numpy()
    return g * X if method == "grad_x_input" else g


def saliency_profile(
    model: Any, X: np.ndarray, y: np.ndarray, classes: Sequence[str] | None = None, method: str = "gradient"
) -> pd.DataFrame:
    """Mean per-position saliency for each class, scoring sequences of class c with class c.

    Returns a DataFrame (rows: positions 0..L-1, columns: class names).

    Example
    -------
    >>> prof = saliency_profile(clf, test.X, test.labels, test.classes)  # doctest: +SKIP
    >>> prof["donor"].idxmax()  # doctest: +SKIP
    30
    """
    y = np.asarray(y)
    ks = np.unique(y)
    names = list(classes) if classes is not None else [str(k) for k in range(int(ks.max()) + 1)]
    cols = {}
    for k in ks:
        idx = np.flatnonzero(y == k)
        S = saliency(model, X[idx], target=int(k), method=method)
        cols[names[k]] = np.abs(S).sum(axis=2).mean(axis=0)
    df = pd.DataFrame(cols)
    df.index.name = "position"
    return df


def saliency_logo(model: Any, X: np.ndarray, y: np.ndarray, cls: int) -> pd.DataFrame:
    """Mean gradient x input per position and base for class ``cls`` (a sequence-logo matrix)."""
    idx = np.flatnonzero(np.asarray(y) == cls)
    if len(idx) == 0:
        raise ValueError(f"no sequences of class {cls}")
    S = saliency(model, X[idx], target=cls, method="grad_x_input").mean(axis=0)
    return pd.DataFrame(S, columns=list("ACGT")).rename_axis("position")
