"""Bundled data sets and the recipes that generate reference PES data with real calculators.

Bundled data live in the repository's top-level ``datasets/`` folder, which is installed as the
package ``sciml._bundled`` (editable or wheel installs alike). Nothing is ever downloaded.

- :func:`load_bumpus` -- Bumpus (1898) house-sparrow survival data (``bumpus``).
- :func:`load_pes` -- reference potential-energy-surface sets (extxyz) made by the recipes
  (``ethanol_gfn2_500K``: GFN2-xTB; ``cu_emt_300K``: EMT with stress; ``alloys_emt``: multi-element
  alloys, a subset of :func:`load_alloys`'s full set).
- :func:`generate_pes` -- Langevin MD with any ASE calculator, writing extxyz with energies, forces
  (and stress for periodic cells) plus a dataset card; :func:`generate_alloys` / :func:`load_alloys`
  -- the multi-element periodic alloy set (EMT), generated locally on first use.

Files: ``bundled.py`` (where data live, loading), ``bumpus.py``, ``calculators.py`` (reference
calculators by name), ``pes.py`` (the MD sampling recipe), ``alloys.py``, ``recipes.py`` (the exact
recipes of the bundled sets), ``cli.py`` (``sciml datasets ...``).
"""
from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "bundled": ["dataset_path", "list_datasets", "dataset_card", "load_pes"],
    "bumpus": ["load_bumpus", "BUMPUS_TRAITS"],
    "calculators": ["make_calculator"],
    "pes": ["generate_pes", "sample_langevin"],
    "alloys": ["ALLOY_ELEMENTS", "ALLOY_RECIPE", "random_alloy", "alloy_trajectory_specs", "generate_alloys", "load_alloys"],
    "recipes": ["BUNDLED_RECIPES", "regenerate_bundled"],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, by_module=_EXPORTS)
