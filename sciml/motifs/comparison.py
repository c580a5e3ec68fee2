"""Results of the before/after-training motif study across seeds (statsmodels-style object).

Per motif, the Z-scores after training are compared with those before training over the
seeds (paired): a paired t-test (:func:`scipy.stats.ttest_rel`) and a Wilcoxon signed-rank
test (:func:`scipy.stats.wilcoxon`, two-sided, on the paired differences), with
Benjamini-Hochberg adjusted p-values over motifs (statsmodels ``multipletests(...,
method="fdr_bh")``; ``p_adj`` for the t-test, ``p_adj_wilcoxon`` for Wilcoxon). A motif
"changes" when its adjusted t-test p-value is below 0.05.

Calibration: each seed's network gets a temperature fitted on its validation windows
(:meth:`sciml.motifs.RNNClassifier.calibrate`); the expected calibration error on the test
windows before and after is tabulated and drawn as a reliability diagram of all seeds'
test windows together.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sciml._io import atomic_write, atomic_write_json, atomic_write_text

from .calibration import ece_of_table, pool_reliability
from .plots import plot_reliability, plot_saliency_profiles, plot_z_distributions, plot_z_profiles

__all__ = ["TrainingComparison", "bh_adjust"]


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over the finite entries (NaN stays NaN), by statsmodels."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def _paired_tests(b: np.ndarray, a: np.ndarray) -> tuple[float, float, float]:
    """(t, p_ttest, p_wilcoxon) for paired Z-scores ``a`` (after) vs ``b`` (before); NaN when undefined."""
    from scipy import stats

    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if ok.sum() < 2 or np.std(d) == 0:
        return np.nan, np.nan, np.nan
    t, p = stats.ttest_rel(a[ok], b[ok])
    try:
        pw = float(stats.wilcoxon(d).pvalue)
    except ValueError:  # e.g. every difference zero
        pw = np.nan
    return float(t), float(p), pw


class TrainingComparison:
    """Result of :func:`sciml.motifs.compare_training` / :func:`sciml.motifs.analyse_seeds`.

    Attributes: ``results`` (per-seed dicts), ``z_before`` / ``z_after`` and ``sp_before`` /
    ``sp_after`` (DataFrames seeds x motifs).
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
        """Per motif, over the ``n_seeds`` seeds with a finite Z both before and after: mean Z
        before/after, mean and SD of the paired difference, paired t-test and Wilcoxon p-values,
        their BH-adjusted versions over motifs (``p_adj``, ``p_adj_wilcoxon``) and the direction
        of the change (``up``/``down`` where ``p_adj < 0.05``, else ``n.s.``)."""
        rows = []
        for k in self.z_before.columns:
            b = self.z_before[k].to_numpy(float)
            a = self.z_after[k].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            d = a[ok] - b[ok]
            t, p, pw = _paired_tests(b, a)
            rows.append({
                "motif": k, "z_before": b[ok].mean() if ok.any() else np.nan,
                "z_after": a[ok].mean() if ok.any() else np.nan,
                "diff_mean": d.mean() if len(d) else np.nan, "diff_sd": d.std(ddof=1) if len(d) > 1 else np.nan,
                "n_seeds": int(ok.sum()), "t": t, "p_ttest": p, "p_wilcoxon": pw,
            })
        df = pd.DataFrame(rows).set_index("motif")
        df["p_adj"] = bh_adjust(df["p_ttest"].to_numpy())
        df["p_adj_wilcoxon"] = bh_adjust(df["p_wilcoxon"].to_numpy())
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

    def calibration_table(self) -> pd.DataFrame:
        """Per seed: fitted temperature, ECE on the validation (fit) and test windows before and
        after calibration, and test NLL before/after (empty when the study ran without calibration)."""
        rows = [{"seed": r["seed"], **{k: v for k, v in r["calibration"].items() if not k.startswith("reliability")}}
                for r in self.results if r.get("calibration")]
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).set_index("seed")

    def reliability(self, when: str = "after") -> pd.DataFrame:
        """Reliability table of all seeds' test windows together, ``when`` = ``"before"`` or ``"after"``."""
        if when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {when!r}")
        tabs = [pd.DataFrame(r["calibration"][f"reliability_{when}"]) for r in self.results if r.get("calibration")]
        if not tabs:
            raise ValueError("the study ran without calibration (calibration: none)")
        return pool_reliability(tabs)

    def engines(self) -> list[str]:
        """Engines (numba | numpy) that drew the null graphs of the seeds (see :mod:`sciml.motifs.engine`)."""
        return sorted({r[w].get("engine", "unknown") for r in self.results for w in ("before", "after")})

    def summary(self) -> str:
        """Readable summary."""
        perf = self.performance()
        tab = self.table()
        lines = [
            f"RNN motif study: {len(self.results)} seeds",
            f"test accuracy {perf['accuracy'].mean():.3f} +- {perf['accuracy'].std(ddof=0):.3f}, "
            f"macro F1 {perf['macro_f1'].mean():.3f}",
        ]
        cal = self.calibration_table()
        if len(cal):
            lines.append(f"test ECE {cal['ece_test_before'].mean():.3f} -> {cal['ece_test_after'].mean():.3f} after "
                         f"calibration (temperature {cal['temperature'].mean():.2f})")
        cols = ["z_before", "z_after", "diff_mean", "p_ttest", "p_adj", "change"]
        lines += ["", tab[cols].to_string(float_format="%.3g")]
        return "\n".join(lines)

    def plot(self, out: str | Path) -> list[Path]:
        """Write the figures into ``out``; returns their paths."""
        out = Path(out)
        paths = [plot_z_profiles(self, out / "z_profiles.png"), plot_z_distributions(self, out / "z_distributions.png")]
        sal = {c: np.mean([r["saliency"][c] for r in self.results], axis=0) for c in self.results[0]["saliency"]}
        paths.append(plot_saliency_profiles(pd.DataFrame(sal), out / "saliency.png",
                                            boundary=self.results[0]["boundary"]))
        if len(self.calibration_table()):
            paths.append(plot_reliability(self.reliability("before"), self.reliability("after"),
                                          out / "reliability.png",
                                          title=f"test windows of {len(self.results)} seeds"))
        return paths

    def metrics(self) -> dict:
        """The numbers of ``metrics.json``."""
        tab, perf, ffl, cal = self.table(), self.performance(), self.ffl_table(), self.calibration_table()
        m = {
            "n_seeds": len(self.results),
            "engine": ",".join(self.engines()),
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
            "p_wilcoxon": tab["p_wilcoxon"].to_dict(),
            "p_adj": tab["p_adj"].to_dict(),
        }
        if len(cal):
            m.update(temperature_mean=float(cal["temperature"].mean()),
                     ece_test_before_mean=float(cal["ece_test_before"].mean()),
                     ece_test_after_mean=float(cal["ece_test_after"].mean()),
                     ece_test_before_pooled=ece_of_table(self.reliability("before")),
                     ece_test_after_pooled=ece_of_table(self.reliability("after")))
        return m

    def save(self, out: str | Path) -> dict:
        """Write ``metrics.json``, CSV tables, plots and ``report.md`` into ``out``; return the metrics."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tab, perf, ffl, cal = self.table(), self.performance(), self.ffl_table(), self.calibration_table()
        for name, df in (("motif_changes.csv", tab), ("performance.csv", perf), ("z_before.csv", self.z_before),
                         ("z_after.csv", self.z_after), ("ffl_coherence.csv", ffl), ("calibration.csv", cal)):
            if len(df):
                with atomic_write(out / name) as fh:
                    df.to_csv(fh)
        figs = self.plot(out)
        metrics = self.metrics()
        atomic_write_json(out / "metrics.json", metrics)
        atomic_write_text(out / "report.md", self._report(metrics, tab, perf, ffl, cal, figs))
        return metrics

    def _report(self, metrics: dict, tab, perf, ffl, cal, figs: list[Path]) -> str:
        cfg = self.results[0].get("config", {})
        md = [
            "# RNN motifs before vs after training",
            "",
            f"{len(self.results)} seeds; task: splice-site windows of length {cfg.get('length')}, "
            f"{cfg.get('cell')} with {cfg.get('hidden_size')} hidden units; graphs at edge density "
            f"{cfg.get('density')} (edge i -> j for W[j, i]); null model `{cfg.get('null')}` with "
            f"{cfg.get('n_random')} random graphs per network (engine: {metrics['engine']}).",
            "",
            f"Test accuracy: {metrics['accuracy_mean']:.3f} (min {metrics['accuracy_min']:.3f}), "
            f"macro F1 {metrics['macro_f1_mean']:.3f}.",
            "",
            "## Motif Z-scores (mean over seeds) and paired tests",
            "",
            "Paired t-test and Wilcoxon signed-rank test of Z after vs Z before over seeds; "
            "`p_adj`: Benjamini-Hochberg over motifs.",
            "",
            _markdown(tab[["z_before", "z_after", "diff_mean", "diff_sd", "p_ttest", "p_wilcoxon", "p_adj",
                           "p_adj_wilcoxon", "change"]]),
            "",
            "## Signed feed-forward loops (coherent share, induced 030T triads)",
            "",
            _markdown(ffl),
            "",
            "## Per-seed performance",
            "",
            _markdown(perf),
            "",
        ]
        if len(cal):
            md += [
                "## Calibration (temperature scaling on the validation windows)",
                "",
                f"Expected calibration error (ECE) on the test windows ({int(cal['n_bins'].iloc[0])} equal-width "
                f"confidence bins): {metrics['ece_test_before_mean']:.3f} before, "
                f"{metrics['ece_test_after_mean']:.3f} after (mean over seeds; all test windows together: "
                f"{metrics['ece_test_before_pooled']:.3f} -> {metrics['ece_test_after_pooled']:.3f}). "
                "A temperature alone leaves every prediction, hence the accuracy, unchanged.",
                "",
                _markdown(cal[[c for c in ("temperature", "ece_valid_before", "ece_valid_after", "ece_test_before",
                                           "ece_test_after", "nll_test_before", "nll_test_after") if c in cal]]),
                "",
            ]
        md += [*[f"![{p.stem}]({p.name})" for p in figs], ""]
        return "\n".join(md)


def _markdown(df: pd.DataFrame) -> str:
    cols = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        cells = [str(idx)] + [f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
