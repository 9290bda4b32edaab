"""Course 1 — linear algebra: transformations, Gram–Schmidt, echelon form, eigenvectors.

The course's linear algebra in three modules, gathered here:
:mod:`m4ml_xp.transformations` (2-D transformation matrices, transforming images),
:mod:`m4ml_xp.bases` (Gram–Schmidt, span, echelon form, change of basis) and
:mod:`m4ml_xp.eigen` (power iteration).

Conventions (see COURSE.md): vectors of a basis are the *columns* of a matrix;
2-D transformations act on ``(x, y)`` column vectors.
"""

from __future__ import annotations

from m4ml_xp import bases, eigen, transformations
from m4ml_xp.bases import *  # noqa: F403
from m4ml_xp.eigen import *  # noqa: F403
from m4ml_xp.transformations import *  # noqa: F403

__all__ = [*bases.__all__, *eigen.__all__, *transformations.__all__]
