"""ASE calculator backed by a fitted :class:`~sciml.gp.model.GPPotential`, with uncertainties."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

__all__ = ["GPCalculator"]


class GPCalculator(Calculator):
    """ASE calculator: GP energy (eV) and forces (eV/Å) plus ``energy_std`` and ``forces_std`` in ``results``.

    Parameters
    ----------
    model:
        A fitted ``GPPotential`` or the path of a saved one.
    uncertainty:
        Also compute predictive standard deviations (one triangular solve with
        the training covariance per call).
    include_noise:
        Add the fitted label noise to the predictive variance (``False``: the
        model's own, latent, uncertainty — what active learning uses).

    Example
    -------
    >>> from ase.build import molecule
    >>> atoms = molecule("CH3CH2OH")                       # doctest: +SKIP
    >>> atoms.calc = GPCalculator("ethanol_gp.pt")         # doctest: +SKIP
    >>> atoms.get_forces().shape, atoms.calc.results["forces_std"].shape   # doctest: +SKIP
    ((9, 3), (9, 3))
    """

    implemented_properties = ["energy", "free_energy", "forces", "energy_std", "forces_std"]

    def __init__(self, model, uncertainty: bool = True, include_noise: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, (str, Path)):
            from .model import GPPotential

            model = GPPotential.load(model)
        if not hasattr(model, "alpha_"):
            raise ValueError("GPCalculator needs a fitted GPPotential (call fit first)")
        self.model = model
        self.uncertainty = uncertainty
        self.include_noise = include_noise

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: D102
        super().calculate(atoms, properties, system_changes)
        if len(self.atoms) != len(self.model.numbers_) or not np.array_equal(self.atoms.numbers, self.model.numbers_):
            raise ValueError(
                f"atoms {self.atoms.get_chemical_formula()} do not match the GP's molecule "
                f"(same elements in the same order required)"
            )
        E, F, Es, Fs = self.model.predict_positions(
            self.atoms.get_positions()[None], return_std=self.uncertainty, include_noise=self.include_noise
        )
        self.results["energy"] = float(E[0])
        self.results["free_energy"] = float(E[0])
        self.results["forces"] = F[0]
        if self.uncertainty:
            self.results["energy_std"] = float(Es[0])
            self.results["forces_std"] = Fs[0]
