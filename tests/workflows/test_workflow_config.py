"""Run-configuration loading and validation: errors name the bad key and the expected type."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from sciml.workflows.config import (ExecutorConfig, from_dict, load_run_config, parse_mem,
                                    parse_time_minutes)


@dataclass
class Inner:
    width: int = 8


@dataclass
class Cfg:
    lr: float = 1e-3
    seeds: list[int] = field(default_factory=lambda: [0])
    name: str = "x"
    mode: Literal["fast", "slow"] = "fast"
    data: Path | None = None
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    weights: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int] = (1, 2)


def test_from_dict_converts_and_fills_defaults():
    c = from_dict(Cfg, {"lr": "1e-2", "seeds": [1, 2], "data": "a/b.xyz", "inner": {"width": 4},
                        "weights": {"e": 1, "f": 0.5}, "shape": [3, 4]})
    assert c.lr == 0.01 and c.seeds == [1, 2] and c.data == Path("a/b.xyz") and c.inner.width == 4
    assert c.weights == {"e": 1.0, "f": 0.5} and c.shape == (3, 4) and c.name == "x"
    assert from_dict(Cfg, None) == Cfg()


@pytest.mark.parametrize(
    "data, exc, message",
    [
        ({"lrr": 0.1}, ValueError, "config: unknown key 'lrr' (did you mean 'lr'?)"),
        ({"lr": "fast"}, TypeError, "config.lr: expected float, got str 'fast'"),
        ({"seeds": 3}, TypeError, "config.seeds: expected list of int, got int 3"),
        ({"seeds": [1, "b"]}, TypeError, "config.seeds[1]: expected int, got str 'b'"),
        ({"mode": "medium"}, ValueError, "config.mode: expected one of 'fast', 'slow', got 'medium'"),
        ({"flag": "yes"}, TypeError, "config.flag: expected bool (true/false), got str 'yes'"),
        ({"inner": {"widht": 3}}, ValueError, "config.inner: unknown key 'widht' (did you mean 'width'?)"),
        ({"inner": {"width": 1.5}}, TypeError, "config.inner.width: expected int, got float 1.5"),
        ({"data": 5}, TypeError, "config.data: expected path (string) | null, got int 5"),
        ({"weights": {"e": "x"}}, TypeError, "config.weights.e: expected float, got str 'x'"),
        ({"shape": [1]}, ValueError, "config.shape: expected 2 items, got 1"),
        ({"name": None}, TypeError, "config.name: expected str, got NoneType None"),
        ([1, 2], TypeError, "config: expected a mapping of Cfg fields, got list [1, 2]"),
    ],
)
def test_from_dict_errors_name_key_and_type(data, exc, message):
    with pytest.raises(exc) as info:
        from_dict(Cfg, data)
    assert str(info.value).startswith(message), str(info.value)


def test_post_init_errors_are_prefixed():
    from toyflows.squares import Config

    with pytest.raises(ValueError, match=r"^config: power must be >= 0, got -1"):
        from_dict(Config, {"power": -1})


def test_executor_config_validation():
    ex = from_dict(ExecutorConfig, {"kind": "slurm", "gpus": 2, "mem": 32, "time": "2:00:00", "partition": "gpu"},
                   where="executor")
    assert ex.time_minutes == 120 and ex.gpus == 2
    with pytest.raises(ValueError, match="executor.kind: expected one of 'local', 'slurm', got 'pbs'"):
        from_dict(ExecutorConfig, {"kind": "pbs"}, where="executor")
    with pytest.raises(ValueError, match="executor: time: expected minutes"):
        from_dict(ExecutorConfig, {"time": "two hours"}, where="executor")
    with pytest.raises(ValueError, match="executor: mem: expected"):
        from_dict(ExecutorConfig, {"mem": "lots"}, where="executor")
    with pytest.raises(ValueError, match="executor: workers: expected an integer >= 1"):
        from_dict(ExecutorConfig, {"workers": 0}, where="executor")
    with pytest.raises(ValueError, match=r"executor: unknown key 'gpu' \(did you mean 'gpus'\?\)"):
        from_dict(ExecutorConfig, {"gpu": 1}, where="executor")


def test_slurm_value_parsing():
    assert parse_time_minutes("1-00:00:00") == 1440 and parse_time_minutes("00:30:01") == 31
    assert parse_time_minutes(30) == 30 and parse_time_minutes("45") == 45
    assert parse_mem("16G") == "16G" and parse_mem(0.5) == "512M" and parse_mem("4000") == "4000M"
    with pytest.raises(ValueError):
        parse_time_minutes(0)


def _write(tmp_path, data, name="run.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_load_run_config_from_yaml(tmp_path):
    p = _write(tmp_path, {"workflow": "toyflows.squares", "out": str(tmp_path / "o"),
                          "executor": {"kind": "local", "workers": 2}, "config": {"values": [5], "scale": 2}})
    spec = load_run_config(p)
    assert spec.workflow == "toyflows.squares" and spec.config.values == [5] and spec.config.scale == 2.0
    assert spec.executor.workers == 2 and spec.out == tmp_path / "o"
    spec2 = load_run_config(p, executor="slurm", out=tmp_path / "other")
    assert spec2.executor.kind == "slurm" and spec2.out == tmp_path / "other" and spec2.executor.workers == 2


@pytest.mark.parametrize(
    "data, message",
    [
        ({"config": {}}, "missing key 'workflow'"),
        ({"workflow": "toyflows.squares", "confg": {}}, "unknown top-level key 'confg' (did you mean 'config'?)"),
        ({"workflow": "nope"}, "workflow: unknown workflow 'nope'"),
        ({"workflow": "toyflows.squares", "config": {"valuez": [1]}}, "config: unknown key 'valuez'"),
        ({"workflow": "toyflows.squares", "config": {"power": "two"}}, "config.power: expected int, got str 'two'"),
        ({"workflow": "toyflows.squares", "executor": {"gpus": -1}}, "executor: gpus: expected an integer >= 0"),
        ("workflow: [unclosed", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_load_run_config_errors(tmp_path, data, message):
    p = _write(tmp_path, data)
    with pytest.raises((ValueError, TypeError)) as info:
        load_run_config(p)
    assert message in str(info.value), str(info.value)


def test_out_expands_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIML_TEST_SCRATCH", str(tmp_path))
    p = _write(tmp_path, {"workflow": "toyflows.squares", "out": "$SCIML_TEST_SCRATCH/runs/a"})
    assert load_run_config(p).out == tmp_path / "runs" / "a"


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run_config(tmp_path / "none.yaml")


WORKFLOW_FILE = '''"""Doubles numbers (a workflow defined in a plain .py file)."""
from dataclasses import dataclass, field
from pathlib import Path

from sciml.workflows import Job


@dataclass
class Config:
    xs: list[int] = field(default_factory=lambda: [1, 2])


def demo_config():
    return Config(xs=[5])


def double(x: int, workdir: Path) -> dict:
    return {"y": 2 * x}


def plan(cfg):
    return [Job(f"x{x}", double, {"x": x}) for x in cfg.xs]


def report(cfg, out, results):
    return {"sum": sum(r["y"] for r in results.values())}
'''


def test_workflow_from_a_py_file_relative_to_the_yaml(tmp_path, monkeypatch):
    from sciml.workflows.cli import run_config

    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "doubler_wf.py").write_text(WORKFLOW_FILE)
    p = _write(tmp_path / "cfgs", {"workflow": "doubler_wf.py", "out": str(tmp_path / "o"),
                                   "executor": {"workers": 2}, "config": {"xs": [1, 2, 3]}})
    monkeypatch.chdir(tmp_path)  # not the YAML's folder
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    assert run_config(p) == 0  # process pool: spawned workers import the file's module too
    import json

    assert json.loads((tmp_path / "o" / "metrics.json").read_text()) == {"sum": 12}
    saved = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert saved["workflow"] == str(tmp_path / "cfgs" / "doubler_wf.py")
    assert run_config(tmp_path / "o" / "config.yaml", demo=True) == 0  # the saved copy re-runs
    assert json.loads((tmp_path / "o" / "metrics.json").read_text()) == {"sum": 10}


BAD_SCALE = "config.scale: expected float, got str 'big'"
BAD_KIND = "executor.kind: expected one of 'local', 'slurm', got 'pbs'"


def test_one_validator_for_every_entry_point(tmp_path, capsys):
    """run_workflow (mapping or Config instance), load_run_config, `sciml workflow run` and the thin
    scripts all validate through make_spec/validate: the same error, and nothing written."""
    import re

    from toyflows.squares import Config

    from sciml.workflows import run_workflow
    from sciml.workflows.cli import run_config, script_main

    for config in ({"scale": "big"}, Config(scale="big")):  # an instance is checked like a mapping
        with pytest.raises(TypeError, match=re.escape(BAD_SCALE)):
            run_workflow("toyflows.squares", config, tmp_path / "a")
    with pytest.raises(TypeError, match=re.escape(BAD_SCALE)):
        load_run_config({"workflow": "toyflows.squares", "config": {"scale": "big"}})
    p = _write(tmp_path, {"workflow": "toyflows.squares", "out": str(tmp_path / "b"), "config": {"scale": "big"}})
    assert run_config(p) == 2 and BAD_SCALE in capsys.readouterr().err
    assert script_main("squares", default_config=p, argv=[]) == 2 and BAD_SCALE in capsys.readouterr().err
    for executor in ({"kind": "pbs"}, "pbs", ExecutorConfig(kind="pbs")):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=re.escape(BAD_KIND)):
            run_workflow("toyflows.squares", None, tmp_path / "c", executor)
    good = _write(tmp_path, {"workflow": "toyflows.squares", "out": str(tmp_path / "d")}, name="good.yaml")
    with pytest.raises(ValueError, match=re.escape(BAD_KIND)):
        load_run_config(good, executor="pbs")
    assert script_main("squares", default_config=good, argv=["--executor", "pbs"]) == 2
    assert BAD_KIND in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abcd")


def test_python_and_yaml_entry_points_give_the_same_spec(tmp_path, monkeypatch):
    from sciml.workflows.config import make_spec

    monkeypatch.setenv("SCIML_TEST_SCRATCH", str(tmp_path))
    settings = {"values": [3, 4], "scale": 2}
    from_python = make_spec("toyflows.squares", settings, "$SCIML_TEST_SCRATCH/o", {"kind": "local", "workers": 2})
    p = _write(tmp_path, {"workflow": "toyflows.squares", "out": "$SCIML_TEST_SCRATCH/o",
                          "executor": {"workers": 2}, "config": settings})
    from_yaml = load_run_config(p)
    assert from_python.to_dict() == from_yaml.to_dict()
    assert from_python.config.scale == 2.0 and isinstance(from_python.config.scale, float)
    assert from_python.out == tmp_path / "o"


def test_default_out_of_a_py_workflow_is_named_after_the_file(tmp_path, monkeypatch):
    (tmp_path / "doubler_wf2.py").write_text(WORKFLOW_FILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    spec = load_run_config({"workflow": "doubler_wf2.py"})
    assert spec.out == Path("runs") / "doubler_wf2" and spec.workflow == str(tmp_path / "doubler_wf2.py")


def test_unresolvable_annotations_are_said_not_silently_unchecked():
    from typing import TYPE_CHECKING

    ns: dict = {"TYPE_CHECKING": TYPE_CHECKING}
    exec("from __future__ import annotations\nfrom dataclasses import dataclass\n"
         "@dataclass\nclass Hidden:\n    x: NotImportedHere = 1\n", ns)
    with pytest.warns(UserWarning, match=r"config: the annotations of Hidden cannot be resolved .*NotImportedHere"):
        assert from_dict(ns["Hidden"], {"x": 2}).x == 2
