#!/usr/bin/env python
"""Run the ``ensemble`` workflow (a thin wrapper over ``sciml.workflows.ensemble``).

    python workflows/ensemble.py                      # workflows/ensemble.yaml, locally
    python workflows/ensemble.py my.yaml --executor slurm
    python workflows/ensemble.py --demo --out runs/ensemble_demo --dry-run

Same as ``sciml workflow run workflows/ensemble.yaml``; see ``--help`` for all options.
"""
import sys
from pathlib import Path

from sciml.workflows.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("ensemble", default_config=Path(__file__).with_suffix(".yaml")))
