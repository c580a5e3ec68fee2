"""Groups of descriptor entries that share a length-scale: automatic relevance determination (ARD).

With ARD the kernel distance between two configurations weights each group ``g`` of inverse
distances by its own length-scale ``l_g``::

    rho(x, y) = sum_g sum_{k in g} (x_k - y_k)^2 / l_g^2

Groups (``GPPotential(length_scales=...)``):

``"shared"``
    one length-scale for every entry (no ARD).
``"pair"`` (default)
    one length-scale per pair of element types (C-C, C-H, C-O, H-H, ...): 5 for ethanol, 6 for
    aspirin or malonaldehyde.
``"orbit"``
    one length-scale per orbit of atom pairs under the permutation group of identical atoms
    (e.g. the three methyl C-H bonds of ethanol are one orbit): 17 for ethanol.

Every group is a union of orbits of the permutation group, so a permutation of identical atoms
maps each group onto itself and the symmetrised kernel stays exactly invariant.

All group length-scales are fitted by the marginal likelihood (:mod:`sciml.gp.tuning`). After the
fit the model folds the relative group length-scales into the descriptor weights
(:func:`ard_feature_weights`), so solving and prediction are those of a shared length-scale.

Example
-------
>>> import numpy as np
>>> from sciml.gp.descriptors import Permutations
>>> labels, names = descriptor_groups(np.array([8, 1, 1]), Permutations(None, 3), "pair")
>>> labels.tolist(), names
([0, 0, 1], ['H-O', 'H-H'])
"""
from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols

from .descriptors import Permutations, pair_indices

__all__ = ["LENGTH_SCALE_KINDS", "descriptor_groups", "ard_feature_weights"]

#: accepted values of ``GPPotential(length_scales=...)``
LENGTH_SCALE_KINDS = ("shared", "pair", "orbit")


def _orbits(perms: Permutations) -> np.ndarray:
    """Orbit label of every descriptor entry: the smallest entry index it is mapped to.

    The permutations form a group, so the images of entry ``k`` under all of them are its orbit.
    """
    return perms.idx.numpy().min(axis=0)


def descriptor_groups(numbers: np.ndarray, perms: Permutations, kind: str) -> tuple[np.ndarray, list[str]]:
    """Group label of every inverse-distance entry (``(D,)`` ints ``0..G-1``) and the group names.

    Groups are numbered in the order their first entry appears in the descriptor (row-major
    pairs ``i < j``). ``kind`` is ``"pair"`` (names like ``"C-H"``, symbols sorted
    alphabetically), ``"orbit"`` (names like ``"C0-H3"``: the first atom pair of the orbit) or
    ``"shared"`` (one group ``"all"``).
    """
    numbers = np.asarray(numbers)
    i, j = pair_indices(len(numbers))
    sym = [chemical_symbols[int(z)] for z in numbers]
    if kind == "shared":
        keys = ["all"] * len(i)
    elif kind == "pair":
        keys = ["-".join(sorted((sym[a], sym[b]))) for a, b in zip(i, j)]
    elif kind == "orbit":
        orbit = _orbits(perms)
        first = {}
        for k, o in enumerate(orbit):
            first.setdefault(int(o), k)
        keys = ["{}{}-{}{}".format(sym[i[first[int(o)]]], i[first[int(o)]], sym[j[first[int(o)]]], j[first[int(o)]])
                for o in orbit]
    else:
        raise ValueError(f"length_scales must be one of {LENGTH_SCALE_KINDS}, got {kind!r}")
    names: list[str] = []
    for key in keys:
        if key not in names:
            names.append(key)
    labels = np.array([names.index(k) for k in keys], dtype=np.int64)
    return labels, names


def ard_feature_weights(weights: np.ndarray, labels: np.ndarray,
                        group_lengthscales: np.ndarray) -> tuple[np.ndarray, float]:
    """Descriptor weights with the relative ARD length-scales folded in, and the common length-scale.

    With ``l_ref`` the geometric mean of the group length-scales ``l_g``, weighting entry ``k`` by
    ``weights[k] * l_ref / l_{g(k)}`` and using the length-scale ``l_ref`` gives exactly the ARD
    distance ``sum_k weights_k^2 (x_k - y_k)^2 / l_{g(k)}^2`` (divided by ``l_ref^2`` and multiplied back).
    Returns ``(feature_weights (D,), l_ref)``.

    Example
    -------
    >>> w, l_ref = ard_feature_weights(np.ones(3), np.array([0, 0, 1]), np.array([1.0, 4.0]))
    >>> w.tolist(), l_ref
    ([2.0, 2.0, 0.5], 2.0)
    """
    gl = np.asarray(group_lengthscales, dtype=np.float64)
    l_ref = float(np.exp(np.mean(np.log(gl))))
    return np.asarray(weights, dtype=np.float64) * l_ref / gl[np.asarray(labels)], l_ref
