"""Warnings and exceptions raised by m4ml_xp."""

from __future__ import annotations

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


def report_non_convergence(message: str, *, raise_on_failure: bool, stacklevel: int) -> None:
    """Warn (:class:`ConvergenceWarning`) or raise (:class:`ConvergenceError`) with `message`.

    `stacklevel` counts from the caller of this function, as for ``warnings.warn``.
    """
    if raise_on_failure:
        raise ConvergenceError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)
