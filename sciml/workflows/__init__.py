"""End-to-end workflows, the demo, and batch execution (local or Slurm through submitit)."""
