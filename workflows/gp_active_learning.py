#!/usr/bin/env python
"""Run the ``gp_active_learning`` workflow (a thin wrapper over ``sciml.workflows.gp_active_learning``).

    python workflows/gp_active_learning.py                      # workflows/gp_active_learning.yaml, locally
    python workflows/gp_active_learning.py my.yaml --executor slurm
    python workflows/gp_active_learning.py --demo --out runs/gp_active_learning_demo --dry-run

Same as ``sciml workflow run workflows/gp_active_learning.yaml``; see ``--help`` for all options.
"""
import sys
from pathlib import Path

from sciml.workflows.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("gp_active_learning", default_config=Path(__file__).with_suffix(".yaml")))
