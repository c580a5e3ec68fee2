"""sciml: scientific machine learning for computational chemistry and evolutionary biology.

Submodules (imported lazily, so ``import sciml`` stays fast):

- :mod:`sciml.potentials` -- E(3)-equivariant neural potentials (e3nn + torch) and an ASE calculator.
- :mod:`sciml.gp` -- Gaussian-process energy surfaces trained on energies and forces (gpytorch).
- :mod:`sciml.selection` -- Lande--Arnold selection-gradient analysis on pandas data.
- :mod:`sciml.motifs` -- RNNs trained by BPTT and network-motif analysis of their weights.
- :mod:`sciml.atoms`, :mod:`sciml.datasets` -- atomic data I/O and bundled data sets.
"""
from __future__ import annotations

from ._lazy import lazy_exports
from ._version import __version__

__getattr__, __dir__, _names = lazy_exports(
    __name__, submodules=["potentials", "gp", "selection", "motifs", "atoms", "datasets", "metrics", "workflows"]
)
__all__ = ["__version__", *_names]
