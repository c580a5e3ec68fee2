"""workflows/bootstrap.py, the README's install-and-run script: clear errors for what the OS lacks."""
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "workflows" / "bootstrap.py"


def test_help_lists_the_two_readme_commands():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "{install,demo,test}" in out and "--isolated" in out and "python3-venv" in out


def _module():
    return runpy.run_path(str(SCRIPT), run_name="bootstrap_under_test")


def test_old_python_is_refused_with_a_message(monkeypatch, capsys):
    mod = _module()
    monkeypatch.setattr(sys, "version_info", (3, 9, 18))
    with pytest.raises(SystemExit) as e:
        mod["check_python"]()
    assert e.value.code == 1
    assert "sciml needs Python >= 3.10" in capsys.readouterr().err


def test_missing_venv_module_names_the_package(monkeypatch, capsys):
    mod = _module()
    monkeypatch.setitem(sys.modules, "ensurepip", None)      # import ensurepip -> ImportError
    with pytest.raises(SystemExit):
        mod["check_python"]()
    assert "apt-get install python3-venv" in capsys.readouterr().err


def test_readme_and_ci_use_this_script():
    root = SCRIPT.parents[1]
    readme = (root / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "python3 workflows/bootstrap.py demo" in readme and "python3 workflows/bootstrap.py test" in readme
    assert "make test" in (root / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", ["install", "demo", "test"])
def test_make_targets_run_this_script(target):
    root = SCRIPT.parents[1]
    out = subprocess.run(["make", "-n", "-C", str(root), target, "PYTHON=python3"], capture_output=True,
                         text=True, check=True).stdout
    assert f"python3 workflows/bootstrap.py {target}" in out
