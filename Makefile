# sciml: the two commands of the README.
#   make demo   -- install, then run the end-to-end demo (report in demo-report/)
#   make test   -- install (with test extras and a local Slurm for the cluster tests), then pytest
#
# Needs from the OS: python3 >= 3.10 with its venv module (Debian/Ubuntu: apt-get install python3-venv)
# and make. Everything else is installed into a virtual environment $(VENV) (default .venv) made
# from $(PYTHON).
#
# SYSTEM_SITE_PACKAGES=1 (default) makes the venv with --system-site-packages, so packages already
# installed for that Python -- torch above all, CPU or CUDA -- are reused, not downloaded again.
# SYSTEM_SITE_PACKAGES=0 makes an isolated venv that sees only what sciml declares (what CI does).
# Without any torch, TORCH_SPEC is installed first; on CPU-only machines that only see PyPI, add
# the CPU index to avoid GBs of CUDA wheels:
#   make demo PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
SYSTEM_SITE_PACKAGES ?= 1
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
DEMO_OUT ?= demo-report
PYTEST_ARGS ?= -n 2
VPY := $(VENV)/bin/python
VENV_FLAGS := $(if $(filter 1 yes true,$(SYSTEM_SITE_PACKAGES)),--system-site-packages,)

.PHONY: check-python install install-slurm demo test

# A clear message instead of a traceback when the OS lacks what the first command needs.
check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "ERROR: '$(PYTHON)' not found: install Python >= 3.10 (or make ... PYTHON=/path/to/python3)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || { echo "ERROR: sciml needs Python >= 3.10; $(PYTHON) is $$($(PYTHON) -V 2>&1)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "ERROR: $(PYTHON) has no working venv module: on Debian/Ubuntu run 'apt-get install python3-venv' (or python3.X-venv)"; exit 1; }

$(VPY): | check-python
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

install: check-python $(VPY)
	@if $(VPY) -c "import torch" 2>/dev/null; then \
	  echo "reusing installed torch $$($(VPY) -c 'import torch; print(torch.__version__)')"; \
	else \
	  echo "installing $(TORCH_SPEC)"; $(VPY) -m pip install $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"; \
	fi
	$(VPY) -m pip install -q -e ".[test]"

# A single-node Slurm for the cluster tests (Debian/Ubuntu, as root). Best effort: without it
# the Slurm tests are skipped with a message; everything else runs.
install-slurm:
	@if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then \
	  echo "slurm already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmd slurmctld slurm-client munge >/dev/null) \
	    && echo "installed slurm" || echo "WARNING: could not install slurm; Slurm tests will be skipped"; \
	else \
	  echo "WARNING: slurm not installed (needs root + apt-get); Slurm tests will be skipped"; \
	fi

demo: install
	$(VPY) -m sciml demo --out $(DEMO_OUT)

test: install install-slurm
	@$(VPY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc
