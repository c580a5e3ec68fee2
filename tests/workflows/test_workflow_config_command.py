"""`sciml workflow config NAME` on the shipped workflows: the printed YAML loads back, validates, and
gives exactly the workflow's defaults (or its demo settings with --demo, the Slurm executor's defaults
with --executor slurm)."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from typer.testing import CliRunner

from sciml.cli import app
from sciml.workflows import WORKFLOWS, ExecutorConfig, load_run_config, load_workflow

runner = CliRunner()


def _printed(tmp_path, *args: str):
    r = runner.invoke(app, ["workflow", "config", *args])
    assert r.exit_code == 0, r.output
    path = tmp_path / "printed.yaml"
    path.write_text(r.output)
    return r.output, load_run_config(path)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_printed_config_is_the_defaults(name, tmp_path):
    module = load_workflow(name)
    text, spec = _printed(tmp_path, name)
    assert spec.workflow == name and spec.config == module.Config()
    assert spec.executor == ExecutorConfig(kind="local", workers=1)
    fields = [f.name for f in dataclasses.fields(module.Config) if f.init]
    assert list(yaml.safe_load(text)["config"]) == fields  # every field, in declaration order
    assert text.startswith(f"# sciml workflow: {name} -- ")


@pytest.mark.parametrize("name", ["selection_report", "potential_md"])
def test_printed_demo_and_slurm_configs(name, tmp_path):
    module = load_workflow(name)
    _, spec = _printed(tmp_path, name, "--demo", "--out", str(tmp_path / "o"))
    assert spec.config == module.demo_config() and spec.out == tmp_path / "o"
    assert spec.config != module.Config()  # the demo really differs, so the comparison above means something
    _, spec = _printed(tmp_path, name, "--executor", "slurm")
    assert spec.executor == ExecutorConfig(kind="slurm") and spec.config == module.Config()


def test_field_comments_become_yaml_comments(tmp_path):
    """potential_md's Config documents its fields with trailing comments: the YAML carries them."""
    import inspect

    module = load_workflow("potential_md")
    source = inspect.getsource(module.Config)
    commented = [ln.split(":")[0].strip() for ln in source.splitlines()
                 if ln.startswith("    ") and not ln.startswith("     ") and "#" in ln and ":" in ln.split("#")[0]]
    assert commented, "potential_md.Config has no commented fields to check"
    text, _ = _printed(tmp_path, "potential_md")
    config_lines = text.split("\nconfig:\n", 1)[1].splitlines()
    for key in commented:
        line = next(ln for ln in config_lines if ln.startswith(f"  {key}:"))
        assert "  # " in line, line


def test_unknown_workflow_and_bad_executor_fail_clearly():
    r = runner.invoke(app, ["workflow", "config", "no_such_workflow"])
    assert r.exit_code == 2 and "unknown workflow 'no_such_workflow'" in r.output
    r = runner.invoke(app, ["workflow", "config", "selection_report", "--executor", "pbs"])
    assert r.exit_code == 2 and "executor.kind: expected one of 'local', 'slurm', got 'pbs'" in r.output
