"""E(3)-equivariant neural interatomic potentials (e3nn + torch) with an ASE calculator.

Layout (one file per step): ``graph`` (ase.Atoms -> batched graph, vesin neighbour lists),
``radial`` (Bessel basis, smooth cutoff), ``model`` (equivariant network, save/load),
``forces`` (forces, stress, Hessian, frequencies), ``train`` (training loop, evaluation),
``calculator`` (ASE calculator, committees), ``md`` (ASE molecular dynamics driver).

Example
-------
>>> from sciml.potentials import SciMLCalculator, train_potential, TrainConfig  # doctest: +SKIP
>>> res = train_potential(train_frames, valid_frames, "model.pt", TrainConfig(max_time=600))  # doctest: +SKIP
>>> atoms.calc = SciMLCalculator("model.pt")  # doctest: +SKIP
"""
from __future__ import annotations

from .._lazy import lazy_exports

# Names are imported on first use (PEP 562), so ``import sciml.potentials.cli`` (the ``sciml``
# command) does not pay for importing torch and e3nn.
_EXPORTS = {
    "SciMLCalculator": "calculator",
    "EquivariantPotential": "model",
    "ModelConfig": "model",
    "load_model": "model",
    "save_model": "model",
    "TrainConfig": "train",
    "TrainResult": "train",
    "train_potential": "train",
    "evaluate": "train",
    "fit_statistics": "train",
    "predict_graphs": "train",
    "AtomicGraph": "graph",
    "atoms_to_graph": "graph",
    "collate": "graph",
    "neighbor_list": "graph",
    "compute_properties": "forces",
    "hessian": "forces",
    "vibrational_frequencies": "forces",
    "run_md": "md",
    "MDResult": "md",
    "committee_errors": "uncertainty",
    "calibration_summary": "uncertainty",
}


__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
