"""Test workflow whose report() raises (the demo must report it as failed)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciml.workflows.engine import Job


@dataclass
class Config:
    n: int = 1


def demo_config() -> Config:
    return Config()


def one(n: int, workdir: Path) -> dict:
    return {"n": n}


def plan(cfg: Config) -> list[Job]:
    return [Job("only", one, {"n": cfg.n})]


def report(cfg: Config, out: Path, results: dict[str, dict]) -> dict:
    raise ValueError("report exploded on purpose")
