"""What circuits does training carve into a recurrent network? Before/after motif study.

For each of K seeds: generate the splice-site task, train an RNN by BPTT, turn the
recurrent matrix at initialisation and after training into graphs **at the same edge
density** (``weights_to_graph(W, threshold=density, mode="density")``), and compute motif
significance (Z-scores, SP) against a null model. Across seeds, each motif's Z-score
after training is compared with its Z-score before training with a paired t-test and a
Wilcoxon signed-rank test (Benjamini-Hochberg adjusted over motifs).

:func:`run_seed` is the per-seed job (top-level, JSON-able result; the ``rnn_motifs``
workflow runs it as one job per seed), :func:`analyse_seeds` combines results and
:func:`compare_training` does both.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sciml._io import atomic_write_json, atomic_write_text

__all__ = ["StudyConfig", "run_seed", "analyse_seeds", "compare_training", "TrainingComparison", "load_config"]


@dataclass
class StudyConfig:
    """Settings of a before/after-training motif study (YAML keys = field names)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])  # one trained network per seed
    n_train: int = 2000  # training windows
    n_valid: int = 300  # validation windows (early stopping)
    n_test: int = 500  # held-out windows (accuracy, F1, saliency)
    length: int = 32  # window length (>= 30); the exon/intron boundary is at length // 2
    decoy_fraction: float = 0.5  # share of negatives carrying a decoy GT or AG at the site
    data_seed: int = 0  # seed of the generated data (the same data for every network seed)
    hidden_size: int = 32  # hidden units = nodes of the circuit graph
    cell: str = "rnn"  # rnn (Elman, tanh) | gru | lstm
    readout: str = "last"  # last | mean hidden state
    epochs: int = 30  # maximum BPTT epochs
    lr: float = 5e-3  # Adam learning rate
    batch_size: int = 32  # minibatch size
    clip: float = 1.0  # gradient-norm clipping
    patience: int = 6  # early-stopping patience (epochs)
    snapshot_every: int = 10  # write weight snapshots every N epochs (plus init and final)
    density: float = 0.1  # edge density of the circuit graphs (same before and after training)
    size: int = 3  # motif size: 3 or 4
    null: str = "mutual"  # null model: mutual | degree | er
    n_random: int = 200  # random graphs per network
    n_switches_per_edge: float = 10.0  # attempted edge switches per edge in each random graph
    device: str = "cpu"  # torch device (cpu, cuda, auto)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density!r}")
        if self.size not in (3, 4):
            raise ValueError(f"size must be 3 or 4, got {self.size!r}")
        if self.null not in ("mutual", "degree", "er"):
            raise ValueError(f"null must be 'mutual', 'degree' or 'er', got {self.null!r}")

    def job_kwargs(self) -> dict:
        """Keyword arguments of :func:`run_seed` (everything except ``seeds``)."""
        d = asdict(self)
        d.pop("seeds")
        return d


def load_config(path: str | Path) -> StudyConfig:
    """Read a YAML study config; unknown keys raise a ``ValueError`` naming them."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{str(path)!r} must hold a mapping of settings")
    if None in data and "null" not in data:  # YAML reads an unquoted `null:` key as None
        data["null"] = data.pop(None)
    known = {f.name for f in fields(StudyConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown keys in {str(path)!r}: {unknown}; allowed: {sorted(known)}")
    return StudyConfig(**data)


def _graph_stats(W: np.ndarray, density: float, size: int, null: str, n_random: int, seed: int, q: float) -> dict:
    from .graphs import weights_to_graph
    from .significance import motif_significance
    from .signed import ffl_types

    G = weights_to_graph(W, threshold=density, mode="density")
    df = motif_significance(G, size=size, null=null, n_random=n_random, seed=seed, n_switches_per_edge=q,
                            progress=False)
    keys = [str(k) for k in df.index]
    out = {
        "n_edges": G.number_of_edges(),
        "threshold": G.graph["threshold"],
        "n_self_loops": len(G.graph["self_loops"]),
        "n_mutual_edges": sum(1 for u, v in G.edges if G.has_edge(v, u)),
        "count": dict(zip(keys, df["count"].astype(int).tolist())),
        "z": dict(zip(keys, df["z"].tolist())),
        "sp": dict(zip(keys, df["sp"].tolist())),
        "random_mean": dict(zip(keys, df["random_mean"].tolist())),
        "ffl": ffl_types(G),
    }
    return out


def run_seed(seed: int, workdir: str | Path | None = None, **settings: Any) -> dict:
    """Train one RNN (seed ``seed``) and analyse its circuit before and after training.

    ``settings`` are :class:`StudyConfig` fields (minus ``seeds``). Writes weight snapshots,
    ``history.csv`` and ``saliency.csv`` into ``workdir`` when given. Returns a JSON-able dict.

    Example
    -------
    >>> res = run_seed(0, epochs=2, n_train=300, n_random=20)  # doctest: +SKIP
    >>> sorted(res["before"]["z"])[:2]  # doctest: +SKIP
    ['021C', '021D']
    """
    cfg = StudyConfig(seeds=[seed], **settings)
    from .rnn import RNNClassifier
    from .saliency import saliency_profile
    from .tasks import classification_report, make_splice_dataset

    ds = make_splice_dataset(cfg.n_train + cfg.n_valid + cfg.n_test, length=cfg.length,
                             decoy_fraction=cfg.decoy_fraction, seed=cfg.data_seed)
    train, valid, test = ds.split(cfg.n_train, cfg.n_valid, seed=cfg.data_seed)
    snapdir = Path(workdir) / "snapshots" if workdir is not None else None
    clf = RNNClassifier(
        hidden_size=cfg.hidden_size, cell=cfg.cell, readout=cfg.readout, epochs=cfg.epochs, lr=cfg.lr,
        batch_size=cfg.batch_size, clip=cfg.clip, patience=cfg.patience, snapshot_dir=snapdir,
        snapshot_every=cfg.snapshot_every, seed=seed, device=cfg.device,
    ).fit(train.X, train.labels, valid.X, valid.labels)
    report = classification_report(test.labels, clf.predict(test.X), ds.classes)
    W0, W1 = clf.initial_weights_, clf.recurrent_weights_
    args = (cfg.density, cfg.size, cfg.null, cfg.n_random, seed, cfg.n_switches_per_edge)
    before = _graph_stats(W0, *args)
    after = _graph_stats(W1, *args)
    prof = saliency_profile(clf, test.X, test.labels, ds.classes)
    if workdir is not None:
        from .plots import plot_saliency_logo, plot_training_history
        from .saliency import saliency_logo

        for k, name in enumerate(ds.classes):
            if k > 0:  # donor and acceptor logos
                plot_saliency_logo(saliency_logo(clf, test.X, test.labels, k), Path(workdir) / f"logo_{name}.png",
                                   boundary=ds.boundary, title=f"{name} sites: gradient x input (seed {seed})")
        plot_training_history(clf.history_, Path(workdir) / "history.png")
        from sciml._io import atomic_write

        wd = Path(workdir)
        with atomic_write(wd / "history.csv") as fh:
            clf.history_.to_csv(fh, index=False)
        with atomic_write(wd / "saliency.csv") as fh:
            prof.to_csv(fh)
    return {
        "seed": seed,
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "f1": {c: v["f1"] for c, v in report["per_class"].items()},
        "best_epoch": clf.best_epoch_,
        "epochs_run": int(len(clf.history_)),
        "boundary": ds.boundary,
        "before": before,
        "after": after,
        "weight_change": float(np.linalg.norm(W1 - W0) / np.linalg.norm(W0)),
        "saliency": {c: prof[c].tolist() for c in prof.columns},
        "config": cfg.job_kwargs(),
    }


def _bh(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.sum() == 0:
        return out
    q = p[ok]
    order = np.argsort(q)
    ranked = q[order] * len(q) / (np.arange(len(q)) + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty_like(q)
    res[order] = np.minimum(ranked, 1.0)
    out[ok] = res
    return out


class TrainingComparison:
    """Result of :func:`compare_training` / :func:`analyse_seeds` (statsmodels-style).

    Attributes: ``results`` (per-seed dicts), ``z_before`` / ``z_after`` (DataFrames seeds x motifs).
    """

    def __init__(self, results: list[dict]):
        if not results:
            raise ValueError("no per-seed results to analyse")
        self.results = sorted(results, key=lambda r: r["seed"])
        seeds = [r["seed"] for r in self.results]
        self.z_before = pd.DataFrame([r["before"]["z"] for r in self.results], index=pd.Index(seeds, name="seed"))
        self.z_after = pd.DataFrame([r["after"]["z"] for r in self.results], index=pd.Index(seeds, name="seed"))
        self.sp_before = pd.DataFrame([r["before"]["sp"] for r in self.results], index=self.z_before.index)
        self.sp_after = pd.DataFrame([r["after"]["sp"] for r in self.results], index=self.z_before.index)

    def table(self) -> pd.DataFrame:
        """Per motif: mean Z before/after, mean paired difference, paired t-test and Wilcoxon
        p-values (BH-adjusted over motifs in ``p_adj``) and the direction of the change."""
        from scipy import stats

        rows = []
        for k in self.z_before.columns:
            b = self.z_before[k].to_numpy(float)
            a = self.z_after[k].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            d = a[ok] - b[ok]
            if ok.sum() >= 2 and np.std(d) > 0:
                t, p = stats.ttest_rel(a[ok], b[ok])
                try:
                    pw = stats.wilcoxon(d).pvalue
                except ValueError:
                    pw = np.nan
            else:
                t, p, pw = np.nan, np.nan, np.nan
            rows.append({
                "motif": k, "z_before": np.nanmean(b) if ok.any() else np.nan,
                "z_after": np.nanmean(a) if ok.any() else np.nan,
                "diff_mean": d.mean() if len(d) else np.nan, "diff_sd": d.std(ddof=1) if len(d) > 1 else np.nan,
                "n_seeds": int(ok.sum()), "t": t, "p_ttest": p, "p_wilcoxon": pw,
            })
        df = pd.DataFrame(rows).set_index("motif")
        df["p_adj"] = _bh(df["p_ttest"].to_numpy())
        df["change"] = np.where(df["p_adj"] < 0.05, np.where(df["diff_mean"] > 0, "up", "down"), "n.s.")
        return df

    def ffl_table(self) -> pd.DataFrame:
        """Per seed: coherent share of (induced, signed) feed-forward loops before and after training."""
        rows = []
        for r in self.results:
            row = {"seed": r["seed"]}
            for when in ("before", "after"):
                f = r[when]["ffl"]
                tot = f["coherent"] + f["incoherent"]
                row[f"ffl_{when}"] = tot
                row[f"coherent_share_{when}"] = f["coherent"] / tot if tot else np.nan
            rows.append(row)
        return pd.DataFrame(rows).set_index("seed")

    def performance(self) -> pd.DataFrame:
        """Per seed: test accuracy, macro F1, per-class F1, epochs and relative weight change."""
        rows = []
        for r in self.results:
            row = {"seed": r["seed"], "accuracy": r["accuracy"], "macro_f1": r["macro_f1"],
                   "best_epoch": r["best_epoch"], "weight_change": r["weight_change"]}
            row.update({f"f1_{c}": v for c, v in r["f1"].items()})
            rows.append(row)
        return pd.DataFrame(rows).set_index("seed")

    def summary(self) -> str:
        """Readable summary."""
        perf = self.performance()
        tab = self.table()
        lines = [
            f"RNN motif study: {len(self.results)} seeds",
            f"test accuracy {perf['accuracy'].mean():.3f} +- {perf['accuracy'].std(ddof=0):.3f}, "
            f"macro F1 {perf['macro_f1'].mean():.3f}",
            "",
            tab[["z_before", "z_after", "diff_mean", "p_ttest", "p_adj", "change"]].to_string(float_format="%.3g"),
        ]
        return "\n".join(lines)

    def plot(self, out: str | Path) -> list[Path]:
        """Write the figures into ``out``; returns their paths."""
        from .plots import plot_z_distributions, plot_z_profiles, plot_saliency_profiles

        out = Path(out)
        paths = [plot_z_profiles(self, out / "z_profiles.png"), plot_z_distributions(self, out / "z_distributions.png")]
        sal = {c: np.mean([r["saliency"][c] for r in self.results], axis=0) for c in self.results[0]["saliency"]}
        paths.append(plot_saliency_profiles(pd.DataFrame(sal), out / "saliency.png", boundary=self.results[0]["boundary"]))
        return paths

    def save(self, out: str | Path) -> dict:
        """Write ``metrics.json``, CSV tables, plots and ``report.md`` into ``out``; return the metrics."""
        from sciml._io import atomic_write

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tab = self.table()
        perf = self.performance()
        for name, df in (("motif_changes.csv", tab), ("performance.csv", perf), ("z_before.csv", self.z_before),
                         ("z_after.csv", self.z_after)):
            with atomic_write(out / name) as fh:
                df.to_csv(fh)
        figs = self.plot(out)
        ffl = self.ffl_table()
        with atomic_write(out / "ffl_coherence.csv") as fh:
            ffl.to_csv(fh)
        metrics = {
            "n_seeds": len(self.results),
            "coherent_ffl_share_before": float(ffl["coherent_share_before"].mean()),
            "coherent_ffl_share_after": float(ffl["coherent_share_after"].mean()),
            "accuracy_mean": float(perf["accuracy"].mean()),
            "accuracy_min": float(perf["accuracy"].min()),
            "macro_f1_mean": float(perf["macro_f1"].mean()),
            "motifs_up": [k for k in tab.index if tab.loc[k, "change"] == "up"],
            "motifs_down": [k for k in tab.index if tab.loc[k, "change"] == "down"],
            "z_before_mean": tab["z_before"].to_dict(),
            "z_after_mean": tab["z_after"].to_dict(),
            "p_ttest": tab["p_ttest"].to_dict(),
            "p_adj": tab["p_adj"].to_dict(),
        }
        atomic_write_json(out / "metrics.json", metrics)
        cfg = self.results[0].get("config", {})
        md = [
            "# RNN motifs before vs after training",
            "",
            f"{len(self.results)} seeds; task: splice-site windows of length {cfg.get('length')}, "
            f"{cfg.get('cell')} with {cfg.get('hidden_size')} hidden units; graphs at edge density "
            f"{cfg.get('density')} (edge i -> j for W[j, i]); null model `{cfg.get('null')}` with "
            f"{cfg.get('n_random')} random graphs per network.",
            "",
            f"Test accuracy: {metrics['accuracy_mean']:.3f} (min {metrics['accuracy_min']:.3f}), "
            f"macro F1 {metrics['macro_f1_mean']:.3f}.",
            "",
            "## Motif Z-scores (mean over seeds) and paired tests",
            "",
            _markdown(tab[["z_before", "z_after", "diff_mean", "diff_sd", "p_ttest", "p_wilcoxon", "p_adj", "change"]]),
            "",
            "## Signed feed-forward loops (coherent share, induced 030T triads)",
            "",
            _markdown(ffl),
            "",
            "## Per-seed performance",
            "",
            _markdown(perf),
            "",
            *[f"![{p.stem}]({p.name})" for p in figs],
            "",
        ]
        atomic_write_text(out / "report.md", "\n".join(md))
        return metrics


def _markdown(df: pd.DataFrame) -> str:
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [str(idx)] + [f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def analyse_seeds(results: list[dict] | dict[str, dict]) -> TrainingComparison:
    """Combine per-seed results of :func:`run_seed` (a list, or a dict job name -> result)."""
    if isinstance(results, dict):
        results = list(results.values())
    return TrainingComparison(list(results))


def compare_training(config: StudyConfig | None = None, out: str | Path | None = None, progress: bool = True,
                     **overrides: Any) -> TrainingComparison:
    """Run the whole study: one :func:`run_seed` per seed, then :func:`analyse_seeds`.

    ``overrides`` replace fields of ``config`` (default :class:`StudyConfig`). With ``out``,
    per-seed folders, tables, plots and ``report.md`` are written there (per-seed results are
    reused when ``out/seed_<k>/result.json`` exists).

    Example
    -------
    >>> cmp = compare_training(seeds=[0, 1, 2], epochs=5, n_random=50)  # doctest: +SKIP
    >>> cmp.table().loc["030T", ["z_before", "z_after", "p_ttest"]]  # doctest: +SKIP
    """
    cfg = config or StudyConfig()
    if overrides:
        d = asdict(cfg)
        unknown = sorted(set(overrides) - set(d))
        if unknown:
            raise ValueError(f"unknown study settings {unknown}")
        d.update(overrides)
        cfg = StudyConfig(**d)
    from sciml._runtime import quiet_progress

    seeds = list(cfg.seeds)
    it = seeds
    if progress and not quiet_progress():
        from tqdm.auto import tqdm

        it = tqdm(seeds, desc="seeds", unit="seed")
    results = []
    for s in it:
        wd = Path(out) / f"seed_{s}" if out is not None else None
        if wd is not None and (wd / "result.json").exists():
            results.append(json.loads((wd / "result.json").read_text()))
            continue
        res = run_seed(s, workdir=wd, **cfg.job_kwargs())
        if wd is not None:
            atomic_write_json(wd / "result.json", res)
        results.append(res)
    cmp = TrainingComparison(results)
    if out is not None:
        cmp.save(out)
    return cmp
