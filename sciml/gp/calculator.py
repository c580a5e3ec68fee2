"""ASE calculator for a fitted or saved GP potential of either kind, with uncertainties in ``results``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .loading import load_model

__all__ = ["GPCalculator"]


class GPCalculator(Calculator):
    """ASE calculator: GP energy (eV) and forces (eV/Å) plus ``energy_std`` and ``forces_std`` in ``results``.

    Parameters
    ----------
    model:
        A fitted GP (:class:`~sciml.gp.GPPotential` or ``LocalGPPotential``) or the path of a saved one
        (the file's format key says which kind; :func:`sciml.gp.loading.load_model`).
    uncertainty:
        Also compute predictive standard deviations (``energy_std``, ``forces_std`` and, when the
        model gives it, per-atom ``local_energy_std``). ``False`` skips them: a global GP then costs
        ``O(N)`` per call instead of a triangular solve with the training covariance.
    include_noise:
        Add the fitted label noise to the predictive variance (``False``: the model's own, latent,
        uncertainty — what active learning uses). Passed to models that accept it.

    Example
    -------
    >>> from ase.build import molecule
    >>> atoms = molecule("CH3CH2OH")                       # doctest: +SKIP
    >>> atoms.calc = GPCalculator("ethanol_gp.pt")         # doctest: +SKIP
    >>> atoms.get_forces().shape, atoms.calc.results["forces_std"].shape   # doctest: +SKIP
    ((9, 3), (9, 3))
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energy_std", "forces_std",
                              "local_energy_std"]

    def __init__(self, model, uncertainty: bool = True, include_noise: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, (str, Path)):
            model = load_model(model)
        if not hasattr(model, "predict"):
            raise TypeError(f"GPCalculator needs a GP model or a model file, got {type(model).__name__}")
        if hasattr(model, "_check_fitted"):
            try:
                model._check_fitted()
            except RuntimeError as exc:
                raise ValueError(f"GPCalculator needs a fitted model: {exc}") from None
        self.model = model
        self.uncertainty = uncertainty
        self.include_noise = include_noise

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: D102
        super().calculate(atoms, properties, system_changes)
        if hasattr(self.model, "predict_positions"):  # the global GP: one molecule, fast path from positions
            self._calculate_global()
        else:
            self._calculate_generic()

    def _calculate_global(self) -> None:
        numbers = self.model.numbers_
        if len(self.atoms) != len(numbers) or not np.array_equal(self.atoms.numbers, numbers):
            raise ValueError(f"atoms {self.atoms.get_chemical_formula()} do not match the GP's molecule "
                             "(same elements in the same order required)")
        E, F, Es, Fs = self.model.predict_positions(self.atoms.get_positions()[None], return_std=self.uncertainty,
                                                    include_noise=self.include_noise)
        self._store(E[0], F[0], None if Es is None else Es[0], None if Fs is None else Fs[0], None, None)

    def _calculate_generic(self) -> None:
        """Models with ``predict(frames, return_std=...)`` returning a dict or a tuple (the local GP)."""
        out = self.model.predict([self.atoms], return_std=self.uncertainty)
        if isinstance(out, dict):
            get = out.get
            E, F = get("energy"), get("forces")
            self._store(np.asarray(E)[0], np.asarray(F[0]), _first(get("energy_std")), _first(get("forces_std")),
                        _first(get("local_energy_std")), _first(get("stress")))
        else:
            E, F, Es, Fs = out[:4]
            local = _first(out[4]) if len(out) > 4 else None  # per-atom local-energy stds, when given
            self._store(np.asarray(E)[0], np.asarray(F[0]), _first(Es), _first(Fs), local, None)

    def _store(self, E, F, Es, Fs, local_std, stress) -> None:
        self.results["energy"] = float(E)
        self.results["free_energy"] = float(E)
        self.results["forces"] = np.asarray(F)
        if stress is not None:
            self.results["stress"] = np.asarray(stress)
        if self.uncertainty:
            if Es is not None:
                self.results["energy_std"] = float(Es)
            if Fs is not None:
                self.results["forces_std"] = np.asarray(Fs)
            if local_std is not None:
                self.results["local_energy_std"] = np.asarray(local_std)


def _first(x):
    return None if x is None else (x[0] if isinstance(x, (list, tuple)) else np.asarray(x)[0])
