"""The examples in the engine's docstrings run (they are what a reader copies first)."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["jobs", "registry", "validate", "config"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"sciml.workflows.{name}")
    failures, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failures == 0
