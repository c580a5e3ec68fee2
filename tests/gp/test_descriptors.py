import networkx as nx
import numpy as np
import pytest
from ase.build import molecule

from sciml.gp.descriptors import descriptor_permutation, inverse_distances
from sciml.gp.symmetry import bond_graph, permutation_group


@pytest.mark.parametrize("power", [1.0, 0.5, 0.25, 2.0])
def test_jacobian_matches_finite_differences(power):
    rng = np.random.default_rng(0)
    R = molecule("CH3CH2OH").positions + 0.05 * rng.normal(size=(9, 3))
    _, J = inverse_distances(R, power=power)
    eps = 1e-6
    fd = np.zeros((36, 27))
    for k in range(27):
        d = np.zeros(27)
        d[k] = eps
        xp, _ = inverse_distances(R + d.reshape(9, 3), jacobian=False, power=power)
        xm, _ = inverse_distances(R - d.reshape(9, 3), jacobian=False, power=power)
        fd[:, k] = (xp - xm)[0].numpy() / (2 * eps)
    np.testing.assert_allclose(J[0].numpy(), fd, atol=1e-8)


def test_power_is_the_exponent_of_the_inverse_distance():
    R = np.array([[0.0, 0, 0], [4.0, 0, 0], [0, 3.0, 0]])
    x, _ = inverse_distances(R, power=0.5, jacobian=False)
    np.testing.assert_allclose(x[0].numpy(), [4.0**-0.5, 3.0**-0.5, 5.0**-0.5], rtol=1e-14)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="power must be a finite positive"):
            inverse_distances(R, power=bad)


def test_descriptor_is_invariant_and_permutes():
    R = molecule("CH3CH2OH").positions
    x, _ = inverse_distances(R)
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    x2, _ = inverse_distances(R @ rot.T + 3.0)
    np.testing.assert_allclose(x.numpy(), x2.numpy(), atol=1e-12)
    perm = [0, 1, 2, 4, 3, 5, 7, 8, 6]
    xp, _ = inverse_distances(R[perm])
    np.testing.assert_allclose(xp[0].numpy(), x[0].numpy()[descriptor_permutation(perm)], atol=1e-12)


def test_coincident_atoms_raise():
    R = np.zeros((3, 3))
    R[2] = [1.0, 0, 0]
    with pytest.raises(ValueError, match="coincide"):
        inverse_distances(R)


def test_ethanol_permutation_group():
    G = bond_graph(molecule("CH3CH2OH"))
    assert isinstance(G, nx.Graph) and G.number_of_edges() == 8
    P = permutation_group(G)
    assert P.shape == (12, 9)
    assert (P[0] == np.arange(9)).all()
    rows = {tuple(p) for p in P}
    for a in P:  # closed under composition: a group
        for b in P:
            assert tuple(a[b]) in rows
    with pytest.raises(ValueError, match="max_size"):
        permutation_group(G, max_size=4)
