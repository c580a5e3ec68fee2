"""Recurrent networks trained by BPTT and network-motif analysis of their weights.

Graph half (numpy/networkx only, imported on first use):
:func:`weights_to_graph`, :func:`motif_census`, :func:`triad_census`, :func:`randomize`,
:func:`motif_significance`, :func:`ffl_types`, :func:`signed_ffl_significance`,
:func:`motif_intensity`; :func:`resolve_engine` says which kernels (numba or numpy) run.
Model half (torch): :func:`make_splice_dataset`, :class:`RNNClassifier` (with
:meth:`~RNNClassifier.calibrate`, :func:`expected_calibration_error`), :func:`saliency`,
and the study :func:`compare_training`.

Example
-------
>>> import numpy as np
>>> from sciml.motifs import weights_to_graph, motif_census
>>> W = np.random.default_rng(0).normal(size=(50, 50))
>>> G = weights_to_graph(W, threshold=0.1, mode="density")   # edge i -> j for W[j, i]
>>> motif_census(G)["030T"] > 0
True
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "census": ["motif_census", "triad_census", "motif_keys", "motif_graph", "motif_name", "MOTIF_NAMES",
               "TRIAD_CODES", "TRIAD_CODES_ALL", "TRIAD_MFINDER_ID"],
    "graphs": ["weights_to_graph", "read_graph", "graph_to_matrix"],
    "nulls": ["randomize", "NULL_MODELS"],
    "significance": ["motif_significance", "null_census", "significance_profile"],
    "signed": ["ffl_types", "signed_ffl_significance", "motif_intensity", "FFL_TYPES"],
    "tasks": ["make_splice_dataset", "read_sequences", "one_hot", "SequenceDataset", "classification_report",
              "DONOR_PWM", "ACCEPTOR_PWM"],
    "rnn": ["RNNClassifier", "RecurrentNet", "load_snapshots"],
    "calibration": ["expected_calibration_error", "reliability_table", "fit_temperature"],
    "engine": ["resolve_engine"],
    "saliency": ["saliency", "saliency_profile", "saliency_logo"],
    "study": ["compare_training", "StudyConfig", "run_seed", "analyse_seeds", "TrainingComparison", "load_config"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, by_module=_EXPORTS)
