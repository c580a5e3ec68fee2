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
from .calculator import SciMLCalculator
from .forces import compute_properties, hessian, vibrational_frequencies
from .graph import AtomicGraph, atoms_to_graph, collate, neighbor_list
from .model import EquivariantPotential, ModelConfig, load_model, save_model
from .train import TrainConfig, TrainResult, evaluate, fit_statistics, predict_graphs, train_potential

__all__ = [
    "SciMLCalculator",
    "EquivariantPotential",
    "ModelConfig",
    "TrainConfig",
    "TrainResult",
    "AtomicGraph",
    "atoms_to_graph",
    "collate",
    "neighbor_list",
    "compute_properties",
    "hessian",
    "vibrational_frequencies",
    "load_model",
    "save_model",
    "train_potential",
    "evaluate",
    "fit_statistics",
    "predict_graphs",
]
