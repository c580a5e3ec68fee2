"""What Slurm says about submitted jobs: ``squeue``, ``scontrol`` and submitit's own result files.

Never ``sacct``: it fails on clusters without an accounting database (and submitit would then wait
for ever for a job that died).
"""
from __future__ import annotations

import getpass
import pickle
import subprocess
from pathlib import Path

__all__ = ["squeue_states", "scontrol_state", "submitit_error", "log_tail"]


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


def submitit_error(result_pickle: str | None) -> str | None:
    """The traceback submitit recorded for a job that raised (e.g. its function could not be unpickled
    on the node); None when there is no readable error record."""
    if not result_pickle or not Path(result_pickle).exists():
        return None
    try:
        with open(result_pickle, "rb") as fh:
            status, value = pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError):
        return None  # half-written or foreign file: the caller falls back to Slurm's own state
    if status == "error":
        return str(value).strip() or "error (submitit recorded no traceback)"
    return None


def log_tail(path: str | None, n: int = 3) -> str:
    """The last ``n`` non-empty lines of a log file, joined by `` | `` ("" when unreadable)."""
    if not path:
        return ""
    try:
        lines = [ln for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])
