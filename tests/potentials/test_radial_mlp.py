"""RadialMLP (e3nn's FullyConnectedNet with folded constants) computes e3nn's numbers, in training too."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from e3nn.nn import FullyConnectedNet

from sciml.potentials.loss import batch_loss
from sciml.potentials.radial import RadialMLP

from potentials_testlib import random_labelled_graph, tiny_model


@pytest.mark.parametrize("out_act", [False, True])
@pytest.mark.parametrize("with_envelope", [False, True])
def test_radial_mlp_matches_e3nn_fully_connected_net(out_act, with_envelope):
    torch.manual_seed(0)
    ref = FullyConnectedNet([6, 16, 16, 24], torch.nn.functional.silu, out_act=out_act).double()
    mlp = RadialMLP([6, 16, 16, 24], torch.nn.functional.silu, out_act=out_act).double()
    mlp.load_state_dict(ref.state_dict(), strict=True)  # the same parameters under the same names
    x = torch.randn(50, 6, dtype=torch.float64, requires_grad=True)
    u = torch.rand(50, dtype=torch.float64, requires_grad=True) if with_envelope else None
    want = ref(x) * (u.unsqueeze(-1) if with_envelope else 1.0)
    got = mlp(x, u)
    assert want.abs().max() > 0.1
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # first and second derivatives (training on forces differentiates twice)
    inputs = [x] + ([u] if with_envelope else []) + list(ref.parameters())
    g_want = torch.autograd.grad((want**2).sum(), inputs[: 1 + with_envelope], create_graph=True)
    g_got = torch.autograd.grad((got**2).sum(), inputs[: 1 + with_envelope], create_graph=True)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)
    h_want = torch.autograd.grad(sum((g**2).sum() for g in g_want), list(ref.parameters()))
    h_got = torch.autograd.grad(sum((g**2).sum() for g in g_got), list(mlp.parameters()))
    for a, b in zip(h_got, h_want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_model_training_gradients_unchanged_by_radial_mlp():
    """Energies, forces, stress and the parameter gradients of the training loss equal those of the
    model evaluated with e3nn's FullyConnectedNet.forward for the radial weights."""
    m = tiny_model(species=(29, 46, 79), cutoff=4.5)
    rng = np.random.default_rng(3)
    frames = []
    for k in range(2):
        a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
        a.numbers = rng.choice([29, 46, 79], size=len(a))
        a.positions += rng.normal(scale=0.1, size=a.positions.shape)
        frames.append(random_labelled_graph(a, m, rng))
    counts = (2, sum(3 * int(g.n_atoms[0]) for g in frames), 18)

    def loss_and_grads():
        m.zero_grad()
        loss = batch_loss(m, frames, counts, (1.0, 100.0, 10.0), "cpu", torch.float64)
        loss.backward()
        return float(loss.detach()), [p.grad.clone() for p in m.parameters()]

    m.train()
    fast = loss_and_grads()
    for layer in m.layers:  # the reference: e3nn's forward, then the envelope
        layer.radial.forward = (lambda mod: lambda x, env=None: FullyConnectedNet.forward(mod, x) * env.unsqueeze(-1))(
            layer.radial)
    ref = loss_and_grads()
    assert fast[0] == pytest.approx(ref[0], rel=1e-12)
    for a, b in zip(fast[1], ref[1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(float(g.abs().max()) > 1e-3 for g in ref[1])
