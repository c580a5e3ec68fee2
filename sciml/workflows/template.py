"""A complete, commented YAML run configuration for a workflow (``sciml workflow config NAME``).

The ``config:`` section lists every field of the workflow's ``Config`` with its default (or demo)
value and, as a YAML comment, the field's trailing ``# comment`` in the source; the file loads back
through :func:`~sciml.workflows.config.load_run_config` to the same settings.
"""
from __future__ import annotations

import inspect
import io
import tokenize
from pathlib import Path
from typing import Optional

import yaml

from .config import ExecutorConfig
from .registry import load_workflow
from .validate import to_dict, validate

__all__ = ["config_template", "doc_summary"]


def config_template(name: str, *, demo: bool = False, executor: str = "local", out: Optional[Path] = None) -> str:
    """A complete, commented YAML run configuration for workflow ``name``."""
    mod = load_workflow(name)
    cfg = mod.demo_config() if demo else mod.Config()
    short = Path(name).stem if name.endswith(".py") else name.rsplit(".", 1)[-1]
    ex = to_dict(validate(ExecutorConfig, {"kind": executor}, where="executor"))
    if executor == "local":
        ex = {"kind": "local", "workers": 1}
    summary = doc_summary(mod.__doc__)
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


def doc_summary(doc: Optional[str], width: int = 160) -> str:
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
