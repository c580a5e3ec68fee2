"""The wheel carries the bundled data sets (not only the editable install)."""
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_finds_bundled_data(tmp_path):
    pytest.importorskip("setuptools")
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = wheel_dir.glob("sciml-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    code = (
        "import sciml, sciml.datasets as d; "
        "assert 'site-packages' in sciml.__file__, sciml.__file__; "
        "print(len(d.load_bumpus()), len(d.load_pes('cu_emt_300K')), len(d.load_pes('ethanol_gfn2_500K')))"
    )
    out = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["136", "200", "1500"]
