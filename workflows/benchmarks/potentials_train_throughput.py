"""Training throughput of sciml.potentials on the alloy set: optimiser steps per CPU-second, before/after.

Trains the benchmark configuration (``configs/sciml_alloys.yaml``) on the first ``--frames`` frames of
the alloy *training* split (1 torch thread) and times ``--steps`` optimiser steps after ``--warmup``
steps, all inside the first epoch (no validation in the timed window). Each version of sciml runs in
its own process; versions alternate for ``--rounds`` rounds so that both see the same machine load:

- ``after``: the sciml of this checkout;
- ``before``: ``sciml/`` of the git revision ``--before`` (``git archive`` into ``bench-data/``).

Reported per version: median CPU and wall milliseconds per step, steps and frames per CPU-second, and
the losses of the first steps, which must agree between the versions (same seed, same initial weights)
to float32 rounding — the check that the faster code computes the same numbers.

    python workflows/benchmarks/potentials_train_throughput.py --before 521a349 --rounds 3

Writes ``results/potentials_train_throughput.json`` (command, threads, load averages).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import io
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_common as bc  # noqa: E402

RESULT = "potentials_train_throughput"


def worker(a) -> int:
    """Time ``a.steps`` training steps of the benchmark configuration; print one JSON line."""
    import torch

    torch.set_num_threads(1)
    import sciml
    from sciml.atoms import read_frames
    from sciml.potentials import TrainConfig, train_potential

    from alloy_data import alloy_split

    paths = alloy_split(a.data_dir)
    train = read_frames(paths["train"])[: a.frames]
    valid = read_frames(paths["valid"])[:5]
    cfg = TrainConfig.from_yaml(a.config)
    cfg.progress, cfg.device = False, "cpu"
    if a.batch_size:
        cfg.batch_size = a.batch_size
    cfg.max_steps = a.warmup + a.steps
    if cfg.max_steps > -(-len(train) // cfg.batch_size):
        raise ValueError(f"--warmup + --steps = {cfg.max_steps} steps do not fit in one epoch of {len(train)} frames")
    marks: list[tuple[float, float, float]] = []

    def callback(info):
        marks.append((time.process_time(), time.perf_counter(), info["loss"]))

    load0 = bc.loadavg()
    train_potential(train, valid, None, cfg, resume=False, callback=callback)
    c0, w0, _ = marks[a.warmup - 1]
    c1, w1, _ = marks[-1]
    n_atoms = sum(len(f) for f in train) / len(train)
    print(json.dumps({"cpu_ms_per_step": (c1 - c0) / a.steps * 1e3, "wall_ms_per_step": (w1 - w0) / a.steps * 1e3,
                      "losses": [m[2] for m in marks], "batch_size": cfg.batch_size, "mean_atoms_per_frame": n_atoms,
                      "loadavg_start_end": [load0, bc.loadavg()],
                      "sciml_dir": str(Path(sciml.__file__).parent.relative_to(bc.REPO))}))
    return 0


def sciml_at(rev: str, dest: Path) -> Path:
    """``sciml/`` of git revision ``rev`` unpacked under ``dest/<rev>`` (a directory for PYTHONPATH)."""
    out = dest / rev
    if not (out / "sciml").is_dir():
        blob = subprocess.run(["git", "-C", str(bc.REPO), "archive", rev, "sciml"], check=True, capture_output=True).stdout
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="521a349", help="git revision of the 'before' sciml (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=0, help="override the configuration's batch size (0: keep)")
    p.add_argument("--config", type=Path, default=HERE / "configs" / "sciml_alloys.yaml")
    p.add_argument("--data-dir", type=Path, default=bc.WORK_DIR / "alloys")
    p.add_argument("--name", default=RESULT, help="results/<name>.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        return worker(a)
    versions = {"before": sciml_at(a.before, bc.WORK_DIR / "train_throughput"), "after": bc.REPO}
    args = ["--frames", str(a.frames), "--warmup", str(a.warmup), "--steps", str(a.steps), "--config", str(a.config),
            "--data-dir", str(a.data_dir), "--batch-size", str(a.batch_size)]
    runs: dict[str, list] = {v: [] for v in versions}
    load0 = bc.loadavg()
    for r in range(a.rounds):
        for v in (list(versions) if r % 2 == 0 else list(versions)[::-1]):
            env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIML_QUIET": "1",
                   "PYTHONPATH": os.pathsep.join([str(versions[v]), str(HERE)])}
            out = subprocess.run([sys.executable, __file__, "--worker", *args], env=env, check=True,
                                 capture_output=True, text=True, cwd=versions[v]).stdout
            doc = json.loads(out.strip().splitlines()[-1])
            runs[v].append(doc)
            print(f"round {r} {v:6s}: {doc['cpu_ms_per_step']:.1f} CPU-ms/step, {doc['wall_ms_per_step']:.1f} wall-ms/step"
                  f" (load {doc['loadavg_start_end'][0]})", flush=True)
    summary = {}
    for v, docs in runs.items():
        cpu = statistics.median(d["cpu_ms_per_step"] for d in docs)
        wall = statistics.median(d["wall_ms_per_step"] for d in docs)
        bs = docs[0]["batch_size"]
        summary[v] = {"cpu_ms_per_step_median": cpu, "wall_ms_per_step_median": wall,
                      "steps_per_cpu_s": 1e3 / cpu, "frames_per_cpu_s": bs * 1e3 / cpu,
                      "cpu_ms_per_step_all": [d["cpu_ms_per_step"] for d in docs], "batch_size": bs}
    lb, la = runs["before"][0]["losses"], runs["after"][0]["losses"]
    rel = [abs(x - y) / abs(x) for x, y in zip(lb, la)]
    summary["speedup_cpu"] = summary["before"]["cpu_ms_per_step_median"] / summary["after"]["cpu_ms_per_step_median"]
    summary["loss_max_rel_diff_first_steps"] = {"first_5": max(rel[:5]), f"all_{len(rel)}": max(rel)}
    print(f"before {summary['before']['steps_per_cpu_s']:.2f} steps/CPU-s, after {summary['after']['steps_per_cpu_s']:.2f}"
          f" steps/CPU-s: x{summary['speedup_cpu']:.2f}; losses agree to {max(rel[:5]):.1e} (first 5 steps),"
          f" {max(rel):.1e} (all {len(rel)})")
    doc = {"before_rev": a.before, "after_rev": bc.git_rev(), "frames": a.frames,
           "mean_atoms_per_frame": runs["after"][0]["mean_atoms_per_frame"], "warmup_steps": a.warmup,
           "timed_steps": a.steps, "config": str(a.config.relative_to(bc.REPO)) if a.config.is_absolute() else str(a.config),
           "loadavg_start_end": [load0, bc.loadavg()], "summary": summary,
           "runs": {v: [{k: d[k] for k in d if k != "losses"} for d in docs] for v, docs in runs.items()},
           "losses_first_round": {"before": lb, "after": la}}
    bc.save_result(a.name, doc, threads=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
