#!/usr/bin/env bash
# Build FLARE (mir-flare 1.4.0, PyPI sdist only) with its C++ extension _C_flare into .venv-flare,
# without GitHub: the sdist's CMakeLists.txt fetches googletest, nlohmann json, Eigen 3.3.7 and pybind11
# from GitHub at configure time; here Eigen, nlohmann json, LAPACKE/OpenBLAS come from Debian (apt) and
# pybind11 from PyPI (its wheel ships the CMake config), and a patched COPY of CMakeLists.txt uses them
# (find_package) and drops the C++ tests (ctests/, googletest).
#
# Run from the repository root (root on Debian 12, python3 3.11):
#     bash workflows/benchmarks/flare_build.sh
# Result: .venv-flare/bin/python -c "from flare.bffs.sgp._C_flare import SparseGP" works.
# Scratch (sdist, build tree): bench-data/flare-build/ (git-ignored).
#
# Deviations from FLARE's requirements.txt (recorded, minimal):
#   numpy >=1.18,<1.23  -> numpy >=1.18,<2   (no numpy <1.23 wheel exists for python 3.11; the C++ part
#                                              does not use numpy's C API; numpy 2 is newer than FLARE 1.4)
#   ase==3.22 is kept (ase 3.22.0, pure python).
#   setup.py: `self.distribution.dry_run` -> getattr(..., "dry_run", False) (attribute gone in setuptools >= 80).
#   Eigen 3.3.7 -> Debian's Eigen 3.4.0; nlohmann json 3.9.1 -> Debian's 3.11.2; pybind11 master -> PyPI's.
set -euo pipefail

ROOT=$(pwd)
VENV=$ROOT/.venv-flare
WORK=$ROOT/bench-data/flare-build
FLARE_VERSION=1.4.0
PY=${PYTHON:-python3}

# 1. system build dependencies from Debian (apt-get needs root; no-op if already installed)
if ! dpkg -s libeigen3-dev nlohmann-json3-dev liblapacke-dev libopenblas-dev ninja-build >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libeigen3-dev nlohmann-json3-dev liblapacke-dev libopenblas-dev ninja-build
fi

# 2. the venv and FLARE's python dependencies (requirements.txt with numpy relaxed, see above)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip setuptools wheel
"$VENV/bin/pip" install -q "pybind11>=2.10" "cmake>=3.14.5"

# 3. the sdist from PyPI, unpacked into a fresh build copy
rm -rf "$WORK"
mkdir -p "$WORK"
"$VENV/bin/pip" download -q --no-binary :all: --no-deps "mir-flare==$FLARE_VERSION" -d "$WORK"
tar -xzf "$WORK/mir_flare-$FLARE_VERSION.tar.gz" -C "$WORK"
SRC=$WORK/mir_flare-$FLARE_VERSION

sed -i 's/^numpy >=1.18, <1.23$/numpy >=1.18, <2/' "$SRC/requirements.txt"
grep -q '^numpy >=1.18, <2$' "$SRC/requirements.txt"      # fail loudly if the pin line changed
"$VENV/bin/pip" install -q -r "$SRC/requirements.txt"

# 4. patch the copy of CMakeLists.txt: registry-installed dependencies instead of FetchContent/ExternalProject
"$VENV/bin/python" - "$SRC/CMakeLists.txt" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
start = text.index("include(FetchContent)")
end = text.index("# Specify source files.")
deps = """# Dependencies from the system (Debian packages) and PyPI (pybind11), no download at build time.
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.2.0 REQUIRED)
set(PYBIND11_FINDPYTHON ON)
find_package(pybind11 CONFIG REQUIRED)

"""
text = text[:start] + deps + text[end:]
text = text.replace("add_dependencies(flare eigen_project)",
                    "target_link_libraries(flare PUBLIC Eigen3::Eigen)")
text = text.replace("# Add test directory.\nadd_subdirectory(ctests)", "# C++ tests (googletest) dropped.")
active = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
for gone in ("FetchContent", "ExternalProject_Add", "add_subdirectory(ctests)", "github.com"):
    assert gone not in active, gone
open(path, "w").write(text)
EOF

# setup.py reads distribution.dry_run, which current setuptools removed: default it to False (copy only).
sed -i 's/self.distribution.dry_run/getattr(self.distribution, "dry_run", False)/' "$SRC/setup.py"
# and compiles with 2 x cpu_count jobs: use FLARE_BUILD_JOBS (default 2) on this shared machine.
sed -i 's/multiprocessing.cpu_count() \* 2)/os.environ.get("FLARE_BUILD_JOBS", "2"))/' "$SRC/setup.py"
grep -q 'FLARE_BUILD_JOBS' "$SRC/setup.py"

# 5. build and install (setup.py runs cmake; FLARE_CMAKE_FLAGS are passed to its configure step)
export FLARE_CMAKE_FLAGS="-Dpybind11_DIR=$("$VENV/bin/python" -m pybind11 --cmakedir) -DPython_EXECUTABLE=$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
(cd "$SRC" && "$VENV/bin/pip" install -v --no-build-isolation --no-deps . > "$WORK/pip-install.log" 2>&1) \
    || { tail -60 "$WORK/pip-install.log"; exit 1; }

# 6. smoke test: the extension imports and a tiny sparse GP trains and predicts
cd "$WORK"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$VENV/bin/python" - <<'EOF'
import numpy as np
from flare.bffs.sgp._C_flare import B2, NormalizedDotProduct, SparseGP, Structure
desc = B2("chebyshev", "quadratic", [0, 5.0], [], [2, 4, 3])
kern = NormalizedDotProduct(2.0, 2)
gp = SparseGP([kern], 0.01, 0.1, 0.01)
rng = np.random.default_rng(0)
cell = np.eye(3) * 4.0
pos = rng.uniform(0, 4, (8, 3))
s = Structure(cell, [0, 1] * 4, pos, 5.0, [desc])
s.energy = np.array([1.0]); s.forces = rng.normal(size=24)
gp.add_training_structure(s)
gp.add_all_environments(s)
gp.update_matrices_QR()
t = Structure(cell, [0, 1] * 4, pos, 5.0, [desc])
gp.predict_SOR(t)
print("FLARE _C_flare OK; prediction shape", np.shape(t.mean_efs))
EOF
