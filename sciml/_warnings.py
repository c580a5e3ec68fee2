"""Warnings that point at the user's line, however deep inside sciml they are raised."""

from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn` that names the first frame outside sciml.

    Call it in the argument list of ``warnings.warn`` (as pandas' ``find_stack_level``): the count
    is of the sciml frames between that call and the user's code, so the warning shows the line of
    the user's script or notebook cell whatever the depth of the call inside the package.
    """
    frame = sys._getframe(1)       # the function that calls warnings.warn: stacklevel 1
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level                   # the first frame outside the package
