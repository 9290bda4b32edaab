"""Course 1 — linear algebra: transformations, Gram–Schmidt, echelon form, eigenvectors.

The course's linear algebra in three modules, gathered here:
:mod:`m4ml_xp.transformations` (2-D transformation matrices, transforming images),
:mod:`m4ml_xp.bases` (Gram–Schmidt, span, echelon form, change of basis) and
:mod:`m4ml_xp.eigen` (power iteration).

Conventions (see COURSE.md): vectors of a basis are the *columns* of a matrix;
2-D transformations act on ``(x, y)`` column vectors.
"""

from __future__ import annotations

from m4ml_xp.bases import change_of_basis, gram_schmidt, is_singular, row_echelon, span_dimension
from m4ml_xp.eigen import EigResult, power_iteration
from m4ml_xp.transformations import (
    reflection_matrix,
    rotation_matrix,
    scaling_matrix,
    shear_matrix,
    transform_image,
)

__all__ = [
    "EigResult",
    "change_of_basis",
    "gram_schmidt",
    "is_singular",
    "power_iteration",
    "reflection_matrix",
    "rotation_matrix",
    "row_echelon",
    "scaling_matrix",
    "shear_matrix",
    "span_dimension",
    "transform_image",
]
