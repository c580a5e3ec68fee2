"""The wheel carries the bundled data sets (not only the editable install).

The wheel is installed (without dependencies) into a new, isolated virtual environment. That
environment sees the *running* interpreter's site-packages through a ``.pth`` file -- the
dependencies sciml declares, whatever interpreter pytest runs under -- and never the base
interpreter's, which on a fresh machine has no third-party packages at all. ``.pth`` files inside
those directories are not processed, so the editable install of the checkout stays invisible and
``import sciml`` must come from the wheel.
"""
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_finds_bundled_data(tmp_path):
    import setuptools

    assert tuple(int(x) for x in setuptools.__version__.split(".")[:2]) >= (77, 0), (
        f"setuptools {setuptools.__version__} is too old to build sciml (license = 'MIT' needs >= 77); "
        "it comes with the [test] extra"
    )
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = wheel_dir.glob("sciml-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True)
    (site,) = (env_dir / "lib").glob("python3*/site-packages")
    deps = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (site / "_sciml_test_deps.pth").write_text("\n".join(deps) + "\n")
    code = (
        "import sciml, sciml.datasets as d; "
        "assert 'site-packages' in sciml.__file__ and str(sciml.__file__).startswith(%r), sciml.__file__; "
        "print(len(d.load_bumpus()), len(d.load_pes('cu_emt_300K')), len(d.load_pes('ethanol_gfn2_500K')), "
        "len(d.load_alloys()))" % str(env_dir)
    )
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["136", "200", "1500", "200"]
