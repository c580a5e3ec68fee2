"""``sciml demo``: run every shipped workflow on its tiny ``demo_config()`` into one report folder.

The folder gets one sub-folder per workflow (its own report.md, metrics, plots, jobs) and an
``index.md`` (plus ``index.json``) linking them, with each workflow's status and run time.
A workflow that is missing or fails is reported there and makes the demo fail (non-zero exit).
"""
from __future__ import annotations

import os
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .._io import atomic_write_json, atomic_write_text
from .registry import WORKFLOWS, load_workflow
from .runner import run_workflow

__all__ = ["DemoEntry", "DemoResult", "run_demo"]


@dataclass
class DemoEntry:
    """One workflow of the demo."""

    workflow: str
    folder: str
    status: str  # ok | failed | missing
    elapsed_s: float = 0.0
    error: str | None = None
    metrics: dict | None = None


@dataclass
class DemoResult:
    out: Path
    entries: list[DemoEntry] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(e.status == "ok" for e in self.entries)

    @property
    def failed(self) -> list[str]:
        return [e.workflow for e in self.entries if e.status != "ok"]


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


_KEY_WORDS = ("mae", "rmse", "drift", "accuracy", "auc", "f1", "error", "coverage", "r2", "loglik", "beta", "gamma",
              "spearman", "z_", "p_value", "pvalue")


def _headline(metrics: dict | None, k: int = 4) -> str:
    """A few scalar metrics for the index table: ``metrics["headline"]`` if the workflow gives one,
    else the first scalar metrics whose names look like errors/scores, else the first scalars."""
    if not metrics:
        return ""
    scalars: list[tuple[str, float]] = []

    def walk(d: dict, prefix: str = "") -> None:
        for key, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{key}.")
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                scalars.append((f"{prefix}{key}", v))

    head = metrics.get("headline")
    walk(head if isinstance(head, dict) else metrics)
    if not isinstance(head, dict):
        preferred = [kv for kv in scalars if any(w in kv[0].lower() for w in _KEY_WORDS)]
        scalars = preferred or scalars
    return ", ".join(f"{n}={v:.4g}" if isinstance(v, float) else f"{n}={v}" for n, v in scalars[:k])


def _write_index(res: DemoResult) -> None:
    out = res.out
    lines = [
        "# sciml demo",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {platform.node()} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}); total {res.elapsed_s:.0f} s. "
        "Each workflow ran on its tiny `demo_config()`: the numbers show the pipeline works end to end, "
        "not production accuracy.",
        "",
        "| workflow | status | time (s) | report | headline metrics |",
        "|---|---|---:|---|---|",
    ]
    for e in res.entries:
        link = f"[{e.folder}/report.md]({e.folder}/report.md)" if (out / e.folder / "report.md").exists() else "-"
        status = "ok" if e.status == "ok" else f"**{e.status.upper()}**"
        lines.append(f"| {e.workflow} | {status} | {e.elapsed_s:.1f} | {link} | {_headline(e.metrics)} |")
    bad = [e for e in res.entries if e.status != "ok"]
    if bad:
        lines += ["", "## Problems", ""]
        for e in bad:
            lines.append(f"- **{e.workflow}** ({e.status}): {e.error}")
    lines += ["", "Re-run one workflow with `sciml workflow run <folder>/config.yaml`; its jobs, logs and "
              "run index are in `<folder>/jobs/`, `<folder>/run.log` and `<folder>/run.json`.", ""]
    atomic_write_text(out / "index.md", "\n".join(lines))
    atomic_write_json(out / "index.json", {
        "ok": res.ok, "elapsed_s": res.elapsed_s,
        "workflows": [{"workflow": e.workflow, "folder": e.folder, "status": e.status, "elapsed_s": e.elapsed_s,
                       "error": e.error, "metrics": e.metrics} for e in res.entries],
    })


def run_demo(
    out: str | os.PathLike = "demo-report",
    workflows: Sequence[str] | None = None,
    *,
    executor: Any = None,
    fresh: bool = True,
    echo: Callable[[str], None] | None = print,
) -> DemoResult:
    """Run each workflow's ``demo_config()`` into ``out/<workflow>/`` and write ``out/index.md``.

    Parameters
    ----------
    out:
        Report folder.
    workflows:
        Workflow names or dotted module paths (default: all shipped workflows, see ``WORKFLOWS``).
    executor:
        Executor settings for every workflow (default: local, sequential).
    fresh:
        Run every job again (default). ``False`` keeps results of an earlier demo in ``out``.
    echo:
        Progress lines (None: silent).

    Example
    -------
    >>> res = run_demo("demo-report")   # doctest: +SKIP
    >>> res.ok, (res.out / "index.md").exists()   # doctest: +SKIP
    (True, True)
    """
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    names = list(workflows) if workflows else list(WORKFLOWS)
    res = DemoResult(out)
    t_all = time.time()
    say = echo or (lambda s: None)
    for i, name in enumerate(names, 1):
        folder = _short(name)
        say(f"== [{i}/{len(names)}] {name} ==")
        t0 = time.time()
        try:
            module = load_workflow(name)
        except ValueError as exc:
            res.entries.append(DemoEntry(name, folder, "missing", 0.0, str(exc)))
            say(f"   MISSING: {exc}")
            _write_index(res)
            continue
        except Exception as exc:
            res.entries.append(DemoEntry(name, folder, "failed", time.time() - t0,
                                         f"import failed: {type(exc).__name__}: {exc}"))
            (out / folder).mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / folder / "demo_error.txt", traceback.format_exc())
            say(f"   FAILED to import: {type(exc).__name__}: {exc}")
            _write_index(res)
            continue
        try:
            run = run_workflow(module, module.demo_config(), out / folder, executor, force=fresh,
                               echo=(lambda s: say("   " + s)) if echo else None)
        except Exception as exc:
            (out / folder).mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / folder / "demo_error.txt", traceback.format_exc())
            entry = DemoEntry(name, folder, "failed", time.time() - t0, f"{type(exc).__name__}: {exc}")
        else:
            if run.ok:
                entry = DemoEntry(name, folder, "ok", time.time() - t0, metrics=run.metrics)
            else:
                errors = [f"job {n}: {run.jobs[n].error}" for n in run.failed]
                if run.report_error:
                    errors.append(f"report(): {run.report_error}")
                entry = DemoEntry(name, folder, "failed", time.time() - t0, "; ".join(errors) or "not ok")
        res.entries.append(entry)
        say(f"   {entry.status} in {entry.elapsed_s:.1f} s" + (f": {entry.error}" if entry.error else ""))
        _write_index(res)
    res.elapsed_s = time.time() - t_all
    _write_index(res)
    say(f"demo: {sum(e.status == 'ok' for e in res.entries)}/{len(res.entries)} workflow(s) ok in "
        f"{res.elapsed_s:.0f} s; index: {out / 'index.md'}")
    if not res.ok:
        say("demo FAILED for: " + ", ".join(res.failed))
    return res
