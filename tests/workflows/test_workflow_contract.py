"""Every shipped workflow module follows the contract: typed Config with defaults, a demo_config that
validates, plan() returning valid jobs for the defaults and the demo settings (dry runs, nothing trained)."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from sciml.workflows.config import from_dict, to_dict
from sciml.workflows.engine import WORKFLOWS, load_workflow, run_workflow


@pytest.mark.parametrize("name", WORKFLOWS)
def test_shipped_workflow_contract(name, tmp_path):
    mod = load_workflow(name)  # fails (does not skip) when a shipped workflow is missing
    hints = typing.get_type_hints(mod.Config)
    for f in dataclasses.fields(mod.Config):
        assert f.name in hints, f"{name}.Config.{f.name} has no type annotation"
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, \
            f"{name}.Config.{f.name} has no default"
    demo = mod.demo_config()
    assert isinstance(demo, mod.Config)
    # the demo settings survive a YAML round trip through the validator
    assert from_dict(mod.Config, to_dict(demo)) == demo
    for cfg in (mod.Config(), demo):
        res = run_workflow(mod, cfg, tmp_path / "dry", dry_run=True)
        assert res.jobs and {j.state for j in res.jobs.values()} == {"planned"}
    assert (mod.__doc__ or "").strip(), f"{name} needs a module docstring (shown by `sciml workflow list`)"
