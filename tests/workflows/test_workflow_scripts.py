"""Top-level workflows/ scripts and configs, and the cluster examples in workflows/slurm/."""
from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from sciml.workflows.cli import script_main
from sciml.workflows.config import load_run_config
from sciml.workflows.engine import WORKFLOWS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_workflow_has_a_thin_script(name):
    script = REPO / "workflows" / f"{name}.py"
    text = script.read_text()
    assert f'script_main("{name}"' in text and len(text.splitlines()) < 25


def test_launcher_scripts_are_thin_calls_into_the_library():
    """Every workflows/*.py is a launcher of a shipped workflow: a docstring, the imports, and one
    `sys.exit(script_main(...))` under `if __name__ == "__main__"` -- no function, class or logic."""
    installer = {"bootstrap"}  # workflows/bootstrap.py: the stdlib-only installer of the README's commands
    scripts = sorted(p for p in (REPO / "workflows").glob("*.py") if p.stem not in installer)
    assert {p.stem for p in scripts} == set(WORKFLOWS)
    for path in scripts:
        tree = ast.parse(path.read_text())
        body = list(tree.body)
        assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant), f"{path.name}: docstring"
        imports = [n for n in body[1:] if isinstance(n, (ast.Import, ast.ImportFrom))]
        rest = [n for n in body[1:] if n not in imports]
        modules = {a.name for n in imports if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in imports if isinstance(n, ast.ImportFrom)}
        assert modules <= {"sys", "pathlib", "sciml.workflows.cli"}, f"{path.name} imports {modules}"
        assert len(rest) == 1 and isinstance(rest[0], ast.If), f"{path.name}: only the __main__ block after imports"
        main = rest[0]
        assert ast.unparse(main.test) == "__name__ == '__main__'" and len(main.body) == 1 and not main.orelse
        call = main.body[0].value
        assert ast.unparse(call.func) == "sys.exit" and ast.unparse(call.args[0].func) == "script_main"
        assert call.args[0].args[0].value == path.stem  # the script runs the workflow it is named after


def _shipped_configs():
    return [p for sub in ("", "slurm", "examples") for p in sorted((REPO / "workflows" / sub).glob("*.yaml"))]


@pytest.mark.parametrize("path", _shipped_configs(), ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_validate(path):
    """Every YAML config in workflows/ validates against its workflow's Config (if the module is installed)."""
    name = yaml.safe_load(path.read_text())["workflow"]
    if not name.endswith(".py") and importlib.util.find_spec(f"sciml.workflows.{name}") is None:
        pytest.fail(f"{path.name}: workflow module sciml.workflows.{name} is missing")
    spec = load_run_config(path)
    assert spec.workflow == name or spec.workflow == str(path.parent / name)


def test_script_main_runs_demo_settings_and_dry_run(tmp_path, capsys):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(yaml.safe_dump({"workflow": "toyflows.squares", "out": str(tmp_path / "o"),
                                   "config": {"values": [7]}}))
    assert script_main("squares", default_config=cfg, argv=["--dry-run"]) == 0
    assert "x7" in capsys.readouterr().out and not (tmp_path / "o").exists()
    assert script_main("squares", default_config=cfg, argv=["--demo", "--set", "config.power=1"]) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["total"] == 3  # demo values [1, 2], power 1
    assert script_main("squares", default_config=cfg, argv=["--set", "config.power=-2"]) == 2


@pytest.mark.parametrize("script", sorted((REPO / "workflows" / "slurm").glob("*.sbatch")), ids=lambda p: p.name)
def test_sbatch_examples_are_valid_bash(script):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --time" in script.read_text()
