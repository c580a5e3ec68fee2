#!/usr/bin/env python3
"""Install sciml into a virtual environment and run the demo or the tests: the README's two commands.

    python3 workflows/bootstrap.py demo        # install, then `sciml demo` (report in demo-report/)
    python3 workflows/bootstrap.py test        # install (+ test extras, a local Slurm as root), then pytest
    python3 workflows/bootstrap.py install     # only the environment

Needs only Python >= 3.10 with its ``venv`` module (Debian/Ubuntu: ``apt-get install python3-venv``)
and pip access to PyPI; it says so and stops when either is missing. Everything else goes into the
virtual environment ``--venv`` (default ``.venv``), made from the interpreter that runs this script.

By default the venv is made with ``--system-site-packages``, so packages already installed for that
Python -- torch above all, CPU or CUDA -- are reused, not downloaded again; ``--isolated`` makes a
venv that sees only what sciml declares (CI uses it to reproduce a bare machine). Without any torch,
``--torch-spec`` (default ``torch==2.13.0``) is installed first; on CPU-only machines that see only
PyPI, pass ``--pip-torch-args "--index-url https://download.pytorch.org/whl/cpu"`` to avoid GBs of
CUDA wheels. Each option also reads an environment variable (``SCIML_VENV``, ``SCIML_ISOLATED=1``,
``TORCH_SPEC``, ``PIP_TORCH_ARGS``, ``DEMO_OUT``, ``PYTEST_ARGS``).

Only the standard library is used here, and the syntax stays old enough that an old interpreter
reaches the version check and its message.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    sys.stderr.write("ERROR: " + msg + "\n")
    sys.exit(1)


def check_python():
    if sys.version_info < (3, 10):
        fail("sciml needs Python >= 3.10; this is %s (%s). Run this script with a newer python3."
             % (sys.version.split()[0], sys.executable))
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        fail("%s has no working venv module: on Debian/Ubuntu run 'apt-get install python3-venv' "
             "(or python3.X-venv), then run this command again." % sys.executable)


def run(cmd, **kw):
    print("+ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)


def venv_python(venv_dir):
    return os.path.join(venv_dir, "Scripts" if os.name == "nt" else "bin", "python")


def install(args):
    check_python()
    venv_dir = os.path.join(ROOT, args.venv)
    py = venv_python(venv_dir)
    if not os.path.exists(py):
        flags = [] if args.isolated else ["--system-site-packages"]
        if run([sys.executable, "-m", "venv", *flags, venv_dir]) != 0:
            fail("could not create the virtual environment %s (is python3-venv installed?)" % venv_dir)
    has_torch = subprocess.call([py, "-c", "import torch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0
    if has_torch:
        version = subprocess.check_output([py, "-c", "import torch; print(torch.__version__)"], text=True).strip()
        print("reusing installed torch " + version, flush=True)
    else:
        print("installing " + args.torch_spec, flush=True)
        if run([py, "-m", "pip", "install", *shlex.split(args.pip_torch_args), args.torch_spec]) != 0:
            fail("could not install %s (pip access to PyPI, or --torch-spec / --pip-torch-args)" % args.torch_spec)
    extras = ".[test]" if args.command == "test" else "."
    if run([py, "-m", "pip", "install", "-q", "-e", extras]) != 0:
        fail("pip could not install sciml and its dependencies (see pip's message above)")
    return py


def install_slurm():
    """A single-node Slurm for the cluster tests (Debian/Ubuntu, as root); best effort."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        print("slurm already installed")
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.call(["apt-get", "update", "-qq"], env=env) == 0 and subprocess.call(
            ["apt-get", "install", "-y", "-qq", "slurmd", "slurmctld", "slurm-client", "munge"],
            env=env, stdout=subprocess.DEVNULL) == 0
        print("installed slurm" if ok else "WARNING: could not install slurm; Slurm tests will be skipped")
    else:
        print("WARNING: slurm not installed (needs root + apt-get); Slurm tests will be skipped")


def main(argv=None):
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["install", "demo", "test"])
    ap.add_argument("--venv", default=env("SCIML_VENV", ".venv"), help="virtual environment folder (default .venv)")
    ap.add_argument("--isolated", action="store_true", default=env("SCIML_ISOLATED", "0") in ("1", "yes", "true"),
                    help="make the venv without --system-site-packages")
    ap.add_argument("--torch-spec", default=env("TORCH_SPEC", "torch==2.13.0"))
    ap.add_argument("--pip-torch-args", default=env("PIP_TORCH_ARGS", ""))
    ap.add_argument("--demo-out", default=env("DEMO_OUT", "demo-report"))
    ap.add_argument("--pytest-args", default=env("PYTEST_ARGS", "-n 2"))
    ap.add_argument("--no-slurm", action="store_true", help="do not try to install Slurm for the cluster tests")
    args = ap.parse_args(argv)
    py = install(args)
    if args.command == "demo":
        return run([py, "-m", "sciml", "demo", "--out", args.demo_out])
    if args.command == "test":
        if not args.no_slurm:
            install_slurm()
        rc = run([py, "-m", "pytest", *shlex.split(args.pytest_args)])
        if rc == 5:
            print("pytest collected no tests")
            return 1
        return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
