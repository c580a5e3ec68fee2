"""Executors: run a list of jobs locally (in process or a process pool) or on Slurm via submitit.

Both call :func:`sciml.workflows.engine.run_job` for each job, which writes ``result.json`` or
``error.json`` in the job folder. The Slurm executor learns job states from those files and from
``squeue``/``scontrol`` -- never from ``sacct``, which fails on clusters without an accounting
database (and then submitit would wait forever for a job that died) -- and its waiting is bounded.
"""
from __future__ import annotations

import contextlib
import getpass
import json
import pickle
import shutil
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Sequence

from .._io import atomic_write_json
from .config import ExecutorConfig, parse_mem
from .engine import Job, JobOutcome, job_state, run_job

__all__ = ["LocalExecutor", "SlurmExecutor", "make_executor", "squeue_states"]

Say = Callable[[str], None]
MAX_ARRAY = 1000  # tasks per submitted array (Slurm's default MaxArraySize is 1001)


def _error_message(workdir: Path) -> str:
    try:
        err = json.loads((workdir / "error.json").read_text())
        return f"{err.get('type')}: {err.get('message')}"
    except (FileNotFoundError, json.JSONDecodeError):
        return "failed (no error.json)"


def _elapsed(workdir: Path) -> float | None:
    try:
        return json.loads((workdir / "status.json").read_text()).get("elapsed_s")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _clear(workdir: Path) -> None:
    for name in ("error.json", "status.json", "slurm.json"):
        with contextlib.suppress(FileNotFoundError):
            (workdir / name).unlink()


def make_executor(cfg: ExecutorConfig, out: Path, workflow: str) -> "LocalExecutor | SlurmExecutor":
    """The executor for ``cfg.kind``."""
    if cfg.kind == "slurm":
        return SlurmExecutor(cfg, out, workflow)
    return LocalExecutor(cfg, out, workflow)


# --------------------------------------------------------------------------- local
class LocalExecutor:
    """Run jobs on this machine: one after the other in this process (``workers: 1``) or in a pool
    of ``workers`` spawned processes. A failing job does not stop the others."""

    def __init__(self, cfg: ExecutorConfig, out: Path, workflow: str) -> None:
        self.cfg, self.out, self.workflow = cfg, Path(out), workflow

    def check(self) -> None:
        """Nothing to check for local runs."""

    def describe(self, jobs: Sequence[Job]) -> list[str]:
        mode = "sequentially in this process" if self.cfg.workers == 1 else f"in {self.cfg.workers} worker processes"
        return [f"local executor: {len(jobs)} job(s) {mode}"]

    def _outcome(self, job: Job, error: str | None = None) -> JobOutcome:
        wd = self.out / "jobs" / job.name
        state = job_state(wd)
        if state == "completed":
            return JobOutcome(job.name, "completed", _elapsed(wd), log=str(wd / "job.log"))
        if state == "failed":
            return JobOutcome(job.name, "failed", _elapsed(wd), _error_message(wd), log=str(wd / "job.log"))
        return JobOutcome(job.name, "lost", None, error or "the job ended without result.json or error.json",
                          log=str(wd / "job.log"))

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        outcomes: dict[str, JobOutcome] = {}
        for job in jobs:
            _clear(self.out / "jobs" / job.name)
        if self.cfg.workers == 1 or len(jobs) <= 1:
            for i, job in enumerate(jobs, 1):
                wd = self.out / "jobs" / job.name
                say(f"[{i}/{len(jobs)}] {job.name} running (log: {wd / 'job.log'})")
                try:
                    run_job(job.fn, job.kwargs, wd)
                except Exception:  # recorded in error.json by run_job
                    pass
                outcomes[job.name] = o = self._outcome(job)
                say(f"[{i}/{len(jobs)}] {job.name} {o.state}"
                    + (f" in {o.elapsed_s:.1f} s" if o.elapsed_s is not None else "")
                    + (f": {o.error}" if o.error else ""))
            return outcomes
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # safe with torch threads; needs importable fns
        with ProcessPoolExecutor(max_workers=min(self.cfg.workers, len(jobs)), mp_context=ctx) as pool:
            futures = {pool.submit(run_job, job.fn, job.kwargs, str(self.out / "jobs" / job.name)): job
                       for job in jobs}
            say(f"{len(jobs)} job(s) started in {min(self.cfg.workers, len(jobs))} worker processes")
            for fut in as_completed(futures):
                job = futures[fut]
                err = None
                try:
                    fut.result()
                except BrokenProcessPool as exc:
                    err = f"worker process died: {exc}"
                except Exception:
                    pass
                outcomes[job.name] = o = self._outcome(job, err)
                say(f"{job.name} {o.state}" + (f": {o.error}" if o.error else ""))
        return outcomes


# --------------------------------------------------------------------------- slurm
def squeue_states(user: str | None = None, env: dict | None = None) -> dict[str, tuple[str, str]] | None:
    """``{job_id: (state, reason)}`` for the user's jobs (array tasks one by one, ``123_4``).

    Returns None when ``squeue`` fails (controller unreachable): callers then keep waiting.
    """
    user = user or getpass.getuser()
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-u", user, "-o", "%i|%T|%r"], capture_output=True,
                              text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    states: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2:
            states[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return states


def scontrol_state(job_id: str) -> str | None:
    """``JobState`` and ``Reason`` from ``scontrol show job`` (available for MinJobAge after the end)."""
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    fields = dict(tok.split("=", 1) for tok in proc.stdout.split() if "=" in tok)
    state = fields.get("JobState")
    if state is None:
        return None
    reason = fields.get("Reason", "None")
    code = fields.get("ExitCode")
    return state + (f" (reason {reason})" if reason not in ("None", "") else "") + (f", exit code {code}" if code else "")


def _tail(path: str | None, n: int = 3) -> str:
    if not path:
        return ""
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


class SlurmExecutor:
    """Submit jobs through submitit as Slurm job arrays; poll their own result files and ``squeue``.

    Jobs asking for a GPU (``Job.gpu``) and the others go to separate arrays (different resources).
    Each job's Slurm id and log paths are written to ``jobs/<name>/slurm.json``; a later run that
    finds the id still in ``squeue`` waits for it instead of submitting it again.
    """

    def __init__(self, cfg: ExecutorConfig, out: Path, workflow: str) -> None:
        self.cfg, self.out, self.workflow = cfg, Path(out), workflow
        self.folder = Path(cfg.log_dir).absolute() if cfg.log_dir else self.out / "slurm"

    # -- parameters
    def parameters(self, gpu: bool, job_name: str) -> dict:
        """submitit ``SlurmExecutor.update_parameters`` arguments for a job (array) of this kind."""
        c = self.cfg
        p: dict = {"job_name": job_name, "time": c.time_minutes, "cpus_per_task": c.cpus, "nodes": 1,
                   "ntasks_per_node": 1, "array_parallelism": c.array_parallelism}
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(c, key):
                p[key] = getattr(c, key)
        if c.mem is not None:
            p["mem"] = parse_mem(c.mem)
        if gpu and c.gpus:
            p["gpus_per_node"] = c.gpus
            if c.ddp:  # one process per GPU; run_job sets the rendezvous, rank 0 writes the result
                p["ntasks_per_node"] = c.gpus
        if c.setup:
            p["setup"] = list(c.setup)
        if c.additional:
            p["additional_parameters"] = {k.replace("_", "-"): v for k, v in c.additional.items()}
        return p

    def describe(self, jobs: Sequence[Job]) -> list[str]:
        lines = []
        for gpu, group in self._groups(jobs):
            p = self.parameters(gpu, self.workflow)
            flags = " ".join(f"--{k.replace('_', '-')}={v}" for k, v in p.items()
                             if k not in ("job_name", "setup", "additional_parameters", "array_parallelism"))
            kind = f"array of {len(group)}" if self.cfg.array and len(group) > 1 else f"{len(group)} single job(s)"
            lines.append(f"slurm: {kind} {'GPU' if gpu else 'CPU'} job(s) via submitit: {flags}"
                         + (f" --array=0-{len(group) - 1}%{min(len(group), self.cfg.array_parallelism)}"
                            if self.cfg.array and len(group) > 1 else ""))
            for k, v in (p.get("additional_parameters") or {}).items():
                lines.append(f"  extra sbatch option --{k}={v}")
            for s in p.get("setup", []):
                lines.append(f"  setup: {s}")
            lines.append(f"  logs: {self.folder}/<job id>/")
        return lines

    def _groups(self, jobs: Sequence[Job]) -> list[tuple[bool, list[Job]]]:
        groups = []
        for gpu in (False, True):
            g = [j for j in jobs if bool(j.gpu) == gpu]
            if g:
                groups.append((gpu, g))
        return groups

    # -- submission
    def _submit(self, jobs: Sequence[Job], say: Say) -> dict[str, dict]:
        import submitit

        submitted: dict[str, dict] = {}
        for gpu, group in self._groups(jobs):
            ex = submitit.SlurmExecutor(folder=self.folder / "%j", python=self.cfg.python)
            # Slurm's default MaxArraySize is 1001: split larger sweeps into several arrays
            batches = ([group[i:i + MAX_ARRAY] for i in range(0, len(group), MAX_ARRAY)] if self.cfg.array
                       else [[j] for j in group])
            for batch in batches:
                name = f"{self.workflow}" if len(batch) > 1 else f"{self.workflow}.{batch[0].name}"
                ex.update_parameters(**self.parameters(gpu, name[:120]))
                try:
                    with ex.batch():
                        sjobs = [ex.submit(run_job, j.fn, j.kwargs, str(self.out / "jobs" / j.name), True)
                                 for j in batch]  # echo=True: output also in the Slurm log
                except Exception as exc:  # sbatch refused (bad partition, account, ...)
                    msg = str(exc).strip().splitlines()
                    for j in batch:
                        submitted[j.name] = {"error": "sbatch failed: " + " ".join(msg[-3:])}
                    say(f"sbatch failed for {', '.join(j.name for j in batch)}: {' '.join(msg[-3:])}")
                    continue
                for j, sj in zip(batch, sjobs):
                    rec = {"job_id": str(sj.job_id), "stdout": str(sj.paths.stdout), "stderr": str(sj.paths.stderr),
                           "result_pickle": str(sj.paths.result_pickle), "submitted": time.time(),
                           "array": len(batch) > 1}
                    atomic_write_json(self.out / "jobs" / j.name / "slurm.json", rec)
                    submitted[j.name] = rec
                ids = sjobs[0].job_id.split("_")[0]
                say(f"submitted {len(batch)} {'GPU' if gpu else 'CPU'} job(s) as Slurm job {ids}"
                    + (" (array)" if len(batch) > 1 else "") + f"; logs in {self.folder / ids}*")
        return submitted

    def _in_flight(self, jobs: Sequence[Job], alive: dict | None) -> dict[str, dict]:
        found = {}
        if not alive:
            return found
        for j in jobs:
            try:
                rec = json.loads((self.out / "jobs" / j.name / "slurm.json").read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            if rec.get("job_id") in alive:
                found[j.name] = rec
        return found

    @staticmethod
    def _submitit_error(rec: dict) -> str | None:
        """The error submitit recorded (e.g. the function could not be unpickled on the node)."""
        path = rec.get("result_pickle")
        if not path or not Path(path).exists():
            return None
        try:
            with open(path, "rb") as fh:
                status, value = pickle.load(fh)
        except Exception:
            return None
        if status == "error":
            lines = [ln for ln in str(value).strip().splitlines() if ln.strip()]
            return lines[-1] if lines else "error"
        return None

    # -- run
    def check(self) -> None:
        """Raise RuntimeError when this machine cannot submit Slurm jobs."""
        missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
        if missing:
            raise RuntimeError(f"executor 'slurm': {', '.join(missing)} not found on PATH; run on a Slurm login "
                               "node or use --executor local")
        try:
            import submitit  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("executor 'slurm' needs the submitit package: pip install submitit") from exc

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        self.check()
        alive = squeue_states()
        attached = self._in_flight(jobs, alive)
        if attached:
            say(f"{len(attached)} job(s) already queued or running from an earlier submission; waiting for them: "
                + ", ".join(f"{n} ({r['job_id']})" for n, r in attached.items()))
        fresh = [j for j in jobs if j.name not in attached]
        for j in fresh:
            _clear(self.out / "jobs" / j.name)
        records = dict(attached)
        records.update(self._submit(fresh, say) if fresh else {})
        outcomes: dict[str, JobOutcome] = {}
        pending: dict[str, dict] = {}
        for j in jobs:
            rec = records[j.name]
            if "error" in rec:
                outcomes[j.name] = JobOutcome(j.name, "failed", error=rec["error"])
            else:
                pending[j.name] = rec
        if not wait:
            for n, rec in pending.items():
                outcomes[n] = JobOutcome(n, "submitted", log=rec["stdout"], slurm_job_id=rec["job_id"])
            say(f"{len(pending)} job(s) submitted; not waiting. Run the same command again to collect results "
                "(jobs still in the queue are not submitted twice).")
            return outcomes

        t0 = time.monotonic()
        squeue_failing_since: float | None = None
        squeue_limit = max(600.0, 50 * self.cfg.poll_interval)
        gone_since: dict[str, float] = {}
        last_states: dict[str, str] = {}
        last_line = ""
        grace = max(3.0, 2 * self.cfg.poll_interval)
        while pending:
            for n in list(pending):
                wd = self.out / "jobs" / n
                rec = pending[n]
                state = job_state(wd)
                if state == "completed":
                    outcomes[n] = JobOutcome(n, "completed", _elapsed(wd), log=rec["stdout"], slurm_job_id=rec["job_id"])
                elif state == "failed":
                    outcomes[n] = JobOutcome(n, "failed", _elapsed(wd), _error_message(wd), log=rec["stderr"],
                                             slurm_job_id=rec["job_id"])
                else:
                    continue
                del pending[n]
                o = outcomes[n]
                say(f"{n} ({o.slurm_job_id}) {o.state}" + (f": {o.error}" if o.error else ""))
            if not pending:
                break
            alive = squeue_states()
            now = time.monotonic()
            if alive is None:
                squeue_failing_since = squeue_failing_since or now
                if now - squeue_failing_since > squeue_limit:
                    for n, rec in pending.items():
                        outcomes[n] = JobOutcome(
                            n, "timeout", error=f"squeue failed for {squeue_limit:g} s; Slurm job {rec['job_id']} "
                            "state unknown; run again later to collect it", log=rec["stdout"], slurm_job_id=rec["job_id"])
                    say(f"squeue keeps failing; stopped waiting for {len(pending)} job(s)")
                    break
            else:
                squeue_failing_since = None
                for n in list(pending):
                    rec = pending[n]
                    jid = rec["job_id"]
                    if jid in alive:
                        gone_since.pop(n, None)
                        st, reason = alive[jid]
                        last_states[n] = st + (f" ({reason})" if reason and reason != "None" else "")
                        continue
                    first = gone_since.setdefault(n, now)
                    if now - first < grace:  # let the result file appear (shared file systems lag)
                        continue
                    why = self._submitit_error(rec) or scontrol_state(jid) or "state unknown (not in squeue)"
                    tail = _tail(rec.get("stderr"))
                    outcomes[n] = JobOutcome(
                        n, "lost", error=f"Slurm job {jid} ended without writing a result: {why}"
                        + (f"; log tail: {tail}" if tail else ""), log=rec["stderr"], slurm_job_id=jid)
                    say(f"{n} ({jid}) lost: {outcomes[n].error}")
                    del pending[n]
            if not pending:
                break
            counts: dict[str, int] = {}
            for n in pending:
                counts[last_states.get(n, "submitted")] = counts.get(last_states.get(n, "submitted"), 0) + 1
            line = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            if line != last_line:
                last_line = line
                say(f"waiting for {len(pending)} job(s): {line}")
            if self.cfg.wait_timeout is not None and now - t0 > self.cfg.wait_timeout:
                for n, rec in pending.items():
                    outcomes[n] = JobOutcome(
                        n, "timeout", error=f"still queued or running after {self.cfg.wait_timeout:g} s "
                        f"(Slurm job {rec['job_id']}, left running); run again later to collect it",
                        log=rec["stdout"], slurm_job_id=rec["job_id"])
                say(f"stopped waiting after {self.cfg.wait_timeout:g} s: {len(pending)} job(s) still in Slurm")
                break
            time.sleep(self.cfg.poll_interval)
        return outcomes
