"""The ``sciml`` command line.

One entry point with a sub-command per submodule. Each submodule owns its
commands in ``sciml/<submodule>/cli.py``, which defines ``register(app)``; this
file only collects them. Submodule CLI files import heavy libraries (torch,
gpytorch, ...) inside the command functions, so ``sciml --help`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Optional

import typer

from ._version import __version__

app = typer.Typer(
    name="sciml",
    help="Scientific ML: equivariant potentials, GP energy surfaces, selection gradients, RNN motifs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Order here is the order in `sciml --help`.
_COMMAND_MODULES = [
    "sciml.datasets.cli",
    "sciml.potentials.cli",
    "sciml.gp.cli",
    "sciml.selection.cli",
    "sciml.motifs.cli",
    "sciml.workflows.cli",
]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sciml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """sciml command line."""


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a submodule without a CLI yet
            if exc.name == name:
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
