import json
import os

import pytest

from sciml._io import atomic_write, atomic_write_json


def test_atomic_write_replaces_only_on_success(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_json(p, {"a": 1.5, "nan": float("nan")})
    assert json.loads(p.read_text()) == {"a": 1.5, "nan": None}
    with pytest.raises(RuntimeError):
        with atomic_write(p) as fh:
            fh.write("partial")
            raise RuntimeError("crash")
    assert json.loads(p.read_text())["a"] == 1.5
    assert os.listdir(tmp_path) == ["r.json"]
    assert oct(p.stat().st_mode & 0o777) != oct(0o600)
