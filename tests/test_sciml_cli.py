import subprocess
import sys
import time

from typer.testing import CliRunner

import sciml
from sciml.cli import app

runner = CliRunner()


def test_version_and_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"sciml {sciml.__version__}"
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "datasets" in r.output


def test_entry_point_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "sciml", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == f"sciml {sciml.__version__}"


def test_datasets_commands(tmp_path):
    r = runner.invoke(app, ["datasets", "list"])
    assert r.exit_code == 0 and "bumpus" in r.output and "ethanol_gfn2_500K" in r.output
    r = runner.invoke(app, ["datasets", "card", "cu_emt_300K"])
    assert r.exit_code == 0 and '"periodic": true' in r.output
    from ase.build import molecule
    import ase.io

    ase.io.write(tmp_path / "h2o.xyz", molecule("H2O"))
    r = runner.invoke(app, ["datasets", "generate", "--structure", str(tmp_path / "h2o.xyz"), "--out",
                            str(tmp_path / "w" / "h2o.extxyz"), "--n-frames", "2", "--stride", "1", "--equilibration", "0"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "w" / "card.json").exists()
