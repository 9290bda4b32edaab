"""Warnings and exceptions raised by m4ml_xp."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "RankWarning"]


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before meeting its tolerance.

    The result it returned carries ``converged=False``; pass
    ``raise_on_failure=True`` where offered to get an exception instead.
    """


class RankWarning(UserWarning):
    """A matrix was found (numerically) rank deficient where full rank was assumed."""
