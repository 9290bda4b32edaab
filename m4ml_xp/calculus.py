"""Course 2 — multivariate calculus: derivatives, Newton–Raphson, the sandpit, Lagrange.

The course's calculus in two modules, gathered here: :mod:`m4ml_xp.derivatives`
(Jacobians, Hessians, finite differences; its docstring states the conventions) and
:mod:`m4ml_xp.root_finding` (Newton–Raphson, Newton and sandpit steps, Lagrange
multipliers).
"""

from __future__ import annotations

from m4ml_xp.derivatives import hessian, jacobian
from m4ml_xp.root_finding import (
    LagrangeResult,
    RootResult,
    lagrange_multipliers,
    newton_raphson,
    newton_step,
    sandpit_step,
)

__all__ = [
    "LagrangeResult",
    "RootResult",
    "hessian",
    "jacobian",
    "lagrange_multipliers",
    "newton_raphson",
    "newton_step",
    "sandpit_step",
]
