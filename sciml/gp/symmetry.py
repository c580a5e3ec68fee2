"""Permutational symmetry of identical atoms from the covalent bond graph (networkx).

The permutation group used to symmetrise the GP kernel is the automorphism group
of the molecule's bond graph with nodes labelled by element: the permutations of
identical atoms that map bonds onto bonds (e.g. the three methyl hydrogens and
the two methylene hydrogens of ethanol: 3! x 2! = 12 permutations).
"""
from __future__ import annotations

import networkx as nx
import numpy as np
from ase import Atoms

__all__ = ["bond_graph", "permutation_group"]


def bond_graph(atoms: Atoms, scale: float = 1.2) -> nx.Graph:
    """Covalent bond graph: an edge where ``d_ij < scale * (r_cov,i + r_cov,j)``.

    Nodes are atom indices with attributes ``symbol`` and ``number``.

    Example
    -------
    >>> from ase.build import molecule
    >>> G = bond_graph(molecule("CH4"))
    >>> G.number_of_edges()
    4
    """
    from ase.data import covalent_radii

    pos = atoms.get_positions()
    radii = covalent_radii[atoms.numbers]
    G = nx.Graph()
    for k, (sym, z) in enumerate(zip(atoms.get_chemical_symbols(), atoms.numbers)):
        G.add_node(k, symbol=sym, number=int(z))
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    cut = scale * (radii[:, None] + radii[None, :])
    ii, jj = np.nonzero(np.triu(d < cut, k=1))
    G.add_edges_from(zip(ii.tolist(), jj.tolist()))
    return G


def permutation_group(G: nx.Graph, max_size: int | None = None, node_attr: str = "number") -> np.ndarray:
    """Automorphisms of a labelled graph as atom permutations, identity first.

    Parameters
    ----------
    G:
        Graph from :func:`bond_graph` (nodes ``0..n-1``).
    max_size:
        Stop and raise ``ValueError`` when more permutations than this exist
        (the symmetrised kernel costs one kernel evaluation per permutation).
    node_attr:
        Node attribute that must match (element).

    Returns
    -------
    ``(n_perms, n_atoms)`` integer array; row ``p`` maps atom ``k`` to ``p[k]``.
    It is closed under composition and inversion (a group).

    Example
    -------
    >>> from ase.build import molecule
    >>> permutation_group(bond_graph(molecule("CH3CH2OH"))).shape
    (12, 9)
    """
    from networkx.algorithms.isomorphism import GraphMatcher

    n = G.number_of_nodes()
    if sorted(G.nodes) != list(range(n)):
        raise ValueError("graph nodes must be the atom indices 0..n-1")
    gm = GraphMatcher(G, G, node_match=lambda a, b: a.get(node_attr) == b.get(node_attr))
    perms = []
    for mapping in gm.isomorphisms_iter():
        perms.append([mapping[k] for k in range(n)])
        if max_size is not None and len(perms) > max_size:
            raise ValueError(
                f"the bond graph has more than max_size={max_size} automorphisms; "
                "symmetrising over all of them would be too expensive (pass symmetry=False or a larger max_size)"
            )
    out = np.array(sorted(perms), dtype=np.int64)
    ident = np.arange(n)
    k = int(np.nonzero((out == ident).all(axis=1))[0][0])
    return np.concatenate([out[k : k + 1], np.delete(out, k, axis=0)])
