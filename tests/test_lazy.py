"""One lazy-export mechanism (sciml._lazy) for every package: every exported name resolves."""
import importlib
import subprocess
import sys

import pytest

from sciml._lazy import lazy_exports

PACKAGES = ["sciml", "sciml.datasets", "sciml.gp", "sciml.motifs", "sciml.potentials", "sciml.selection", "sciml.workflows"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    mod = importlib.import_module(package)
    assert mod.__all__, package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"
        assert name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        getattr(mod, "not_a_name")


def test_import_sciml_is_light():
    code = "import sys, sciml; print(sorted(m for m in ('torch', 'pandas', 'scipy', 'e3nn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_name_exported_twice_is_an_error(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "fake_pkg", types.ModuleType("fake_pkg"))
    with pytest.raises(ValueError, match="'f' is exported from both 'a' and 'b'"):
        lazy_exports("fake_pkg", {"f": "a"}, by_module={"b": ["f"]})
