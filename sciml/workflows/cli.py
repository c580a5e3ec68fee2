"""``sciml workflow run|list|config|status`` and ``sciml demo``.

Only light imports here (typer, yaml); workflow modules and torch load inside the commands.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

__all__ = ["register", "script_main", "apply_overrides"]


def apply_overrides(data: dict, assignments: List[str]) -> dict:
    """Apply ``key.path=value`` assignments (values parsed as YAML) to a nested dict, in place.

    >>> apply_overrides({"config": {"n": 1}}, ["config.n=3", "executor.kind=slurm"])
    {'config': {'n': 3}, 'executor': {'kind': 'slurm'}}
    """
    import yaml

    for item in assignments:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. config.n_seeds=3")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ValueError(f"--set {item!r}: empty key component")
        node = data
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"--set {item!r}: {p!r} is not a mapping")
            node = nxt
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    return data


def _fail(msg: str, code: int = 2) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def run_config(config: Path, executor: Optional[str] = None, out: Optional[Path] = None, dry_run: bool = False,
               workers: Optional[int] = None, wait: bool = True, force: bool = False,
               overrides: Optional[List[str]] = None, demo: bool = False) -> int:
    """Validate and run a YAML run configuration; print progress; return the exit code (0 ok, 1 failed, 2 bad config).

    ``demo=True`` replaces the file's ``config:`` by the workflow's ``demo_config()`` (before ``overrides``).
    """
    from .config import load_run_config, load_yaml, resolve_workflow_ref, to_dict
    from .engine import load_workflow, run_spec

    try:
        data = load_yaml(config)
        if not isinstance(data, dict):
            raise ValueError(f"{config}: expected a mapping with keys workflow, out, executor, config")
        if isinstance(data.get("workflow"), str):
            data["workflow"] = resolve_workflow_ref(data["workflow"], config)
        if demo:
            if "workflow" not in data:
                raise ValueError(f"{config}: missing key 'workflow'")
            data["config"] = to_dict(load_workflow(data["workflow"]).demo_config())
        if overrides:
            apply_overrides(data, overrides)
        if workers is not None:
            data = dict(data)
            data.setdefault("executor", {})
            data["executor"] = {**(data["executor"] or {}), "workers": workers}
        spec = load_run_config(data, executor=executor, out=out)
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
        if executor is not None and executor not in ("local", "slurm"):
            _fail(f"--executor: expected 'local' or 'slurm', got {executor!r}")
        code = run_config(config, executor, out, dry_run, workers, wait, force, set_, demo)
        raise typer.Exit(code)

    @wf.command("list")
    def list_cmd() -> None:
        """List the shipped workflows (and whether each is installed)."""
        from .engine import WORKFLOWS, available_workflows, load_workflow

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
            typer.echo(f"{name:20s} {_doc_summary(mod.__doc__, 100)}")

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
        from .engine import job_state

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
        from .demo import run_demo

        res = run_demo(out, only or None, executor={"kind": "local", "workers": workers}, fresh=not resume,
                       echo=typer.echo)
        raise typer.Exit(0 if res.ok else 1)


def config_template(name: str, *, demo: bool = False, executor: str = "local", out: Optional[Path] = None) -> str:
    """A complete, commented YAML run configuration for workflow ``name``."""
    import yaml

    from .config import ExecutorConfig, to_dict
    from .engine import load_workflow

    mod = load_workflow(name)
    cfg = mod.demo_config() if demo else mod.Config()
    short = Path(name).stem if name.endswith(".py") else name.rsplit(".", 1)[-1]
    ex = to_dict(ExecutorConfig(kind=executor))  # type: ignore[arg-type]
    if executor == "local":
        ex = {"kind": "local", "workers": 1}
    summary = _doc_summary(mod.__doc__)
    head = [f"# sciml workflow: {short}" + (f" -- {summary}" if summary else ""),
            "# Run: sciml workflow run THIS.yaml [--executor local|slurm] [--dry-run]",
            f"# Fields of `config` are those of sciml.workflows.{short}.Config" if "." not in name
            else f"# Fields of `config` are those of Config in {name}" if name.endswith(".py")
            else f"# Fields of `config` are those of {name}.Config"]
    body = {"workflow": name, "out": str(out or Path("runs") / short), "executor": ex}
    text = "\n".join(head) + "\n" + yaml.safe_dump(body, sort_keys=False) + "config:\n"
    comments = _field_comments(mod.Config)
    values = to_dict(cfg)
    if not values:
        return text.rstrip("\n") + " {}\n"
    for key, value in values.items():
        chunk = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, width=100).rstrip("\n")
        lines = chunk.splitlines()
        if comments.get(key):
            lines[0] += f"  # {comments[key]}"
        text += "".join(f"  {ln}\n" for ln in lines)
    return text


def _doc_summary(doc: Optional[str], width: int = 160) -> str:
    """First paragraph of a docstring on one line (shortened to ``width``)."""
    para = []
    for line in (doc or "").strip().splitlines():
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para).replace("``", "")
    if text.startswith("Workflow ") and ": " in text[:60]:
        text = text.split(": ", 1)[1]
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _field_comments(cls: type) -> dict:
    """Trailing ``# comments`` of the dataclass fields in the source (used as YAML comments),
    including fields inherited from dataclass bases."""
    found: dict = {}
    for klass in cls.__mro__:
        if klass is object:
            continue
        for key, text in _class_comments(klass).items():
            found.setdefault(key, text)
    return found


def _class_comments(cls: type) -> dict:
    import inspect
    import io
    import tokenize

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found: dict = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError):
        return {}
    line_start: dict = {}
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.start[0] not in line_start:
            line_start[tok.start[0]] = tok
        if tok.type == tokenize.COMMENT:
            first = line_start.get(tok.start[0])
            if first is not None and first.start[1] == 4:  # a field line directly in the class body
                found.setdefault(first.string, tok.string.lstrip("#").strip())
    return found


def script_main(name: str, default_config: Optional[Path] = None, argv: Optional[List[str]] = None) -> int:
    """Entry point of the thin ``workflows/<name>.py`` scripts (argparse, then the engine)."""
    import argparse

    p = argparse.ArgumentParser(prog=f"workflows/{name}.py",
                                description=f"Run the {name} workflow (see `sciml workflow run --help`).")
    p.add_argument("config", nargs="?", type=Path, default=default_config,
                   help=f"YAML run configuration (default: {default_config})")
    p.add_argument("--executor", "-e", choices=["local", "slurm"], default=None)
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
