"""Plots of a selection analysis: fitness functions, fitness surfaces, canonical axes, gradients.

Every function returns a matplotlib ``Figure`` (nothing is shown or saved); save it with
``sciml._io.atomic_savefig``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _quadratic_w(result, Zgrid: np.ndarray) -> np.ndarray:
    """Predicted relative fitness of the quadratic model at standardised traits ``Zgrid`` (the
    linear model when gamma was not estimated): the least-squares or mixed-model fit when the
    result holds it, else ``a + beta'z + z'gamma z / 2`` with ``a`` making the mean prediction 1."""
    p = len(result.traits)
    for lin, quad in (("linear", "quadratic"), ("lmm_linear", "lmm_quadratic")):
        fl, fq = result.models.get(lin), result.models.get(quad)
        if fq is not None:
            G = len(fq.params) - p - p * (p + 1) // 2
            b = fq.params[G:G + p]
            return fq.params[:G].mean() + Zgrid @ b + 0.5 * np.einsum("ni,ij,nj->n", Zgrid, result.gamma.to_numpy(), Zgrid)
        if fl is not None and result.gamma is None:
            G = len(fl.params) - p
            return fl.params[:G].mean() + Zgrid @ fl.params[G:]
    U = result.data[result.traits].to_numpy(float)
    b = result.beta["estimate"].to_numpy()
    g = result.gamma.to_numpy() if result.gamma is not None else np.zeros((p, p))
    f = lambda Z: Z @ b + 0.5 * np.einsum("ni,ij,nj->n", Z, g, Z)  # noqa: E731
    return 1.0 - f(U).mean() + f(Zgrid)


def _regression_label(result) -> str:
    return "quadratic regression" if result.gamma is not None else "linear regression (gamma not estimated)"


def plot_fitness_functions(result, surface=None, traits: Sequence[str] | None = None, bins: int = 8,
                           n_samples: int = 100):
    """Univariate fitness functions: binned mean relative fitness (with SE) against each
    standardised trait, the quadratic-regression slice and, if a fitted
    :class:`~sciml.selection.FitnessSurface` is given, the GP slice with a 95% posterior band
    (other traits held at their mean)."""
    plt = _plt()
    traits = list(result.traits if traits is None else traits)
    d = result.data
    ncol = min(3, len(traits))
    nrow = int(np.ceil(len(traits) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.2 * nrow), squeeze=False)
    for k, t in enumerate(traits):
        ax = axes[k // ncol, k % ncol]
        z = d[t].to_numpy()
        w = d["w"].to_numpy()
        edges = np.quantile(z, np.linspace(0, 1, bins + 1))
        idx = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, bins - 1)
        mids, means, ses = [], [], []
        for b in range(bins):
            sel = idx == b
            if sel.sum() >= 2:
                mids.append(z[sel].mean())
                means.append(w[sel].mean())
                ses.append(w[sel].std(ddof=1) / np.sqrt(sel.sum()))
        ax.errorbar(mids, means, yerr=ses, fmt="o", color="k", ms=4, label="binned mean w")
        grid = np.linspace(z.min(), z.max(), 80)
        Zg = np.zeros((len(grid), len(result.traits)))
        Zg[:, result.traits.index(t)] = grid
        ax.plot(grid, _quadratic_w(result, Zg), color="C0", label=_regression_label(result))
        if surface is not None and t in surface.traits_:
            Zs = np.zeros((len(grid), len(surface.traits_)))
            Zs[:, surface.traits_.index(t)] = grid
            draws = surface.sample(Zs, n_samples=n_samples, seed=0)
            mW = np.asarray(result.data["W"]).mean()
            draws = draws / mW
            ax.plot(grid, draws.mean(0), color="C3", label="GP fitness function")
            ax.fill_between(grid, *np.quantile(draws, [0.025, 0.975], axis=0), color="C3", alpha=0.2)
        ax.set_xlabel(f"{t} (standardised)")
        ax.set_ylabel("relative fitness w")
        if k == 0:
            ax.legend(fontsize=7)
    for k in range(len(traits), nrow * ncol):
        axes[k // ncol, k % ncol].set_visible(False)
    fig.tight_layout()
    return fig


def plot_fitness_surface(result, traits: Sequence[str] | None = None, surface=None, n_grid: int = 60):
    """Two-trait fitness surface (contours; other traits at their mean) with the individuals
    overlaid (filled: fitness above the mean). From the GP ``surface`` if given, else from the
    quadratic regression. ``traits`` defaults to the two traits with the largest |beta|."""
    plt = _plt()
    if traits is None:
        order = result.beta["estimate"].abs().sort_values(ascending=False).index
        traits = list(order[:2])
    if len(traits) != 2:
        raise ValueError(f"plot_fitness_surface needs exactly two traits, got {traits}")
    d = result.data
    a, b = traits
    ga = np.linspace(d[a].min(), d[a].max(), n_grid)
    gb = np.linspace(d[b].min(), d[b].max(), n_grid)
    A, Bm = np.meshgrid(ga, gb)
    names = surface.traits_ if surface is not None else result.traits
    Zg = np.zeros((A.size, len(names)))
    Zg[:, names.index(a)] = A.ravel()
    Zg[:, names.index(b)] = Bm.ravel()
    if surface is not None:
        Wg = surface.predict(Zg) / np.asarray(d["W"]).mean()
        src = "GP fitness surface"
    else:
        Wg = _quadratic_w(result, Zg)
        src = _regression_label(result)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cs = ax.contourf(A, Bm, Wg.reshape(A.shape), levels=14, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="predicted relative fitness")
    hi = d["w"].to_numpy() > 1
    ax.scatter(d[a][hi], d[b][hi], s=14, c="w", edgecolors="k", label="w > 1")
    ax.scatter(d[a][~hi], d[b][~hi], s=14, facecolors="none", edgecolors="w", label="w <= 1")
    ax.set_xlabel(f"{a} (standardised)")
    ax.set_ylabel(f"{b} (standardised)")
    ax.set_title(src, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def plot_canonical(result, n_grid: int = 60):
    """Fitness surface along the two canonical axes with the largest positive and negative
    eigenvalues (``y1`` and ``yp``), with the canonical traits of the individuals."""
    plt = _plt()
    can = result.canonical
    if can is None:
        raise ValueError("the result has no canonical analysis (gamma was not estimated)")
    Y = can.canonical_traits(result.data[result.traits])
    lam = can.eigenvalues["estimate"].to_numpy()
    th = can.theta["estimate"].to_numpy()
    i, j = 0, len(lam) - 1
    if i == j:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        g = np.linspace(Y.iloc[:, 0].min(), Y.iloc[:, 0].max(), 100)
        ax.plot(g, 1 + th[0] * g + 0.5 * lam[0] * g ** 2)
        ax.scatter(Y.iloc[:, 0], result.data["w"], s=10, c="k")
        ax.set_xlabel("y1")
        ax.set_ylabel("relative fitness")
        return fig
    yi, yj = Y.iloc[:, i].to_numpy(), Y.iloc[:, j].to_numpy()
    gi = np.linspace(yi.min(), yi.max(), n_grid)
    gj = np.linspace(yj.min(), yj.max(), n_grid)
    A, Bm = np.meshgrid(gi, gj)
    Wg = 1 + th[i] * A + th[j] * Bm + 0.5 * lam[i] * A ** 2 + 0.5 * lam[j] * Bm ** 2
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    cs = ax.contourf(A, Bm, Wg, levels=14, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="predicted relative fitness")
    hi = result.data["w"].to_numpy() > 1
    ax.scatter(yi[hi], yj[hi], s=14, c="w", edgecolors="k")
    ax.scatter(yi[~hi], yj[~hi], s=14, facecolors="none", edgecolors="w")
    ax.set_xlabel(f"y{i + 1} (lambda = {lam[i]:.3f})")
    ax.set_ylabel(f"y{j + 1} (lambda = {lam[j]:.3f})")
    ax.set_title("canonical axes of gamma", fontsize=9)
    fig.tight_layout()
    return fig


def plot_gradients(result, what: str = "beta"):
    """Forest plot of linear gradients (``"beta"``) or differentials (``"S"``) with intervals,
    per group when the analysis had groups."""
    plt = _plt()
    tables = {"pooled": result}
    tables.update({str(g): r for g, r in result.groups.items()})
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(result.traits) * max(1, len(tables) / 2)))
    y0 = np.arange(len(result.traits))
    width = 0.8 / len(tables)
    for k, (name, r) in enumerate(tables.items()):
        df = r.beta if what == "beta" else r.differentials
        est = df["estimate"].to_numpy()
        yy = y0 + (k - (len(tables) - 1) / 2) * width
        ax.errorbar(est, yy, xerr=[est - df["ci_low"], df["ci_high"] - est], fmt="o", ms=4, label=name, capsize=2)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y0)
    ax.set_yticklabels(result.traits)
    ax.set_xlabel("linear selection gradient beta" if what == "beta" else "selection differential S")
    if len(tables) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_per_level_gradients(result):
    """Forest plot of the level-specific gradients (mean gradient + BLUP, with 95 % prediction
    intervals) of every trait with random slopes; the random intercepts when there are none."""
    plt = _plt()
    bl = result.blups
    if bl is None:
        raise ValueError("the result has no random effects (random_effects=None)")
    top = bl["group"].iloc[0]
    bl = bl[bl["group"] == top]
    coefs = [c for c in bl["coef"].unique() if c != "intercept"] or ["intercept"]
    fig, axes = plt.subplots(1, len(coefs), figsize=(4.2 * len(coefs), 0.6 + 0.22 * bl["level"].nunique()),
                             squeeze=False)
    for ax, c in zip(axes[0], coefs):
        part = bl[bl["coef"] == c].reset_index(drop=True)
        y = np.arange(len(part))
        ax.errorbar(part["estimate"], y, xerr=1.96 * part["se"], fmt="o", ms=3, capsize=2, color="C0")
        mean = float((part["estimate"] - part["blup"]).iloc[0])           # the fixed (mean) coefficient
        ax.axvline(mean, color="C3", lw=1, label="mean over levels")
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(y)
        ax.set_yticklabels(part["level"], fontsize=7)
        ax.set_xlabel(f"gradient of {c} per {top}" if c != "intercept" else f"intercept per {top}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_episodes(episodes):
    """Selection gradients of every episode (bars, with bootstrap intervals when available) and
    the share of the opportunity for selection each episode contributes."""
    plt = _plt()
    comps = episodes.components
    traits = episodes.traits
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 1.2]})
    width = 0.8 / (len(comps) + 1)
    x = np.arange(len(traits))
    for k, c in enumerate(comps + ["total"]):
        est = episodes.gradients[c].to_numpy()
        err = None
        if episodes.gradients_ci_low is not None:
            err = [est - episodes.gradients_ci_low[c].to_numpy(), episodes.gradients_ci_high[c].to_numpy() - est]
        ax.bar(x + (k - len(comps) / 2) * width, est, width, yerr=err, capsize=2, label=c,
               color="0.3" if c == "total" else f"C{k}")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(traits)
    ax.set_ylabel("selection gradient beta")
    ax.legend(fontsize=7)
    share = episodes.opportunity.loc[comps, "share"]
    ax2.bar(range(len(comps)), share.to_numpy(), color=[f"C{k}" for k in range(len(comps))])
    ax2.set_xticks(range(len(comps)))
    ax2.set_xticklabels(comps, rotation=30, fontsize=8)
    ax2.set_ylabel("share of the opportunity for selection")
    fig.tight_layout()
    return fig
