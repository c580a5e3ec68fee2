"""Which kernels run the motif census and the null models: compiled (numba) or numpy.

Two engines compute the same things:

- ``"numba"``: compiled loops (:mod:`sciml.motifs.census_numba` for the census, the
  switching chains of :mod:`sciml.motifs.nulls`), the default whenever numba imports;
- ``"numpy"``: vectorised numpy only, for machines without numba.

Both give identical census counts. The null models give the same guarantees (degrees and
mutual edges kept exactly) but draw **different random streams**, so Z-scores for a given
seed differ between engines: every result that depends on random graphs records the engine
that produced it (``motif_significance(...).attrs["engine"]``, ``randomize(...).graph["engine"]``,
the study's per-seed results and the CLI's JSON).

``engine="auto"`` picks numba when it is installed and numpy otherwise; an engine asked for
by name is used or an ``ImportError`` is raised -- never a silent fallback.

Example
-------
>>> resolve_engine("numpy")
'numpy'
>>> resolve_engine("auto") in ("numba", "numpy")
True
"""
from __future__ import annotations

from typing import Callable, TypeVar

__all__ = ["ENGINES", "HAVE_NUMBA", "resolve_engine", "njit"]

#: Accepted values of every ``engine=`` argument in :mod:`sciml.motifs`.
ENGINES: tuple[str, ...] = ("auto", "numba", "numpy")

try:  # numba is a declared dependency, but wheels lag behind new Python releases
    import numba as _numba

    #: Whether numba imported on this machine (read at call time by :func:`resolve_engine`).
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised on machines without numba
    _numba = None
    HAVE_NUMBA = False

F = TypeVar("F", bound=Callable)


def resolve_engine(engine: str = "auto") -> str:
    """The engine that will run: ``"numba"`` or ``"numpy"``.

    Raises ``ValueError`` for an unknown name and ``ImportError`` when ``"numba"`` is asked
    for on a machine without numba.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "auto":
        return "numba" if HAVE_NUMBA else "numpy"
    if engine == "numba" and not HAVE_NUMBA:
        raise ImportError("engine='numba' was requested but numba is not installed; "
                          "install numba or pass engine='numpy' (or 'auto')")
    return engine


def njit(fn: F) -> F:
    """``numba.njit(cache=True, nogil=True)`` when numba is installed; the plain function otherwise
    (it is then never called: :func:`resolve_engine` routes work to the numpy engine)."""
    if _numba is None:  # pragma: no cover
        return fn
    return _numba.njit(cache=True, nogil=True)(fn)
