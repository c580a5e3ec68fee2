"""The engine is layered bottom-up: each module of sciml.workflows imports only modules listed before
it here (so there is no import cycle), and only at the top of the file (no function-level import
dodging a cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sciml.workflows

PACKAGE = Path(sciml.workflows.__file__).parent

#: Bottom to top.
LAYERS = ["jobs", "outcomes", "worker", "registry", "validate", "config", "executors.base", "executors.local",
          "executors.pool", "executors.slurm_queue", "executors.slurm", "executors", "run_files", "runner",
          "engine", "demo", "template", "cli", ""]


def _module_file(name: str) -> Path:
    base = PACKAGE.joinpath(*name.split(".")) if name else PACKAGE
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _package_imports(name: str) -> list[tuple[str, bool]]:
    """(imported sciml.workflows module, at top level?) for every import in the module's file."""
    path = _module_file(name)
    package = name.rpartition(".")[0] if path.name != "__init__.py" else name
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = package.split(".") if package else []
            base = parts[: len(parts) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.level > len(parts) + 1:  # sciml itself (..)
                continue
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sciml.workflows"):
            target = node.module[len("sciml.workflows"):].lstrip(".")
        else:
            continue
        # `from .executors.slurm import X` and `from .executors import slurm` both name a module
        if isinstance(node, ast.ImportFrom) and not node.module:
            targets = [f"{target}.{a.name}".lstrip(".") for a in node.names]
        else:
            targets = [target]
        for t in targets:
            while t and t not in LAYERS and "." in t:
                t = t.rpartition(".")[0]
            found.append((t, id(node) in top))
    return found


@pytest.mark.parametrize("name", LAYERS)
def test_imports_point_down_and_sit_at_the_top(name):
    rank = LAYERS.index(name)
    for target, at_top in _package_imports(name):
        if target not in LAYERS:  # a workflow module (science), never imported by the engine
            pytest.fail(f"sciml.workflows.{name} imports sciml.workflows.{target}, which is not an engine layer")
        assert LAYERS.index(target) < rank, f"sciml.workflows.{name or '__init__'} imports {target}, not below it"
        assert at_top, f"sciml.workflows.{name or '__init__'} imports {target} inside a function"


def test_every_engine_module_is_placed():
    science = {"potential_md", "ensemble", "gp_active_learning", "selection_report", "rnn_motifs"}
    files = {str(p.relative_to(PACKAGE).with_suffix("")).replace("/", ".").removesuffix(".__init__")
             for p in PACKAGE.rglob("*.py")}
    files = {"" if f == "__init__" else f for f in files}
    assert files - science == set(LAYERS)


@pytest.mark.parametrize("name", sorted(sciml.workflows.WORKFLOWS))
def test_workflow_modules_import_only_the_bottom_layer(name):
    """The science modules need Job and nothing of the engine above it."""
    assert {t for t, _ in _package_imports(name)} <= {"jobs"}


def test_public_names_resolve_where_they_always_did():
    """`sciml.workflows` (lazily) and the modules workflow code and the README import from."""
    import importlib

    names = {"sciml.workflows": ["Job", "JobOutcome", "RunResult", "ExecutorConfig", "RunSpec", "WORKFLOWS",
                                 "available_workflows", "from_dict", "load_run_config", "load_workflow", "run_demo",
                                 "run_spec", "run_workflow", "make_spec"],
             "sciml.workflows.engine": ["Job", "JobOutcome", "RunResult", "WORKFLOWS", "load_workflow",
                                        "available_workflows", "run_job", "run_workflow", "run_spec", "job_state"],
             "sciml.workflows.config": ["ExecutorConfig", "RunSpec", "from_dict", "to_dict", "load_yaml",
                                        "load_run_config", "parse_time_minutes", "parse_mem", "resolve_workflow_ref"],
             "sciml.workflows.executors": ["LocalExecutor", "SlurmExecutor", "make_executor", "squeue_states"],
             "sciml.workflows.cli": ["register", "script_main", "apply_overrides", "config_template"]}
    from sciml.workflows.jobs import Job

    for module_name, public in names.items():
        module = importlib.import_module(module_name)
        assert set(public) <= set(module.__all__), module_name
        for name in public:
            assert getattr(module, name) is not None, f"{module_name}.{name}"
    assert importlib.import_module("sciml.workflows").Job is Job is importlib.import_module("sciml.workflows.engine").Job
