"""Edge pairs of a full neighbour list: ``(i, j, S)`` and its reverse ``(j, i, -S)`` have the same length.

Radial functions of an edge depend only on its length, so a full list (both directions of every
pair, as :func:`sciml.potentials.graph.neighbor_list` returns) needs them once per *pair*:
:func:`edge_pairs` gives one representative edge per pair (the direction with ``i < j``, or
``S > 0`` for an atom and its own image) and, for every edge, the index of its pair.
"""
from __future__ import annotations

from typing import Optional

import torch


def edge_pairs(edge_index: torch.Tensor, shifts: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """``(representative (P,), pair_of_edge (E,))`` such that edge ``e`` and ``representative[pair_of_edge[e]]``
    are the same pair of atoms (one of them possibly reversed), or ``None`` when the integer key of a
    pair would not fit in 63 bits (very many atoms and very large cell shifts; the caller then treats
    every edge on its own, which gives the same numbers).

    Works for any edge list: an edge without its reverse is its own representative.

    Example
    -------
    >>> import torch
    >>> ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> rep, pair = edge_pairs(ei, torch.zeros((4, 3)))
    >>> rep.tolist(), pair.tolist()
    ([0, 2], [0, 0, 1, 1])
    """
    E = edge_index.shape[1]
    i, j = edge_index[0], edge_index[1]
    S = shifts.round().to(torch.long)
    n = int(edge_index.max()) + 1 if E else 1
    smax = int(S.abs().max()) if E else 0
    base = 2 * smax + 1
    if n * n * base**3 >= 2**62:
        return None
    # direction: i < j, or i == j with the first non-zero shift positive
    sgn = torch.sign(S[:, 0] * base * base + S[:, 1] * base + S[:, 2])
    forward = (i < j) | ((i == j) & (sgn > 0))
    lo, hi = torch.where(forward, i, j), torch.where(forward, j, i)
    So = torch.where(forward.unsqueeze(1), S, -S) + smax
    key = ((lo * n + hi) * base + So[:, 0]) * base * base + So[:, 1] * base + So[:, 2]
    uniq, pair = torch.unique(key, return_inverse=True)
    rep = torch.empty(uniq.shape[0], dtype=torch.long, device=key.device)
    idx = torch.arange(E, device=key.device)
    rep[pair[~forward]] = idx[~forward]
    rep[pair[forward]] = idx[forward]  # the forward edge where both directions exist
    return rep, pair
