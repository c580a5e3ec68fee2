"""Run small-matrix numerics with a single BLAS thread.

REML and GLMM fits call BLAS thousands of times on matrices of a few dozen rows. With a
multi-threaded OpenBLAS every call wakes the thread pool, which costs far more than the work:
measured here on a busy 2-core machine, one L-BFGS iteration took 35 ms with 2 BLAS threads and
0.4 ms with one. The fits therefore run inside :func:`single_threaded_blas`; large products
(the bootstrap moment matrices) keep the user's setting.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable)
_controller = None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (threadpoolctl), restoring it afterwards."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield


def blas_single_thread(fn: F) -> F:
    """Decorator form of :func:`single_threaded_blas`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
