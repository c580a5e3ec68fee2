"""Figures for motif analyses (matplotlib, Agg backend; files written atomically)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sciml._io import atomic_savefig

from .calibration import ece_of_table

__all__ = ["plot_significance", "plot_z_profiles", "plot_z_distributions", "plot_saliency_profiles",
           "plot_saliency_logo", "plot_training_history", "plot_reliability"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_significance(df: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Bar chart of Z-scores and line of the significance profile of a motif_significance table."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
    x = np.arange(len(df))
    labels = [str(k) for k in df.index]
    ax[0].bar(x, df["z"].fillna(0), color=np.where(df["z"].fillna(0) > 0, "tab:red", "tab:blue"))
    ax[0].set_ylabel("Z-score")
    ax[1].plot(x, df["sp"].fillna(0), "o-")
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set_ylabel("significance profile")
    for a in ax:
        a.set_xticks(x)
        a.set_xticklabels(labels, rotation=90, fontsize=7 if len(x) > 20 else 9)
    fig.suptitle(title)
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_z_profiles(cmp: Any, path: str | Path) -> Path:
    """Z-score profiles before vs after training: each seed (thin) and the mean (thick)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    keys = list(cmp.z_before.columns)
    x = np.arange(len(keys))
    for frame, color, label in ((cmp.z_before, "tab:gray", "before training"), (cmp.z_after, "tab:red", "after training")):
        for _, row in frame.iterrows():
            ax.plot(x, row.to_numpy(float), color=color, alpha=0.25, lw=0.8)
        ax.plot(x, frame.mean().to_numpy(float), color=color, lw=2.2, marker="o", label=label)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x)
    ax.set_xticklabels(keys, rotation=90)
    ax.set_ylabel("motif Z-score")
    ax.legend()
    ax.set_title("Motif Z-scores of the recurrent circuit (matched density)")
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_z_distributions(cmp: Any, path: str | Path) -> Path:
    """Per-motif paired Z-scores across seeds (before -> after) with lines joining each seed."""
    plt = _plt()
    keys = list(cmp.z_before.columns)
    ncol = min(7, len(keys))
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.7 * ncol, 2.2 * nrow), squeeze=False)
    for ax, k in zip(axes.ravel(), keys):
        b = cmp.z_before[k].to_numpy(float)
        a = cmp.z_after[k].to_numpy(float)
        for bi, ai in zip(b, a):
            ax.plot([0, 1], [bi, ai], color="tab:gray", lw=0.8, marker="o", ms=3)
        ax.boxplot([b[np.isfinite(b)], a[np.isfinite(a)]], positions=[0, 1], widths=0.4, showfliers=False)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["init", "trained"], fontsize=7)
        ax.set_title(str(k), fontsize=9)
        ax.axhline(0, color="k", lw=0.4)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_saliency_profiles(profile: pd.DataFrame, path: str | Path, boundary: int | None = None) -> Path:
    """Per-position saliency for each class (columns of ``profile``); the boundary is marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    for c in profile.columns:
        ax.plot(profile.index, profile[c], marker=".", label=str(c))
    if boundary is not None:
        ax.axvline(boundary - 0.5, color="k", ls="--", lw=0.8, label="exon/intron boundary")
    ax.set_xlabel("position in window")
    ax.set_ylabel("mean |saliency|")
    ax.legend(fontsize=8)
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_training_history(history: pd.DataFrame, path: str | Path) -> Path:
    """Train/validation loss and validation accuracy per epoch."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3))
    ax[0].plot(history["epoch"], history["train_loss"], label="train")
    if "valid_loss" in history:
        ax[0].plot(history["epoch"], history["valid_loss"], label="valid")
        ax[1].plot(history["epoch"], history["valid_accuracy"])
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("cross-entropy")
    ax[0].legend()
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("validation accuracy")
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_saliency_logo(logo: pd.DataFrame, path: str | Path, boundary: int | None = None, title: str = "") -> Path:
    """Sequence-logo style plot of mean gradient x input per position and base (from
    :func:`sciml.motifs.saliency.saliency_logo`): stacked bars, positive contributions up,
    negative down, one colour per base."""
    plt = _plt()
    colors = {"A": "tab:green", "C": "tab:blue", "G": "orange", "T": "tab:red"}
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(logo)), 3))
    x = np.asarray(logo.index)
    pos_base = np.zeros(len(logo))
    neg_base = np.zeros(len(logo))
    for b in logo.columns:
        v = logo[b].to_numpy(float)
        up = np.where(v > 0, v, 0)
        dn = np.where(v < 0, v, 0)
        ax.bar(x, up, bottom=pos_base, color=colors.get(b, None), label=b, width=0.85)
        ax.bar(x, dn, bottom=neg_base, color=colors.get(b, None), width=0.85)
        pos_base += up
        neg_base += dn
    ax.axhline(0, color="k", lw=0.5)
    span = max(pos_base.max() - neg_base.min(), 1e-12)
    ax.set_ylim(neg_base.min() - 0.05 * span, pos_base.max() + 0.15 * span)
    if boundary is not None:
        ax.axvline(boundary - 0.5, color="k", ls="--", lw=0.8)
    ax.set_xlabel("position in window")
    ax.set_ylabel("gradient x input")
    ax.legend(ncol=4, fontsize=8)
    ax.set_title(title)
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)


def plot_reliability(before: pd.DataFrame, after: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Reliability diagram: accuracy against confidence per bin (tables of
    :func:`sciml.motifs.calibration.reliability_table`), before and after calibration, with the
    diagonal of perfect calibration, the ECE in each legend and the share of windows per bin below."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for k, (tab, label, color) in enumerate(((before, "before calibration", "tab:gray"),
                                              (after, "after calibration", "tab:blue"))):
        ax, hx = axes[0, k], axes[1, k]
        width = tab["upper"] - tab["lower"]
        mid = (tab["upper"] + tab["lower"]) / 2
        used = tab["count"] > 0
        ece = ece_of_table(tab)
        ax.bar(mid[used], tab.loc[used, "accuracy"], width=width[used] * 0.95, color=color, alpha=0.8,
               label=f"accuracy ({label}); ECE = {ece:.3f}")
        ax.plot(tab.loc[used, "confidence"], tab.loc[used, "accuracy"], "o", color="k", ms=3,
                label="(mean confidence, accuracy) of a bin")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7, loc="upper left")
        hx.bar(mid, tab["count"] / tab["count"].sum(), width=width * 0.95, color=color)
        hx.set_xlabel("confidence (largest class probability)")
        hx.set_ylabel("share")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return Path(path)
