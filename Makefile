# `make demo` and `make test`, the commands of the README (and issue 15), as a thin alias: each target
# runs workflows/bootstrap.py (standard library only), which makes .venv, installs what it needs and
# then runs the demo or the tests. Without make: python3 workflows/bootstrap.py install|demo|test.
# Options pass through the environment: SCIML_ISOLATED=1, TORCH_SPEC, PIP_TORCH_ARGS, PYTEST_ARGS, DEMO_OUT.
PYTHON ?= python3

.PHONY: install demo test
install demo test:
	$(PYTHON) workflows/bootstrap.py $@
