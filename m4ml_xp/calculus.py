"""Course 2 — multivariate calculus: derivatives, Newton–Raphson, the sandpit, Lagrange.

The course's calculus in two modules, gathered here: :mod:`m4ml_xp.derivatives`
(Jacobians, Hessians, finite differences; its docstring states the conventions) and
:mod:`m4ml_xp.root_finding` (Newton–Raphson, Newton and sandpit steps, Lagrange
multipliers).
"""

from __future__ import annotations

from m4ml_xp import derivatives, root_finding
from m4ml_xp.derivatives import *  # noqa: F403
from m4ml_xp.root_finding import *  # noqa: F403

__all__ = [*derivatives.__all__, *root_finding.__all__]
