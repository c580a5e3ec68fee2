"""Recurrent classifiers trained by backpropagation through time (torch).

The default cell is an Elman network, ``h_t = tanh(W_ih x_t + b_ih + W h_{t-1} + b_hh)``,
read out from the last hidden state; its hidden-to-hidden matrix ``W`` (torch's
``weight_hh_l0``, ``W[j, i]`` = weight from unit ``i`` to unit ``j``) is "the circuit"
analysed by :mod:`sciml.motifs`. GRU and LSTM cells are options; their circuit is the
candidate-state block of ``weight_hh_l0`` (GRU ``n`` gate, LSTM ``g`` gate).

Symmetry breaking
-----------------
If all hidden units start with identical parameters (same input weights, same
recurrent weights to and from every unit, same biases and read-out weights), then every
unit computes the same activation at every time step, receives the same gradient under
BPTT, and gets the same update from SGD or Adam (which act elementwise). The units stay
identical forever: the network behaves like a single unit and its recurrent matrix is a
constant matrix with no structure. Random initialisation breaks this symmetry, lets units
specialise, and is the reason trained circuits have any wiring pattern to analyse.
Both random schemes (``init="orthogonal"``, the default, and ``"uniform"``) break it.
``RNNClassifier(init="identical")`` builds the symmetric network so this can be checked
(see ``tests/motifs/test_rnn.py``).
"""
from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np

from sciml._io import atomic_torch_save, atomic_write

from .calibration import expected_calibration_error, fit_temperature, softmax

__all__ = ["RNNClassifier", "RecurrentNet", "load_snapshots"]

_CELLS = ("rnn", "gru", "lstm")


def _torch():
    import torch

    return torch


def RecurrentNet(n_inputs: int, hidden_size: int, n_classes: int, cell: str = "rnn", readout: str = "last"):  # noqa: N802
    """Build the torch module: one recurrent layer + linear read-out of the last hidden state
    (``readout="last"``) or of the time-averaged hidden states (``"mean"``)."""
    torch = _torch()
    nn = torch.nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            kind = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
            kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
            self.cell = cell
            self.rnn = kind(n_inputs, hidden_size, batch_first=True, **kw)
            self.readout = nn.Linear(hidden_size, n_classes)

        def forward(self, x):
            out, _ = self.rnn(x)
            h = out.mean(dim=1) if readout == "mean" else out[:, -1, :]
            return self.readout(h)

        def recurrent_matrix(self) -> np.ndarray:
            W = self.rnn.weight_hh_l0.detach().cpu().numpy()
            H = W.shape[1]
            if self.cell == "rnn":
                return W.copy()
            return W[2 * H:3 * H].copy()  # GRU: n gate; LSTM: g (cell candidate) gate

    return _Net()


class RNNClassifier:
    """Sequence classifier (scikit-learn style) trained with BPTT, Adam, gradient clipping and
    early stopping on a validation split; snapshots of the weights are kept in memory and
    optionally written to disk.

    Parameters
    ----------
    hidden_size:
        Number of hidden units (nodes of the circuit graph).
    cell:
        ``"rnn"`` (Elman, tanh), ``"gru"`` or ``"lstm"``.
    readout:
        ``"last"`` (class scores from the last hidden state) or ``"mean"`` (from the
        time-averaged hidden states; shorter gradient paths, easier BPTT).
    epochs, batch_size, lr, weight_decay:
        Optimisation settings (Adam).
    clip:
        Maximum gradient norm (``torch.nn.utils.clip_grad_norm_``); ``None`` disables.
    patience:
        Early stopping: stop after ``patience`` epochs without improvement of the validation
        loss and restore the best weights (``None`` disables).
    valid_fraction:
        Share of the training data held out for early stopping when ``fit`` gets no
        explicit validation set.
    snapshot_dir, snapshot_every:
        Where and how often (in epochs) to write ``epoch_XXXX.pt`` (state dict + circuit
        matrix); the initial (epoch 0) and final (best) weights are always written.
    init:
        ``"orthogonal"`` (default: random orthogonal hidden-to-hidden blocks, which keeps
        BPTT gradients from vanishing and trains this task several times faster),
        ``"uniform"`` (torch's default U(-1/sqrt(H), 1/sqrt(H)) for everything) or
        ``"identical"`` (all hidden units identical; a demonstration of why symmetry must
        be broken). Input and read-out weights are always torch's random defaults except
        for ``"identical"``.
    dtype:
        ``"float32"`` or ``"float64"``.
    seed, device, progress:
        Seed for initialisation and shuffling; torch device (``None``: CUDA if available);
        show a progress bar.

    Attributes
    ----------
    module_, history_ (DataFrame: epoch, train_loss, valid_loss, valid_accuracy), best_epoch_,
    snapshots_ (list of ``(epoch, W)``), snapshot_paths_, classes_, n_features_in_, n_classes_;
    after :meth:`calibrate`: temperature_, class_bias_, calibration_ (ECE and NLL before/after).

    Example
    -------
    >>> from sciml.motifs import make_splice_dataset
    >>> ds = make_splice_dataset(600, length=40, seed=0)
    >>> clf = RNNClassifier(hidden_size=16, epochs=3, seed=0).fit(ds.X, ds.labels)
    >>> clf.recurrent_weights_.shape
    (16, 16)
    """

    def __init__(
        self,
        hidden_size: int = 32,
        cell: str = "rnn",
        readout: str = "last",
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 5e-3,
        weight_decay: float = 0.0,
        clip: float | None = 1.0,
        patience: int | None = 5,
        valid_fraction: float = 0.15,
        snapshot_dir: str | Path | None = None,
        snapshot_every: int = 5,
        init: str = "orthogonal",
        dtype: str = "float32",
        seed: int = 0,
        device: str | None = None,
        progress: bool = False,
    ) -> None:
        self.hidden_size = hidden_size
        self.cell = cell
        self.readout = readout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip = clip
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.snapshot_dir = snapshot_dir
        self.snapshot_every = snapshot_every
        self.init = init
        self.dtype = dtype
        self.seed = seed
        self.device = device
        self.progress = progress

    # -------------------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.cell not in _CELLS:
            raise ValueError(f"cell must be one of {_CELLS}, got {self.cell!r}")
        if self.readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {self.readout!r}")
        if not isinstance(self.hidden_size, int) or self.hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive integer, got {self.hidden_size!r}")
        if not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if self.init not in ("orthogonal", "uniform", "identical"):
            raise ValueError(f"init must be 'orthogonal', 'uniform' or 'identical', got {self.init!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not 0 <= self.valid_fraction < 1:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")

    @staticmethod
    def _check_xy(X: Any, y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """``(X, y)`` as arrays; ``X`` may be a data set with ``.X`` and ``.labels`` (then ``y`` is None)."""
        if hasattr(X, "X") and hasattr(X, "labels"):  # SequenceDataset (or alike)
            if y is not None:
                raise TypeError("pass either a data set (with .X and .labels) or X and y, not both")
            X, y = X.X, X.labels
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"X must have shape (n_sequences, length, n_features), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN/inf")
        if y is None:
            return X, None
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        return X, y.astype(np.int64)

    def _make_identical(self, net) -> None:
        torch = _torch()
        with torch.no_grad():
            g = torch.Generator().manual_seed(self.seed)
            for name, p in net.rnn.named_parameters():
                if name.startswith("weight_ih"):
                    row = torch.randn(p.shape[1], generator=g, dtype=p.dtype) * 0.5
                    p.copy_(row.expand_as(p))
                elif name.startswith("weight_hh"):
                    p.fill_(0.1 / p.shape[1])
                else:
                    p.fill_(0.01)
            col = torch.randn(net.readout.weight.shape[0], 1, generator=g, dtype=net.readout.weight.dtype)
            net.readout.weight.copy_(col.expand_as(net.readout.weight))
            net.readout.bias.zero_()

    def _snapshot(self, epoch: int, tag: str | None = None) -> None:
        W = self.module_.recurrent_matrix()
        self.snapshots_.append((epoch, W))
        if self.snapshot_dir is not None:
            d = Path(self.snapshot_dir)
            path = d / (f"{tag}.pt" if tag else f"epoch_{epoch:04d}.pt")
            atomic_torch_save({"epoch": epoch, "state_dict": copy.deepcopy(self.module_.state_dict()),
                               "W": W, "cell": self.cell, "hidden_size": self.hidden_size}, path)
            with atomic_write(path.with_suffix(".npy"), "wb") as fh:
                np.save(fh, W)
            self.snapshot_paths_.append(str(path))

    def _split_data(self, X: Any, y: Any, X_valid: Any, y_valid: Any):
        """Validated training and validation arrays (a held-out share of X when no validation set)."""
        X, y = self._check_xy(X, y)
        if y is None:
            raise ValueError("fit needs labels: pass X and y, or a data set with .X and .labels")
        if X_valid is None and self.valid_fraction > 0 and self.patience is not None:
            perm = np.random.default_rng(self.seed).permutation(len(X))
            nv = max(1, int(round(self.valid_fraction * len(X))))
            X_valid, y_valid = X[perm[:nv]], y[perm[:nv]]
            X, y = X[perm[nv:]], y[perm[nv:]]
        elif X_valid is not None:
            X_valid, y_valid = self._check_xy(X_valid, y_valid)
        return X, y, X_valid, y_valid

    def _build_net(self, n_inputs: int, n_classes: int, dev, dt):
        """The torch module, initialised as ``init`` says (seeded)."""
        torch = _torch()
        torch.manual_seed(self.seed)
        net = RecurrentNet(n_inputs, self.hidden_size, n_classes, self.cell, self.readout).to(device=dev, dtype=dt)
        if self.init == "identical":
            self._make_identical(net)
        elif self.init == "orthogonal":
            with torch.no_grad():
                Whh = net.rnn.weight_hh_l0
                H = Whh.shape[1]
                for k in range(Whh.shape[0] // H):
                    torch.nn.init.orthogonal_(Whh[k * H:(k + 1) * H])
        return net

    def fit(self, X: Any, y: Any = None, X_valid: Any = None, y_valid: Any = None) -> "RNNClassifier":
        """Train on one-hot sequences ``X`` (n, length, 4) with labels ``y``; returns ``self``.

        ``X`` (and ``X_valid``) may also be a :class:`~sciml.motifs.SequenceDataset` (its ``.X``
        and ``.labels``). Fitting resets any calibration (see :meth:`calibrate`).
        """
        self._validate()
        torch = _torch()
        from sciml._runtime import resolve_device

        X, y, X_valid, y_valid = self._split_data(X, y, X_valid, y_valid)
        self.classes_ = np.unique(y)
        n_classes = int(max(y.max(), (y_valid.max() if y_valid is not None else 0))) + 1
        self.n_features_in_ = X.shape[2]
        self.n_classes_ = n_classes
        dev = resolve_device(self.device)
        dt = torch.float64 if self.dtype == "float64" else torch.float32
        self.module_ = self._build_net(X.shape[2], n_classes, dev, dt)
        self.snapshots_, self.snapshot_paths_ = [], []
        self._reset_calibration()
        self._snapshot(0, "init")
        valid = None
        if X_valid is not None:
            valid = (torch.as_tensor(X_valid, dtype=dt, device=dev), torch.as_tensor(y_valid, device=dev))
        best, rows = self._train(torch.as_tensor(X, dtype=dt, device=dev), torch.as_tensor(y, device=dev), valid)
        if self.epochs > 0:
            self.module_.load_state_dict(best[2])
        self.best_epoch_ = int(best[1])
        import pandas as pd

        self.history_ = pd.DataFrame(rows)
        self._snapshot(self.best_epoch_, "final")
        self.module_.eval()
        return self

    def _train(self, Xt, yt, valid) -> tuple[tuple, list[dict]]:
        """BPTT epochs with Adam, clipping and early stopping; returns (best (loss, epoch, state), history rows)."""
        torch = _torch()
        from sciml._runtime import quiet_progress

        net = self.module_
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        lossf = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(self.seed)
        best = (math.inf, 0, copy.deepcopy(net.state_dict()))
        rows = []
        bad = 0
        epochs = range(1, self.epochs + 1)
        if self.progress and not quiet_progress():
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="BPTT epochs", unit="epoch")
        for epoch in epochs:
            net.train()
            perm = torch.randperm(len(Xt), generator=gen).to(Xt.device)
            tot = 0.0
            for k in range(0, len(Xt), self.batch_size):
                idx = perm[k:k + self.batch_size]
                opt.zero_grad()
                loss = lossf(net(Xt[idx]), yt[idx])
                loss.backward()
                if self.clip is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip)
                opt.step()
                tot += float(loss.detach()) * len(idx)
            row = {"epoch": epoch, "train_loss": tot / len(Xt)}
            if valid is not None:
                net.eval()
                with torch.no_grad():
                    out = net(valid[0])
                    vl = float(lossf(out, valid[1]))
                    row.update(valid_loss=vl, valid_accuracy=float((out.argmax(1) == valid[1]).float().mean()))
                if vl < best[0] - 1e-6:
                    best, bad = (vl, epoch, copy.deepcopy(net.state_dict())), 0
                else:
                    bad += 1
            else:
                best = (row["train_loss"], epoch, copy.deepcopy(net.state_dict()))
            rows.append(row)
            if not np.isfinite(row["train_loss"]):
                raise FloatingPointError(f"training diverged at epoch {epoch} (loss {row['train_loss']}); lower lr")
            if self.snapshot_every and epoch % self.snapshot_every == 0 and epoch < self.epochs:
                self._snapshot(epoch)
            if self.patience is not None and valid is not None and bad >= self.patience:
                break
        return best, rows

    # -------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("this RNNClassifier is not fitted yet; call fit(X, y) first")

    def _reset_calibration(self) -> None:
        self.temperature_ = 1.0
        self.class_bias_ = np.zeros(self.n_classes_)
        self.calibration_ = None

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated network outputs, shape (n, n_classes)."""
        torch = _torch()
        p = next(self.module_.parameters())
        out = []
        with torch.no_grad():
            for k in range(0, len(X), 1024):
                out.append(self.module_(torch.as_tensor(X[k:k + 1024], dtype=p.dtype, device=p.device)).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores, shape (n, n_classes): the network's logits, divided by ``temperature_`` and
        shifted by ``class_bias_`` once :meth:`calibrate` has run (log-probabilities up to a constant)."""
        self._check_fitted()
        X, _ = self._check_xy(X)
        return self._logits(X) / self.temperature_ + self.class_bias_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (calibrated after :meth:`calibrate`), shape (n, n_classes)."""
        return softmax(self.decision_function(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class indices (the arg-max of :meth:`predict_proba`)."""
        return self.decision_function(X).argmax(axis=1)

    def score(self, X: Any, y: Any = None) -> float:
        """Accuracy on ``X, y`` (or a data set)."""
        X, y = self._check_xy(X, y)
        return float((self.predict(X) == y).mean())

    def calibrate(self, X: Any, y: Any = None, biases: bool = False, n_bins: int = 15,
                  max_iter: int = 200) -> "RNNClassifier":
        """Fit a temperature (and, with ``biases=True``, per-class biases) on held-out windows.

        Minimises the negative log-likelihood of ``softmax(logits / T + b)`` on ``X, y`` (or a
        data set with ``.X`` and ``.labels``; never the training windows) with gradients (torch
        L-BFGS, ``T`` parametrised by ``log T``); see :mod:`sciml.motifs.calibration`. Afterwards
        :meth:`predict_proba` returns calibrated probabilities; a temperature alone leaves every
        prediction (hence the accuracy) unchanged. Calibrating again starts from the raw logits.

        Sets ``temperature_``, ``class_bias_`` and ``calibration_`` (a dict: ``temperature``,
        ``biases``, ``ece_before``, ``ece_after`` (expected calibration error on these windows,
        ``n_bins`` equal-width bins), ``nll_before``, ``nll_after``, ``n``, ``converged``,
        ``n_iter``). Saved and loaded with the model (:meth:`save`, :meth:`load`). Returns ``self``.

        Example
        -------
        >>> clf = RNNClassifier(hidden_size=8, epochs=2).fit(train)  # doctest: +SKIP
        >>> clf.calibrate(valid).calibration_["ece_after"]  # doctest: +SKIP
        """
        self._check_fitted()
        X, y = self._check_xy(X, y)
        if y is None:
            raise ValueError("calibrate needs labels: pass X and y, or a data set with .X and .labels")
        if y.min() < 0 or y.max() >= self.n_classes_:
            raise ValueError(f"labels must be in 0..{self.n_classes_ - 1}, got values {y.min()}..{y.max()}")
        logits = self._logits(X)
        fit = fit_temperature(logits, y, biases=biases, max_iter=max_iter)
        self.temperature_ = fit.temperature
        self.class_bias_ = fit.bias
        self.calibration_ = {
            "temperature": fit.temperature, "biases": fit.bias.tolist() if biases else None, "n": int(len(y)),
            "n_bins": int(n_bins), "ece_before": expected_calibration_error(y, softmax(logits), n_bins),
            "ece_after": expected_calibration_error(y, fit.predict_proba(logits), n_bins),
            "nll_before": fit.nll_before, "nll_after": fit.nll_after, "converged": fit.converged,
            "n_iter": fit.n_iter,
        }
        return self

    # -------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted model (settings, weights, classes, history, calibration) to one file."""
        self._check_fitted()
        params = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.get_params().items()}
        state = {
            "format": "sciml.motifs.RNNClassifier/1", "params": params,
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "n_features_in": int(self.n_features_in_), "n_classes": int(self.n_classes_),
            "classes": self.classes_.tolist(), "best_epoch": int(self.best_epoch_),
            "history": self.history_.to_dict(orient="list"), "temperature": float(self.temperature_),
            "class_bias": np.asarray(self.class_bias_, dtype=float).tolist(), "calibration": self.calibration_,
            "initial_weights": self.initial_weights_.tolist(),
        }
        atomic_torch_save(state, Path(path))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = "cpu") -> "RNNClassifier":
        """Read a model written by :meth:`save` (predictions, calibration and history included)."""
        torch = _torch()
        import pandas as pd

        path = Path(path)
        if not path.exists():
            raise ValueError(f"model file {str(path)!r} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != "sciml.motifs.RNNClassifier/1":
            raise ValueError(f"{str(path)!r} is not a model written by RNNClassifier.save")
        clf = cls(**{**state["params"], "device": device, "snapshot_dir": None})
        from sciml._runtime import resolve_device

        dt = torch.float64 if clf.dtype == "float64" else torch.float32
        net = RecurrentNet(state["n_features_in"], clf.hidden_size, state["n_classes"], clf.cell, clf.readout)
        net.load_state_dict(state["state_dict"])
        clf.module_ = net.to(device=resolve_device(device), dtype=dt).eval()
        clf.n_features_in_, clf.n_classes_ = state["n_features_in"], state["n_classes"]
        clf.classes_ = np.asarray(state["classes"])
        clf.best_epoch_ = state["best_epoch"]
        clf.history_ = pd.DataFrame(state["history"])
        clf.temperature_ = state["temperature"]
        clf.class_bias_ = np.asarray(state["class_bias"], dtype=float)
        clf.calibration_ = state["calibration"]
        clf.snapshots_ = [(0, np.asarray(state["initial_weights"])), (clf.best_epoch_, net.recurrent_matrix())]
        clf.snapshot_paths_ = []
        return clf

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor settings (scikit-learn convention)."""
        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    @property
    def recurrent_weights_(self) -> np.ndarray:
        """The circuit: hidden-to-hidden matrix of the fitted (best) network, ``W[j, i]``: i -> j."""
        self._check_fitted()
        return self.module_.recurrent_matrix()

    @property
    def initial_weights_(self) -> np.ndarray:
        """The circuit at initialisation (epoch 0)."""
        self._check_fitted()
        return self.snapshots_[0][1]


def load_snapshots(directory: str | Path) -> list[tuple[int, str, np.ndarray]]:
    """``(epoch, name, W)`` for every ``*.npy`` snapshot written by :class:`RNNClassifier`."""
    directory = Path(directory)
    out = []
    for p in sorted(directory.glob("*.npy")):
        W = np.load(p)
        if p.stem == "init":
            ep = 0
        elif p.stem.startswith("epoch_"):
            ep = int(p.stem.split("_")[1])
        else:
            import torch

            ep = int(torch.load(p.with_suffix(".pt"), weights_only=False)["epoch"])
        out.append((ep, p.stem, W))
    if not out:
        raise ValueError(f"no weight snapshots (*.npy) in {str(directory)!r}")
    return sorted(out, key=lambda t: (t[0], t[1] == "final"))
