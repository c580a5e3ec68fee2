"""A throw-away single-node Slurm cluster on 127.0.0.1 for tests (no systemd, no accounting).

Usage::

    with LocalSlurmCluster() as cluster:      # starts munged, slurmctld, slurmd
        env = cluster.env                     # SLURM_CONF etc. for client commands
        ...

Needs the Debian packages ``slurmd slurmctld slurm-client munge`` (Slurm 22.05) and root
(slurmd must run as root to start jobs as the submitting user). Everything lives in a fresh
directory under /tmp with world-executable parents (munged refuses anything else); all daemons
listen on 127.0.0.1 on free ports; daemons are stopped by PID after cancelling leftover jobs
(jobs outlive stopped daemons otherwise).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel")


def missing_binaries() -> list[str]:
    """Names of the Slurm/munge programs that are not on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [b for b in SLURM_BINARIES if shutil.which(b, path=path) is None]


def _which(name: str) -> str:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(name)
    return found


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalSlurmCluster:
    """Start (``start()``) and stop (``stop()``) munged + slurmctld + slurmd on 127.0.0.1.

    Parameters
    ----------
    cpus:
        CPUs the node advertises (may exceed the real count: ``SlurmdParameters=config_overrides``).
    gpus:
        Fake GPUs (``Gres=gpu:N`` without device files) so that ``--gpus-per-node`` requests schedule.
    memory_mb:
        Memory the node advertises.
    """

    def __init__(self, cpus: int = 4, gpus: int = 2, memory_mb: int = 4096, partition: str = "debug") -> None:
        self.cpus, self.gpus, self.memory_mb, self.partition = cpus, gpus, memory_mb, partition
        self.node = "sciml-node"
        self.root: Path | None = None
        self.pids: dict[str, int] = {}

    # ------------------------------------------------------------------ config
    def _write_files(self) -> None:
        root = self.root
        assert root is not None
        for sub in ("munge", "state", "spool", "log", "run"):
            (root / sub).mkdir(mode=0o755)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        ctld_port, slurmd_port, srun_lo = _free_ports(3)
        self.ports = {"slurmctld": ctld_port, "slurmd": slurmd_port}
        srun_range = f"{srun_lo + 1000}-{srun_lo + 1100}" if srun_lo + 1100 < 65000 else "40000-40100"
        self.munge_socket = root / "munge" / "munge.socket.2"
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        conf = f"""\
ClusterName=sciml-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SrunPortRange={srun_range}
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=debug2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
MessageTimeout=20
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={self.cpus} RealMemory={self.memory_mb}{gres} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        self.conf = root / "slurm.conf"
        self.conf.write_text(conf)
        # Fake GPUs: Slurm drops file-less GPUs, so point each at an empty file (nothing binds them).
        for i in range(self.gpus):
            (root / "run" / f"fakegpu{i}").touch()
        gres_conf = (
            f"NodeName={self.node} Name=gpu File={root}/run/fakegpu[0-{self.gpus - 1}]\n" if self.gpus else ""
        )
        (root / "gres.conf").write_text(gres_conf)
        (root / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nIgnoreSystemd=yes\n")

    @property
    def env(self) -> dict[str, str]:
        """Environment for Slurm client commands (``sbatch``, ``squeue``...) talking to this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        return env

    # ------------------------------------------------------------------ control
    def start(self, timeout: float = 30.0) -> "LocalSlurmCluster":
        """Write the configuration, start the daemons, wait until the node is idle."""
        base = Path(tempfile.mkdtemp(prefix="sciml-slurm-", dir="/tmp"))
        base.chmod(0o755)
        self.root = base
        self._write_files()
        root = base
        try:
            subprocess.run(
                [_which("munged"), f"--socket={self.munge_socket}", f"--key-file={root}/munge/munge.key",
                 f"--pid-file={root}/run/munged.pid", f"--log-file={root}/log/munged.log",
                 f"--seed-file={root}/munge/munged.seed", "--force"],
                check=True, capture_output=True, text=True, timeout=30,
            )
            self.pids["munged"] = self._read_pid(root / "run" / "munged.pid", timeout)
            env = self.env
            subprocess.run([_which("slurmctld"), "-f", str(self.conf)], check=True, env=env,
                           capture_output=True, text=True, timeout=30)
            self.pids["slurmctld"] = self._read_pid(root / "run" / "slurmctld.pid", timeout)
            subprocess.run([_which("slurmd"), "-f", str(self.conf), "-N", self.node], check=True, env=env,
                           capture_output=True, text=True, timeout=30)
            self.pids["slurmd"] = self._read_pid(root / "run" / "slurmd.pid", timeout)
            self._wait_idle(timeout)
        except BaseException as exc:
            logs = self.logs()
            self.stop()
            if isinstance(exc, subprocess.CalledProcessError):
                raise RuntimeError(f"{exc.cmd[0]} failed: {exc.stderr}\n{logs}") from exc
            raise RuntimeError(f"local Slurm cluster did not start: {exc}\n{logs}") from exc
        return self

    def _read_pid(self, path: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return int(path.read_text().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        raise TimeoutError(f"no pid file {path}")

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
            out = proc.stdout.strip() + proc.stderr.strip()
            if proc.returncode == 0 and out.split() and out.split()[0].rstrip("*~#") in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"node not idle after {timeout} s (sinfo: {out!r})")

    def logs(self) -> str:
        """The daemons' log tails (for error messages)."""
        if self.root is None:
            return ""
        parts = []
        for name in ("munged", "slurmctld", "slurmd"):
            path = self.root / "log" / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}.log ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-25:]))
        return "\n".join(parts)

    def cancel_all(self) -> None:
        """Cancel every job of this cluster (jobs outlive stopped daemons)."""
        if "slurmctld" in self.pids:
            subprocess.run(["scancel", "--full", "--user", str(os.getuid())], env=self.env, capture_output=True, timeout=30)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                proc = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True)
                if proc.returncode != 0 or not proc.stdout.strip():
                    break
                time.sleep(0.2)

    def stop(self) -> None:
        """Cancel leftover jobs, then stop slurmd, slurmctld and munged by PID; remove the directory."""
        try:
            self.cancel_all()
        finally:
            for group in (("slurmd", "slurmctld"), ("munged",)):  # daemons of a group stop in parallel
                pids = [self.pids.pop(n) for n in group if n in self.pids]
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
                    time.sleep(0.05)
                for pid in pids:
                    if _pid_alive(pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
            if self.root is not None and not os.environ.get("SCIML_KEEP_SLURM_DIR"):
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def __enter__(self) -> "LocalSlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
