#!/usr/bin/env python
"""Run the ``rnn_motifs`` workflow (a thin wrapper over ``sciml.workflows.rnn_motifs``).

    python workflows/rnn_motifs.py                      # workflows/rnn_motifs.yaml, locally
    python workflows/rnn_motifs.py my.yaml --executor slurm
    python workflows/rnn_motifs.py --demo --out runs/rnn_motifs_demo --dry-run

Same as ``sciml workflow run workflows/rnn_motifs.yaml``; see ``--help`` for all options.
"""
import sys
from pathlib import Path

from sciml.workflows.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("rnn_motifs", default_config=Path(__file__).with_suffix(".yaml")))
