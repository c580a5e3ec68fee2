"""``sciml workflow run|list|config|status`` and ``sciml demo``, and ``script_main`` of the thin
``workflows/<name>.py`` scripts.

The top of the package: only light imports (typer, yaml, the engine); the science of a workflow
(torch, ...) loads inside its job functions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .config import apply_overrides, load_run_config
from .demo import run_demo
from .registry import WORKFLOWS, available_workflows, load_workflow
from .runner import run_spec
from .template import config_template, doc_summary
from .worker import job_state

__all__ = ["register", "script_main", "apply_overrides", "config_template"]


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run_config(config: Path, executor: Optional[str] = None, out: Optional[Path] = None, dry_run: bool = False,
               workers: Optional[int] = None, wait: bool = True, force: bool = False,
               overrides: Optional[List[str]] = None, demo: bool = False) -> int:
    """Validate and run a YAML run configuration; print progress; return the exit code (0 ok, 1 failed, 2 bad config).

    ``demo=True`` replaces the file's ``config:`` by the workflow's ``demo_config()`` (before ``overrides``).
    """
    assignments = list(overrides or []) + ([f"executor.workers={workers}"] if workers is not None else [])
    try:
        spec = load_run_config(config, executor=executor, out=out, demo=demo, overrides=assignments)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2
    try:
        res = run_spec(spec, dry_run=dry_run, wait=wait, force=force, echo=typer.echo)
    except (ValueError, TypeError) as exc:  # invalid settings found by the workflow's plan()
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2
    except RuntimeError as exc:  # e.g. no sbatch on this machine
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 1
    if dry_run:
        return 0
    if any(j.state == "submitted" for j in res.jobs.values()) and not res.failed:
        return 0
    return 0 if res.ok else 1


def register(app: typer.Typer) -> None:
    """Add ``workflow`` (run, list, config, status) and ``demo`` to the root ``sciml`` app."""
    wf = typer.Typer(help="Run end-to-end workflows locally or on a Slurm cluster (through submitit).",
                     no_args_is_help=True)

    @wf.command("run")
    def run_cmd(
        config: Path = typer.Argument(..., help="YAML run configuration (workflow, out, executor, config)."),
        executor: Optional[str] = typer.Option(None, "--executor", "-e", help="local or slurm (overrides the YAML)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (overrides the YAML)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show the jobs and resources; run nothing."),
        workers: Optional[int] = typer.Option(None, "--workers", "-j", help="Local executor: worker processes."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Slurm: wait for the jobs (default) or submit and return."),
        force: bool = typer.Option(False, "--force", help="Run all jobs again, ignoring existing results."),
        set_: List[str] = typer.Option([], "--set", help="Override a value: config.n_seeds=3, executor.partition=gpu."),
        demo: bool = typer.Option(False, "--demo", help="Use the workflow's tiny demo settings instead of `config:`."),
    ) -> None:
        """Run a workflow from a YAML file. Jobs with results in the output folder are skipped, so running
        the same command again resumes, and resubmits only failed jobs."""
        code = run_config(config, executor, out, dry_run, workers, wait, force, set_, demo)
        raise typer.Exit(code)

    @wf.command("list")
    def list_cmd() -> None:
        """List the shipped workflows (and whether each is installed)."""
        have = set(available_workflows())
        for name in WORKFLOWS:
            if name not in have:
                typer.echo(f"{name:20s} (not installed)")
                continue
            try:
                mod = load_workflow(name)
            except Exception as exc:  # a broken module must not hide the others
                typer.echo(f"{name:20s} (import failed: {type(exc).__name__}: {exc})")
                continue
            typer.echo(f"{name:20s} {doc_summary(mod.__doc__, 100)}")

    @wf.command("config")
    def config_cmd(
        name: str = typer.Argument(..., help="Workflow name (see `sciml workflow list`)."),
        demo: bool = typer.Option(False, "--demo", help="Use the tiny demo settings instead of the defaults."),
        executor: str = typer.Option("local", "--executor", "-e", help="local or slurm executor section."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder to put in the file."),
    ) -> None:
        """Print a complete YAML run configuration for a workflow (edit it, then `sciml workflow run`)."""
        try:
            text = config_template(name, demo=demo, executor=executor, out=out)
        except (ValueError, TypeError) as exc:
            _fail(str(exc))
        typer.echo(text, nl=False)

    @wf.command("status")
    def status_cmd(out: Path = typer.Argument(..., help="Output folder of a run.")) -> None:
        """Show the jobs of a run (from run.json and the job folders)."""
        index = out / "run.json"
        if not index.exists():
            _fail(f"{out}: no run.json (not a workflow output folder, or never run)")
        data = json.loads(index.read_text())
        typer.echo(f"workflow {data['workflow']}: ok={data['ok']} finished {data['finished']}")
        for j in data["jobs"]:
            live = job_state(out / "jobs" / j["name"])
            extra = f" [slurm {j['slurm_job_id']}]" if j.get("slurm_job_id") else ""
            typer.echo(f"  {j['name']:24s} {j['state']:9s} now {live:9s}{extra}"
                       + (f"  {j['error']}" if j.get("error") else ""))
        if data.get("report_files"):
            typer.echo("  report files: " + ", ".join(data["report_files"]))

    app.add_typer(wf, name="workflow")

    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("demo-report"), "--out", "-o", help="Report folder."),
        only: List[str] = typer.Option([], "--only", help="Run only these workflows (repeatable)."),
        resume: bool = typer.Option(False, "--resume", help="Keep job results of an earlier demo in OUT."),
        workers: int = typer.Option(1, "--workers", "-j", help="Local worker processes per workflow."),
    ) -> None:
        """Run all workflows on tiny settings (a few minutes on a laptop) into one report folder with index.md."""
        res = run_demo(out, only or None, executor={"kind": "local", "workers": workers}, fresh=not resume,
                       echo=typer.echo)
        raise typer.Exit(0 if res.ok else 1)


def script_main(name: str, default_config: Optional[Path] = None, argv: Optional[List[str]] = None) -> int:
    """Entry point of the thin ``workflows/<name>.py`` scripts (argparse, then the engine)."""
    p = argparse.ArgumentParser(prog=f"workflows/{name}.py",
                                description=f"Run the {name} workflow (see `sciml workflow run --help`).")
    p.add_argument("config", nargs="?", type=Path, default=default_config,
                   help=f"YAML run configuration (default: {default_config})")
    p.add_argument("--executor", "-e", default=None, help="local or slurm (overrides the YAML)")
    p.add_argument("--out", "-o", type=Path, default=None)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--demo", action="store_true", help="use the tiny demo settings (ignores the config file's config:)")
    p.add_argument("--workers", "-j", type=int, default=None)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--force", action="store_true")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    if a.config is None:
        p.error("a config file is required")
    code = run_config(a.config, a.executor, a.out, a.dry_run, a.workers, not a.no_wait, a.force, a.overrides, a.demo)
    if code == 2:
        print(f"(config: {a.config})", file=sys.stderr)
    return code
