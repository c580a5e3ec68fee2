"""The Slurm executor: jobs as Slurm job arrays through submitit, waited for by polling their own
result files and ``squeue`` (see :mod:`.slurm_queue`), with bounded waiting.

Jobs asking for a GPU (``Job.gpu``) and the others go to separate arrays (different resources).
Each job's Slurm id and log paths are written to ``jobs/<name>/slurm.json``; a later run that finds
the id still in ``squeue`` waits for it instead of submitting it again.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..._io import atomic_write_json
from ..config import ExecutorConfig, parse_mem
from ..jobs import Job
from ..outcomes import JobOutcome, traceback_fields
from ..worker import clear_status, job_state, read_elapsed, read_error, run_job
from .base import Say
from .slurm_queue import log_tail, scontrol_state, squeue_states, submitit_error

__all__ = ["SlurmExecutor", "MAX_ARRAY"]

MAX_ARRAY = 1000  # tasks per submitted array (Slurm's default MaxArraySize is 1001)


@dataclass
class _Waiting:
    """State of one wait for submitted jobs."""

    pending: dict[str, dict]  # job name -> its slurm.json record
    outcomes: dict[str, JobOutcome] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)
    squeue_failing_since: float | None = None
    gone_since: dict[str, float] = field(default_factory=dict)
    last_states: dict[str, str] = field(default_factory=dict)
    last_line: str = ""

    def finish(self, name: str, outcome: JobOutcome) -> None:
        self.outcomes[name] = outcome
        del self.pending[name]


class SlurmExecutor:
    """Submit jobs through submitit as Slurm job arrays; poll their own result files and ``squeue``."""

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
        import submitit  # optional dependency: check() says how to install it

        submitted: dict[str, dict] = {}
        for gpu, group in self._groups(jobs):
            ex = submitit.SlurmExecutor(folder=self.folder / "%j", python=self.cfg.python)
            # Slurm's default MaxArraySize is 1001: split larger sweeps into several arrays
            batches = ([group[i:i + MAX_ARRAY] for i in range(0, len(group), MAX_ARRAY)] if self.cfg.array
                       else [[j] for j in group])
            for batch in batches:
                submitted.update(self._submit_batch(ex, gpu, batch, say))
        return submitted

    def _submit_batch(self, ex, gpu: bool, batch: list[Job], say: Say) -> dict[str, dict]:
        """One sbatch call (an array when the batch has several jobs); records ``slurm.json`` per job."""
        name = f"{self.workflow}" if len(batch) > 1 else f"{self.workflow}.{batch[0].name}"
        ex.update_parameters(**self.parameters(gpu, name[:120]))
        try:
            with ex.batch():
                sjobs = [ex.submit(run_job, j.fn, j.kwargs, str(self.out / "jobs" / j.name), True)
                         for j in batch]  # echo=True: output also in the Slurm log
        except Exception as exc:  # sbatch refused (bad partition, account, ...): recorded per job
            msg = " ".join(str(exc).strip().splitlines()[-3:])
            say(f"sbatch failed for {', '.join(j.name for j in batch)}: {msg}")
            return {j.name: {"error": "sbatch failed: " + msg} for j in batch}
        records = {}
        for j, sj in zip(batch, sjobs):
            rec = {"job_id": str(sj.job_id), "stdout": str(sj.paths.stdout), "stderr": str(sj.paths.stderr),
                   "result_pickle": str(sj.paths.result_pickle), "submitted": time.time(),
                   "array": len(batch) > 1}
            atomic_write_json(self.out / "jobs" / j.name / "slurm.json", rec)
            records[j.name] = rec
        ids = sjobs[0].job_id.split("_")[0]
        say(f"submitted {len(batch)} {'GPU' if gpu else 'CPU'} job(s) as Slurm job {ids}"
            + (" (array)" if len(batch) > 1 else "") + f"; logs in {self.folder / ids}*")
        return records

    def _in_flight(self, jobs: Sequence[Job], alive: dict | None) -> dict[str, dict]:
        found: dict[str, dict] = {}
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

    def _attach_or_submit(self, jobs: Sequence[Job], say: Say) -> dict[str, dict]:
        """Slurm records of the jobs: those still queued from an earlier run, the others submitted now."""
        attached = self._in_flight(jobs, squeue_states())
        if attached:
            say(f"{len(attached)} job(s) already queued or running from an earlier submission; waiting for them: "
                + ", ".join(f"{n} ({r['job_id']})" for n, r in attached.items()))
        fresh = [j for j in jobs if j.name not in attached]
        for j in fresh:
            clear_status(self.out / "jobs" / j.name)
        records = dict(attached)
        records.update(self._submit(fresh, say) if fresh else {})
        return records

    # -- run
    def check(self) -> None:
        """Raise RuntimeError when this machine cannot submit Slurm jobs."""
        missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
        if missing:
            raise RuntimeError(f"executor 'slurm': {', '.join(missing)} not found on PATH; run on a Slurm login "
                               "node or use --executor local")
        try:
            import submitit  # noqa: F401  (optional dependency, checked before anything is written)
        except ImportError as exc:
            raise RuntimeError("executor 'slurm' needs the submitit package: pip install submitit") from exc

    def run(self, jobs: Sequence[Job], say: Say, wait: bool = True) -> dict[str, JobOutcome]:
        self.check()
        records = self._attach_or_submit(jobs, say)
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
        outcomes.update(self._wait(pending, say))
        return outcomes

    # -- waiting
    def _wait(self, pending: dict[str, dict], say: Say) -> dict[str, JobOutcome]:
        """Poll until every pending job has an outcome, ``squeue`` keeps failing, or ``wait_timeout``."""
        w = _Waiting(dict(pending))
        while w.pending:
            self._collect_finished(w, say)
            if not w.pending:
                break
            alive = squeue_states()
            now = time.monotonic()
            if alive is None:
                if self._squeue_down(w, now, say):
                    break
            else:
                w.squeue_failing_since = None
                self._collect_vanished(w, alive, now, say)
            if not w.pending:
                break
            self._say_progress(w, say)
            if self._timed_out(w, now, say):
                break
            time.sleep(self.cfg.poll_interval)
        return w.outcomes

    def _collect_finished(self, w: _Waiting, say: Say) -> None:
        """Jobs whose folder has result.json or error.json."""
        for n in list(w.pending):
            wd = self.out / "jobs" / n
            rec = w.pending[n]
            state = job_state(wd)
            if state == "completed":
                o = JobOutcome(n, "completed", read_elapsed(wd), log=rec["stdout"], slurm_job_id=rec["job_id"])
            elif state == "failed":
                o = JobOutcome(n, "failed", read_elapsed(wd), log=rec["stderr"], slurm_job_id=rec["job_id"],
                               **read_error(wd))
            else:
                continue
            w.finish(n, o)
            say(f"{n} ({o.slurm_job_id}) {o.state}" + (f": {o.error}" if o.error else ""))

    def _collect_vanished(self, w: _Waiting, alive: dict, now: float, say: Say) -> None:
        """Jobs no longer in ``squeue`` without result.json or error.json (after a grace period): failed with
        the traceback submitit recorded, else lost with Slurm's state and the log tail."""
        grace = max(3.0, 2 * self.cfg.poll_interval)
        for n in list(w.pending):
            rec = w.pending[n]
            jid = rec["job_id"]
            if jid in alive:
                w.gone_since.pop(n, None)
                st, reason = alive[jid]
                w.last_states[n] = st + (f" ({reason})" if reason and reason != "None" else "")
                continue
            first = w.gone_since.setdefault(n, now)
            if now - first < grace:  # let the result file appear (shared file systems lag)
                continue
            raised = submitit_error(rec.get("result_pickle"))
            if raised is not None:  # an exception outside run_job (e.g. unpickling the job on the node)
                o = JobOutcome(n, "failed", log=rec["stderr"], slurm_job_id=jid, **traceback_fields(raised))
            else:
                why = scontrol_state(jid) or "state unknown (not in squeue)"
                tail = log_tail(rec.get("stderr"))
                o = JobOutcome(n, "lost", error=f"Slurm job {jid} ended without writing a result: {why}"
                               + (f"; log tail: {tail}" if tail else ""), log=rec["stderr"], slurm_job_id=jid)
            w.finish(n, o)
            say(f"{n} ({jid}) {o.state}: {o.error}")

    def _squeue_down(self, w: _Waiting, now: float, say: Say) -> bool:
        """``squeue`` failed: keep waiting unless it has failed for too long (then: timeout outcomes)."""
        limit = max(600.0, 50 * self.cfg.poll_interval)
        w.squeue_failing_since = w.squeue_failing_since or now
        if now - w.squeue_failing_since <= limit:
            return False
        n_left = len(w.pending)
        for n, rec in list(w.pending.items()):
            w.finish(n, JobOutcome(n, "timeout", error=f"squeue failed for {limit:g} s; Slurm job {rec['job_id']} "
                                   "state unknown; run again later to collect it", log=rec["stdout"],
                                   slurm_job_id=rec["job_id"]))
        say(f"squeue keeps failing; stopped waiting for {n_left} job(s)")
        return True

    def _say_progress(self, w: _Waiting, say: Say) -> None:
        counts: dict[str, int] = {}
        for n in w.pending:
            counts[w.last_states.get(n, "submitted")] = counts.get(w.last_states.get(n, "submitted"), 0) + 1
        line = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        if line != w.last_line:
            w.last_line = line
            say(f"waiting for {len(w.pending)} job(s): {line}")

    def _timed_out(self, w: _Waiting, now: float, say: Say) -> bool:
        """``wait_timeout`` reached: the pending jobs get ``timeout`` outcomes (they are left running)."""
        if self.cfg.wait_timeout is None or now - w.t0 <= self.cfg.wait_timeout:
            return False
        n_left = len(w.pending)
        for n, rec in list(w.pending.items()):
            w.finish(n, JobOutcome(n, "timeout", error=f"still queued or running after {self.cfg.wait_timeout:g} s "
                                   f"(Slurm job {rec['job_id']}, left running); run again later to collect it",
                                   log=rec["stdout"], slurm_job_id=rec["job_id"]))
        say(f"stopped waiting after {self.cfg.wait_timeout:g} s: {n_left} job(s) still in Slurm")
        return True
