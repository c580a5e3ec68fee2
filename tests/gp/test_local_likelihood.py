"""Sparse (DTC) marginal likelihood: dense reference, exact gradients, exact GP as M -> N, recovery."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from sciml.gp.soap import SOAPDescriptor, build_environments
from sciml.gp.sparse import JITTER, SufficientStats, kmeanspp, posterior, sparse_nlml
from sciml.gp.sparse_features import assemble_rows, kernel0, prepare_batch, raw_rows

from local_testdata import triclinic_alloy

SPECIES = [28, 29, 79]


def _setup(n_frames=3, seed=0, n_max=3, l_max=2):
    desc = SOAPDescriptor(SPECIES, cutoff=3.8, n_max=n_max, l_max=l_max)
    frames = [triclinic_alloy(seed + k, repeat=(2, 2, 1)) for k in range(n_frames)]
    env = build_environments(frames, desc.species, desc.cutoff)
    batch = prepare_batch(desc, env)
    return desc, frames, env, batch


def _stats(raw, ell, env, yE, yF):
    E, F, _ = assemble_rows(raw, ell)
    st = SufficientStats(raw.n_inducing)
    n = torch.as_tensor(env.frame_sizes, dtype=E.dtype)
    st.add("energy", E / n.sqrt()[:, None], yE / n.sqrt())
    st.log_n_atoms = float(torch.log(n).sum())
    st.add("forces", F.reshape(-1, F.shape[-1]), yF)
    return st, E, F


def test_sparse_nlml_equals_dense_gaussian_log_density():
    rng = np.random.default_rng(0)
    m, nE, nF = 5, 7, 30
    A = rng.normal(size=(m, m))
    K0 = torch.as_tensor(A @ A.T / m + np.eye(m))
    PE, PF = torch.as_tensor(rng.normal(size=(nE, m))), torch.as_tensor(rng.normal(size=(nF, m)))
    yE, yF = torch.as_tensor(rng.normal(size=nE)), torch.as_tensor(rng.normal(size=nF))
    st = SufficientStats(m)
    st.add("energy", PE, yE)
    st.add("forces", PF, yF)
    sig, sE, sF = 0.7, 0.3, 0.2
    v = sparse_nlml(st, K0, torch.tensor(math.log(sig)), {"energy": torch.tensor(math.log(sE)),
                                                           "forces": torch.tensor(math.log(sF))})
    Phi = sig**2 * torch.cat([PE, PF]).numpy()
    Kuu = sig**2 * (K0.numpy() + JITTER * np.eye(m))
    C = Phi @ np.linalg.solve(Kuu, Phi.T) + np.diag([sE**2] * nE + [sF**2] * nF)
    ref = -multivariate_normal(np.zeros(nE + nF), C).logpdf(np.concatenate([yE, yF]))
    assert float(v) == pytest.approx(ref, rel=1e-7)


def test_sparse_nlml_gradient_matches_finite_differences():
    desc, frames, env, batch = _setup()
    idx = torch.tensor(kmeanspp(batch.x.numpy(), 8, np.random.default_rng(1)))
    U, Us = batch.x[idx], env.species[idx]
    raw = raw_rows(desc, batch, U, Us)
    rng = np.random.default_rng(2)
    yE = torch.as_tensor(rng.normal(size=env.n_frames))
    yF = torch.as_tensor(rng.normal(scale=0.3, size=3 * env.n_atoms))

    def f(theta):
        ell = torch.exp(theta[0])
        st, _, _ = _stats(raw, ell, env, yE, yF)
        return sparse_nlml(st, kernel0(U, Us, U, Us, ell), theta[1], {"energy": theta[2], "forces": theta[3]})

    theta = torch.tensor(np.log([0.3, 0.8, 0.05, 0.2]), requires_grad=True)
    assert torch.autograd.gradcheck(f, (theta,), eps=1e-6, atol=1e-5, rtol=1e-4)


def _exact_covariance(desc, frames, ell):
    """Exact prior covariance of energies and forces of ``frames`` (k0 units), by double autograd."""
    envs = [build_environments([a], desc.species, desc.cutoff) for a in frames]

    def xs(pos, env, a):
        pos_t = pos.reshape(-1, 3)
        shift = env.d - (torch.as_tensor(a.positions)[env.neighbour] - torch.as_tensor(a.positions)[env.centre])
        d = pos_t[env.neighbour] - pos_t[env.centre] + shift
        return desc.normalised(d, env)

    blocks = []
    for a, ea in zip(frames, envs):
        row = []
        for b, eb in zip(frames, envs):
            def e(pa, pb):
                return kernel0(xs(pa, ea, a), ea.species, xs(pb, eb, b), eb.species, ell).sum()

            pa, pb = torch.as_tensor(a.positions.ravel()), torch.as_tensor(b.positions.ravel())
            kee = e(pa, pb).reshape(1, 1)
            kfe = -torch.func.jacrev(e, argnums=0)(pa, pb).reshape(-1, 1)
            kef = -torch.func.jacrev(e, argnums=1)(pa, pb).reshape(1, -1)
            kff = torch.func.jacrev(torch.func.jacrev(e, argnums=1), argnums=0)(pa, pb).T
            row.append(torch.cat([torch.cat([kee, kef], 1), torch.cat([kfe, kff], 1)], 0))
        blocks.append(torch.cat(row, 1))
    return torch.cat(blocks, 0).detach().numpy()


def _dense_rows(E, F, sizes):
    """Design rows in the exact covariance's observation order (per frame: E, then its 3n force components)."""
    rows, start = [], 0
    for f, n in enumerate(sizes):
        rows += [E[f][None], F[start:start + n].reshape(-1, E.shape[1])]
        start += n
    return torch.cat(rows).numpy()


def test_sparse_gp_is_exact_on_energies_when_all_environments_are_inducing(monkeypatch):
    monkeypatch.setattr("sciml.gp.sparse.JITTER", 1e-11)     # exact in the limit of no jitter
    desc, frames, env, batch = _setup(n_frames=4, seed=3)
    U, Us = batch.x, env.species                         # M = N: every training environment
    ell, sig, sE = 0.5, 0.8, 0.02
    E, _, _ = assemble_rows(raw_rows(desc, batch, U, Us, forces=False), ell, forces=False)
    n = env.frame_sizes
    y = np.random.default_rng(4).normal(size=len(n))
    st = SufficientStats(len(U))
    nt = torch.as_tensor(n, dtype=torch.float64)
    st.add("energy", E / nt.sqrt()[:, None], torch.as_tensor(y) / nt.sqrt())
    st.log_n_atoms = float(torch.log(nt).sum())
    K0 = kernel0(U, Us, U, Us, ell)
    v = sparse_nlml(st, K0, torch.tensor(math.log(sig)), {"energy": torch.tensor(math.log(sE))})
    Kall = sig**2 * _exact_covariance(desc, list(frames) + [triclinic_alloy(11, repeat=(2, 2, 1))], ell)
    energy_rows = np.concatenate([[0], np.cumsum(1 + 3 * np.append(n, 8))])[:-1]
    Kall = Kall[np.ix_(energy_rows, energy_rows)]
    K = Kall[:-1, :-1] + np.diag(sE**2 * n)
    ref = -multivariate_normal(np.zeros(len(y)), K).logpdf(y)
    assert float(v) == pytest.approx(ref, rel=1e-7)
    new = triclinic_alloy(11, repeat=(2, 2, 1))
    w = posterior(st, K0, sig, {"energy": sE})["weights"]
    env_n = build_environments([new], desc.species, desc.cutoff)
    x_n = desc.normalised(env_n.d, env_n)
    e_sparse = float(kernel0(x_n, env_n.species, U, Us, ell).sum(0) @ w)
    e_exact = float(Kall[-1, :-1] @ np.linalg.solve(K, y))
    assert e_sparse == pytest.approx(e_exact, rel=1e-6, abs=1e-9)


def test_sparse_gp_converges_to_exact_gp_with_forces_as_inducing_set_grows(monkeypatch):
    """With forces, local-energy inducing values at the N training environments do not span the force
    covariance; environments around them do: the DTC covariance and NLML converge to the exact ones."""
    jitter = 1e-8
    monkeypatch.setattr("sciml.gp.sparse.JITTER", jitter)
    desc, frames, env, batch = _setup(n_frames=2, seed=3)
    ell, sig, sE, sF = 0.5, 0.8, 0.02, 0.05
    K = _exact_covariance(desc, frames, ell)
    n = env.frame_sizes
    y = np.random.default_rng(4).normal(size=len(K))
    noise = np.concatenate([[sE**2 * k] + [sF**2] * (3 * k) for k in n])
    ref = -multivariate_normal(np.zeros(len(y)), sig**2 * K + np.diag(noise)).logpdf(y)
    rng = np.random.default_rng(0)
    errors, nlml_gap = [], []
    for copies in (0, 2, 8, 32):
        extra = []
        for _ in range(copies):
            for a in frames:
                b = a.copy()
                b.positions += rng.normal(scale=0.03, size=b.positions.shape)
                extra.append(b)
        U, Us = batch.x, env.species
        if extra:
            e2 = build_environments(extra, desc.species, desc.cutoff)
            U, Us = torch.cat([U, desc.normalised(e2.d, e2).detach()]), torch.cat([Us, e2.species])
        E, F, _ = assemble_rows(raw_rows(desc, batch, U, Us), ell)
        Phi = _dense_rows(E, F, n)
        K0 = kernel0(U, Us, U, Us, ell)
        Q = Phi @ np.linalg.solve(K0.numpy() + jitter * np.eye(len(U)), Phi.T)
        errors.append(np.linalg.norm(Q - K) / np.linalg.norm(K))
        st = SufficientStats(len(U))
        starts = np.concatenate([[0], np.cumsum(1 + 3 * n)])
        erows = torch.as_tensor(starts[:-1])
        frows = torch.as_tensor(np.setdiff1d(np.arange(len(y)), starts[:-1]))
        nt = torch.as_tensor(n, dtype=torch.float64)
        Pt, yt = torch.as_tensor(Phi), torch.as_tensor(y)
        st.add("energy", Pt[erows] / nt.sqrt()[:, None], yt[erows] / nt.sqrt())
        st.log_n_atoms = float(torch.log(nt).sum())
        st.add("forces", Pt[frows], yt[frows])
        v = sparse_nlml(st, K0, torch.tensor(math.log(sig)), {"energy": torch.tensor(math.log(sE)),
                                                                "forces": torch.tensor(math.log(sF))})
        nlml_gap.append(abs(float(v) - ref) / abs(ref))
    assert errors[0] > 0.05                               # M = N values alone miss force covariance
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-5 and nlml_gap[-1] < 1e-3
    assert nlml_gap[-1] < nlml_gap[0] / 100


def test_kmeanspp_spreads_and_never_repeats():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.01, size=(50, 2)) for c in ((0, 0), (5, 0), (0, 5), (5, 5))])
    idx = kmeanspp(X, 4, np.random.default_rng(1))
    assert len(set(idx.tolist())) == 4
    assert sorted(set((X[idx] > 2.5).astype(int).dot([1, 2]).tolist())) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cannot choose"):
        kmeanspp(X[:3], 4, rng)
