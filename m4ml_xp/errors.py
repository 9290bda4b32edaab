"""Warnings and exceptions raised by m4ml_xp."""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["ConvergenceError", "ConvergenceWarning", "RankWarning", "report_non_convergence"]


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before meeting its tolerance.

    The result it returned carries ``converged=False``; pass
    ``raise_on_failure=True`` where offered to get an exception instead.
    """


class RankWarning(UserWarning):
    """A matrix was found (numerically) rank deficient where full rank was assumed."""


class ConvergenceError(RuntimeError):
    """An iterative method stopped before meeting its tolerance.

    Raised instead of a :class:`ConvergenceWarning` when the caller asked for it
    (``raise_on_failure=True``).
    """


def report_non_convergence(
    message: str, *, raise_on_failure: bool, stacklevel: int | None = None
) -> None:
    """Warn (:class:`ConvergenceWarning`) or raise (:class:`ConvergenceError`) with `message`.

    The warning is attributed to the line that called into m4ml_xp (see :func:`warn`);
    `stacklevel` is accepted for compatibility and not needed.
    """
    if raise_on_failure:
        raise ConvergenceError(message)
    warn(message, ConvergenceWarning)


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first frame outside m4ml_xp: the user's own line.

    A fixed ``stacklevel`` names a line of the library whenever the warning is
    issued one call deeper than planned (a decorator, a helper, a kernel), as
    pandas' ``find_stack_level`` avoids the same way.
    """
    frame, level = sys._getframe(1), 2  # level 2: warn's caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
