#!/usr/bin/env python
"""Run the ``potential_md`` workflow (a thin wrapper over ``sciml.workflows.potential_md``).

    python workflows/potential_md.py                      # workflows/potential_md.yaml, locally
    python workflows/potential_md.py my.yaml --executor slurm
    python workflows/potential_md.py --demo --out runs/potential_md_demo --dry-run

Same as ``sciml workflow run workflows/potential_md.yaml``; see ``--help`` for all options.
"""
import sys
from pathlib import Path

from sciml.workflows.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("potential_md", default_config=Path(__file__).with_suffix(".yaml")))
