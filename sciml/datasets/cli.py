"""`sciml datasets ...`: list, describe and (re)generate reference data sets."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Bundled data sets and the reference-data recipe.", no_args_is_help=True)

    @sub.command("list")
    def list_cmd() -> None:
        """List the bundled data sets."""
        from . import list_datasets

        for name in list_datasets():
            typer.echo(name)

    @sub.command("card")
    def card_cmd(name: str = typer.Argument(..., help="data set name")) -> None:
        """Print a data set's card (JSON)."""
        from . import dataset_card

        typer.echo(json.dumps(dataset_card(name), indent=2))

    @sub.command("generate")
    def generate_cmd(
        structure: Path = typer.Option(..., "--structure", help="start structure (any ASE-readable file)"),
        out: Path = typer.Option(..., "--out", help="output .extxyz (card.json and README.md go beside it)"),
        n_frames: int = typer.Option(100, "--n-frames"),
        calculator: Optional[str] = typer.Option(
            None, "--calculator", help="gfn2-xtb | gfn1-xtb | emt | lj (default: gfn2-xtb for molecules, emt for periodic cells)"
        ),
        temperature: float = typer.Option(500.0, "--temperature", help="K"),
        dt: float = typer.Option(0.5, "--dt", help="time step, fs"),
        stride: int = typer.Option(20, "--stride"),
        equilibration: int = typer.Option(200, "--equilibration", help="equilibration steps"),
        cell_strain: float = typer.Option(0.0, "--cell-strain", help="max random strain per frame (periodic)"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Sample frames by Langevin MD and label them with a reference calculator."""
        import ase.io

        from . import generate_pes

        atoms = ase.io.read(str(structure))
        frames = generate_pes(
            atoms, out, n_frames=n_frames, calculator=calculator, temperature_K=temperature,
            timestep_fs=dt, stride=stride, equilibration_steps=equilibration, cell_strain=cell_strain, seed=seed,
        )
        typer.echo(f"wrote {len(frames)} frames to {out}")

    @sub.command("alloys")
    def alloys_cmd(
        out: Path = typer.Option(..., "--out", help="output folder (alloys_emt.extxyz, card.json, README.md)"),
        n_trajectories: int = typer.Option(120, "--n-trajectories", help="one random cell per trajectory"),
        frames_per_trajectory: int = typer.Option(20, "--frames-per-trajectory"),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Generate the multi-element periodic alloy set (EMT); resumes an interrupted run."""
        from .alloys import generate_alloys

        out.mkdir(parents=True, exist_ok=True)
        frames = generate_alloys(out / "alloys_emt.extxyz", n_trajectories=n_trajectories,
                                 frames_per_trajectory=frames_per_trajectory, seed=seed)
        typer.echo(f"wrote {len(frames)} frames to {out / 'alloys_emt.extxyz'}")

    app.add_typer(sub, name="datasets")
