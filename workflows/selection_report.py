#!/usr/bin/env python
"""Run the ``selection_report`` workflow (a thin wrapper over ``sciml.workflows.selection_report``).

    python workflows/selection_report.py                      # workflows/selection_report.yaml, locally
    python workflows/selection_report.py my.yaml --executor slurm
    python workflows/selection_report.py --demo --out runs/selection_report_demo --dry-run

Same as ``sciml workflow run workflows/selection_report.yaml``; see ``--help`` for all options.
"""
import sys
from pathlib import Path

from sciml.workflows.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("selection_report", default_config=Path(__file__).with_suffix(".yaml")))
