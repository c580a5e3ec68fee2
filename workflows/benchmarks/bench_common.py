"""Measurement helpers shared by the baseline and side-by-side benchmark scripts.

Only numpy, ASE and the standard library are used here, so the same module runs
under the system interpreter (sciml side) and inside the baseline virtual
environments (``.venv-mace``, ``.venv-sgdml`` at the repository root by default). Every measurement
function takes an ASE calculator, so sciml and the baseline are timed by
exactly the same code.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: Raw results (small JSON) of every benchmark, committed next to the scripts.
RESULTS_DIR = HERE / "results"
#: Scratch space for data splits, models and logs (git-ignored, relative to the repository).
WORK_DIR = REPO / "bench-data"

# Liquid ethanol has ~97 A^3 per molecule; 5.0 A spacing (125 A^3/molecule,
# ~0.61 g/cm^3) leaves room for random orientations without overlaps.
BOX_SPACING_A = 5.0


def loadavg() -> str:
    """The three load averages from /proc/loadavg (e.g. '1.93 1.80 1.75')."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:  # non-Linux
        return "n/a"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MiB), from getrusage."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def git_rev(paths: tuple[str, ...] = ("sciml",)) -> str:
    """Short commit of the sciml checkout, with '+dirty' if ``paths`` have uncommitted changes."""
    import subprocess

    repo = REPO
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", *paths], capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "sciml_git": git_rev(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def baseline_python(name: str) -> str:
    """Interpreter of a baseline's own virtual environment: ``$SCIML_<NAME>_PYTHON`` or ``.venv-<name>``."""
    return os.environ.get(f"SCIML_{name.upper()}_PYTHON", str(REPO / f".venv-{name}" / "bin" / "python"))


def run_info(threads: int | None = None) -> dict[str, Any]:
    """What every committed result records: the command, thread count, load average, date and machine."""
    argv = [os.path.relpath(a, REPO) if os.path.isabs(a) and a.startswith(str(REPO)) else a for a in sys.argv]
    return {
        "command": "python " + shlex.join(argv),
        "threads": threads,
        "loadavg": loadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **machine_info(),
    }


def save_result(name: str, doc: dict, threads: int | None = None) -> Path:
    """Write ``doc`` (plus :func:`run_info`) atomically to ``results/<name>.json`` and return the path."""
    path = RESULTS_DIR / f"{name}.json"
    write_json(path, {"run": run_info(threads), **doc}, echo=False)
    return path


def measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` and return (its result, {seconds, loadavg_before, loadavg_after})."""
    before = loadavg()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    return out, {"seconds": dt, "loadavg_before": before, "loadavg_after": loadavg()}


def ethanol():
    """One ethanol molecule (ASE's g2 geometry), not periodic."""
    from ase.build import molecule

    at = molecule("CH3CH2OH")
    at.center(vacuum=5.0)
    return at


def ethanol_box(n_per_side: int, spacing: float = BOX_SPACING_A, seed: int = 0, min_dist: float = 1.8):
    """Periodic cubic box of ``n_per_side**3`` randomly oriented ethanol molecules on a grid.

    Molecules are re-rotated until every intermolecular distance (including
    periodic images) is at least ``min_dist`` Å. Deterministic for a given seed.
    """
    from ase import Atoms
    from ase.build import molecule
    from ase.geometry import get_distances

    rng = np.random.default_rng(seed)
    mol = molecule("CH3CH2OH")
    mol.positions -= mol.get_center_of_mass()
    L = n_per_side * spacing
    cell = np.eye(3) * L
    box = Atoms(cell=cell, pbc=True)
    for i in range(n_per_side):
        for j in range(n_per_side):
            for k in range(n_per_side):
                centre = (np.array([i, j, k]) + 0.5) * spacing
                for _attempt in range(200):
                    m = mol.copy()
                    q = rng.normal(size=4)
                    q /= np.linalg.norm(q)
                    a, b, c, d = q
                    R = np.array(
                        [
                            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
                        ]
                    )
                    m.positions = m.positions @ R.T + centre
                    if len(box) == 0:
                        break
                    _, dist = get_distances(m.positions, box.positions, cell=cell, pbc=True)
                    if dist.min() >= min_dist:
                        break
                else:  # pragma: no cover - geometry is generous
                    raise RuntimeError("could not place ethanol without overlap")
                box += m
    return box


def md_throughput(calc, atoms, steps: int, warmup: int = 5, dt_fs: float = 0.5, temperature_K: float = 300.0,
                  seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """Velocity-Verlet NVE steps per second with ``calc`` (one force call per step).

    The trajectory is timed in ``repeats`` consecutive segments of ``steps`` steps; the
    headline ``steps_per_s`` uses the median segment (robust to a busy machine), the
    best segment is reported too.
    """
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    at = atoms.copy()
    at.calc = calc
    MaxwellBoltzmannDistribution(at, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    dyn = VelocityVerlet(at, dt_fs * units.fs)
    dyn.run(warmup)
    e0 = at.get_total_energy()
    before = loadavg()
    seg = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dyn.run(steps)
        seg.append(time.perf_counter() - t0)
    e1 = at.get_total_energy()
    med = statistics.median(seg)
    return {
        "n_atoms": len(at),
        "steps": steps,
        "repeats": repeats,
        "steps_per_s": steps / med,
        "steps_per_s_best": steps / min(seg),
        "ms_per_step": 1e3 * med / steps,
        "segment_seconds": seg,
        "total_energy_change_eV": float(e1 - e0),
        "loadavg_before": before,
        "loadavg_after": loadavg(),
    }


def eval_scaling(calc, ns_per_side=(2, 3, 4, 5, 6), repeats: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Median wall time of one energy+forces evaluation for growing periodic ethanol boxes."""
    rows = []
    rng = np.random.default_rng(seed)
    systems = [("ethanol (isolated)", ethanol())] + [
        (f"{n ** 3} ethanol (periodic)", ethanol_box(n, seed=seed)) for n in ns_per_side
    ]
    for label, at0 in systems:
        at = at0.copy()
        at.calc = calc
        at.get_forces()  # warm-up (allocations, neighbour-list setup)
        times = []
        before = loadavg()
        for _ in range(repeats):
            at.positions = at0.positions + rng.normal(scale=1e-3, size=at0.positions.shape)
            t0 = time.perf_counter()
            at.get_potential_energy()
            at.get_forces()
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        rows.append(
            {
                "system": label,
                "n_atoms": len(at),
                "seconds": t,
                "us_per_atom": 1e6 * t / len(at),
                "loadavg_before": before,
                "loadavg_after": loadavg(),
            }
        )
    return rows


EV_PER_A3_TO_GPA = 160.21766208  # as sciml.metrics


def errors_on(frames, pred_E, pred_F) -> dict[str, float]:
    """:func:`errors` of predicted energies and forces against the labels of the ASE ``frames``."""
    return errors(pred_E, list(pred_F), [a.get_potential_energy() for a in frames], [a.get_forces() for a in frames],
                  [len(a) for a in frames])


def errors(pred_E, pred_F, ref_E, ref_F, n_atoms, pred_S=None, ref_S=None) -> dict[str, float]:
    """Energy/force (and stress) errors in meV, meV/Å (GPa), with the keys of :mod:`sciml.metrics`.

    Stress: Voigt 6-vectors in eV/Å^3 (ASE order); the MAE counts the 9 Cartesian components (each
    off-diagonal twice), as ``sciml.metrics`` does. Written out here (not imported) because the
    baseline environments do not have sciml installed.
    """
    pred_E = np.asarray(pred_E, float)
    ref_E = np.asarray(ref_E, float)
    dE = pred_E - ref_E
    dF = np.concatenate([np.asarray(p, float).ravel() - np.asarray(r, float).ravel() for p, r in zip(pred_F, ref_F)])
    out = {
        "n_structures": int(len(ref_E)),
        "energy_mae_meV": float(1e3 * np.mean(np.abs(dE))),
        "energy_rmse_meV": float(1e3 * np.sqrt(np.mean(dE**2))),
        "energy_mae_meV_per_atom": float(1e3 * np.mean(np.abs(dE) / np.asarray(n_atoms, float))),
        "energy_rmse_meV_per_atom": float(1e3 * np.sqrt(np.mean((dE / np.asarray(n_atoms, float)) ** 2))),
        "forces_mae_meV_per_A": float(1e3 * np.mean(np.abs(dF))),
        "forces_rmse_meV_per_A": float(1e3 * np.sqrt(np.mean(dF**2))),
    }
    if pred_S is not None and len(pred_S):
        dS = np.asarray(pred_S, float) - np.asarray(ref_S, float)  # (n, 6) Voigt
        full = np.concatenate([dS, dS[:, 3:]], axis=1)  # the 9 Cartesian components
        out["stress_mae_GPa"] = float(EV_PER_A3_TO_GPA * np.mean(np.abs(full)))
        out["stress_rmse_GPa"] = float(EV_PER_A3_TO_GPA * np.sqrt(np.mean(full**2)))
    return out


def predict(calc, frames, stress: bool = False) -> tuple[list, list, list]:
    """Energies, forces (and stress, Voigt) of ``calc`` on copies of ``frames``: ``(E, F, S)``, S empty without ``stress``."""
    pred_E, pred_F, pred_S = [], [], []
    for at in frames:
        b = at.copy()
        b.calc = calc
        pred_E.append(b.get_potential_energy())
        pred_F.append(b.get_forces())
        if stress:
            pred_S.append(b.get_stress())
    return pred_E, pred_F, pred_S


def test_errors(calc, test_path: str | Path) -> dict[str, Any]:
    """Errors of an ASE calculator on every frame of ``test_path`` plus the timing of the loop.

    Stress errors are included when every test frame is periodic and carries a stress label.
    """
    from ase.io import read

    test = read(test_path, index=":")
    with_stress = all(at.pbc.all() and "stress" in (at.calc.results if at.calc else {}) for at in test)
    (pred_E, pred_F, pred_S), m = measure(lambda: predict(calc, test, with_stress))
    ref_E = [at.get_potential_energy() for at in test]
    ref_F = [at.get_forces() for at in test]
    ref_S = [at.get_stress() for at in test] if with_stress else None
    return {**errors(pred_E, pred_F, ref_E, ref_F, [len(at) for at in test], pred_S if with_stress else None, ref_S),
            "predict_seconds": m["seconds"], "loadavg_before": m["loadavg_before"],
            "loadavg_after": m["loadavg_after"]}


def _atomic_write_text(path: str | Path, text: str) -> None:
    """Temp file + fsync + rename (as ``sciml._io``; standard library only, so baseline venvs need no sciml)."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(out_dir: Path, result: dict, markdown: str, name: str | None = None) -> None:
    """Write ``comparison.json`` and ``comparison.md`` (atomically) and print the Markdown table.

    With ``name``, the same JSON (with :func:`run_info`) also goes to ``results/<name>.json``.
    """
    write_json(out_dir / "comparison.json", result, echo=False)
    if name:
        save_result(name, result, threads=result.get("threads"))
    _atomic_write_text(out_dir / "comparison.md", markdown + "\n")
    print(markdown)


def write_json(path: str | Path | None, obj: dict, echo: bool = True) -> None:
    """Print ``obj`` as JSON (unless ``echo`` is false) and, if ``path`` is given, write it atomically."""
    text = json.dumps(obj, indent=2, default=float)
    if echo:
        print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(path, text + "\n")
