"""Course 2 — gradient-descent optimisers: SGD, momentum, Adam, and loops that use them.

Optimisers follow optax's shape: an :class:`Optimizer` is a pair of pure
functions ``init(params) -> state`` and ``update(grads, state) -> (updates, state)``
over *pytrees* (arrays, or lists / tuples / dicts / NamedTuples of them), and
:func:`apply_updates` adds the updates to the parameters.  Being pure, they run
unchanged under ``jax.jit``; the state holds only arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from m4ml_xp import _checks, _xp
from m4ml_xp._xp import Array, Namespace, device
from m4ml_xp.errors import ConvergenceWarning, report_non_convergence, warn

PyTree = Any

__all__ = [
    "AdamState",
    "DescentPath",
    "EmptyState",
    "MomentumState",
    "OptimizeResult",
    "Optimizer",
    "adam",
    "apply_updates",
    "gradient_descent",
    "minimize",
    "momentum",
    "sgd",
    "tree_leaves",
    "tree_map",
]


class Optimizer(NamedTuple):
    """A gradient transformation: ``init(params) -> state``, ``update(grads, state) -> (updates, state)``.

    The updates are *added* to the parameters (:func:`apply_updates`): they
    already carry the minus sign and the learning rate, as in optax.
    """

    init: Callable[[PyTree], PyTree]
    update: Callable[[PyTree, PyTree], tuple[PyTree, PyTree]]


class EmptyState(NamedTuple):
    """State of an optimiser that keeps none (:func:`sgd`)."""


class MomentumState(NamedTuple):
    """State of :func:`momentum`: the velocity, shaped like the parameters."""

    velocity: PyTree


class AdamState(NamedTuple):
    """State of :func:`adam`: step count (0-d array), first and second moment estimates."""

    count: Array
    mu: PyTree
    nu: PyTree


class DescentPath(NamedTuple):
    """Result of :func:`gradient_descent`: the final point and every point visited."""

    x: Array
    path: Array


class OptimizeResult(NamedTuple):
    """Result of :func:`minimize`.

    `status`: 0 converged (gradient max-norm at most `tol`), 1 `max_iter`
    reached, 2 not finite (the iterate or gradient overflowed; `x` is then the
    last finite iterate checked); `message` says which, with the numbers.
    """

    x: Array
    n_iter: int
    converged: bool
    grad_norm: float
    status: int
    message: str


# --------------------------------------------------------------------------- pytrees
def tree_map(fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
    """Apply `fn` to corresponding array leaves of pytrees of the same structure.

    Containers are lists, tuples, NamedTuples and dicts; everything else is a leaf.

    Examples
    --------
    >>> from m4ml_xp.optimize import tree_map
    >>> tree_map(lambda a, b: a + b, {"w": 1.0, "b": (2.0,)}, {"w": 10.0, "b": (20.0,)})
    {'w': 11.0, 'b': (22.0,)}
    """
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a NamedTuple
        return type(tree)(*(tree_map(fn, *parts) for parts in zip(tree, *rest, strict=True)))
    if isinstance(tree, list | tuple):
        return type(tree)(tree_map(fn, *parts) for parts in zip(tree, *rest, strict=True))
    if isinstance(tree, dict):
        return {key: tree_map(fn, tree[key], *(r[key] for r in rest)) for key in tree}
    return fn(tree, *rest)


def tree_leaves(tree: PyTree) -> list[Any]:
    """Return the leaves of a pytree, depth first, in order."""
    if isinstance(tree, list | tuple):
        return [leaf for part in tree for leaf in tree_leaves(part)]
    if isinstance(tree, dict):
        return [leaf for key in tree for leaf in tree_leaves(tree[key])]
    return [tree]


def _structure(tree: PyTree) -> Any:
    """Containers and leaf shapes of a pytree, for comparing two trees."""
    if isinstance(tree, list | tuple):
        return (type(tree).__name__, tuple(_structure(part) for part in tree))
    if isinstance(tree, dict):
        return ("dict", tuple((key, _structure(tree[key])) for key in tree))
    return tuple(getattr(tree, "shape", ()))


def _describe(tree: PyTree) -> str:
    shapes = [tuple(getattr(leaf, "shape", ())) for leaf in tree_leaves(tree)]
    return f"{len(shapes)} arrays shaped {shapes}" if len(shapes) != 1 else f"shape {shapes[0]}"


def _leaf_namespace(tree: PyTree, name: str) -> Namespace:
    leaves = tree_leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` must hold at least one array")
    return _checks.namespace(**{f"{name}[{i}]": leaf for i, leaf in enumerate(leaves)})


def _check_same_arrays(tree: PyTree, name: str, reference: PyTree, reference_name: str) -> None:
    """`tree` must match `reference` in structure, shapes, library and device.

    The library and device are compared by leaf type and device (cheap: this runs
    every step); only a mismatch pays for the namespace check that names the leaves.
    """
    if _structure(tree) != _structure(reference):
        msg = (
            f"`{name}` must match `{reference_name}` in structure and shapes; got "
            f"{_describe(tree)} for {_describe(reference)}"
        )
        raise ValueError(msg)
    for i, (leaf, ref) in enumerate(zip(tree_leaves(tree), tree_leaves(reference), strict=True)):
        if type(leaf) is not type(ref) or device(leaf) != device(ref):
            leaf = _xp.numpy_scalar_as_array(leaf, _xp.array_namespace(ref))  # NumPy's 0-d
            _checks.namespace(**{f"{reference_name}[{i}]": ref, f"{name}[{i}]": leaf})


def apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import apply_updates, sgd
    >>> opt = sgd(0.1)
    >>> params = [np.array([1.0, 2.0])]
    >>> updates, state = opt.update([np.array([1.0, -1.0])], opt.init(params))
    >>> apply_updates(params, updates)
    [array([0.9, 2.1])]
    """
    _check_same_arrays(updates, "updates", params, "params")
    return tree_map(lambda p, u: p + _cast_like(u, p), params, updates)


# --------------------------------------------------------------------------- optimisers
def _learning_rate(lr: Any) -> float:
    return _checks.check_real(lr, "lr", low=0.0, low_open=True, finite=True)


def _zeros_like(tree: PyTree) -> PyTree:
    return tree_map(lambda p: _xp.array_namespace(p).zeros_like(p), tree)


def _cast_like(a: Array, like: Array) -> Array:
    """Return `a` in `like`'s dtype: updates in the parameters', gradients in the state's.

    The state then keeps the parameters' dtype step to step: float64 gradients of
    float32 parameters would otherwise widen it (and, on JAX, compile a second step).
    """
    return a if a.dtype == like.dtype else _xp.array_namespace(like).astype(a, like.dtype)


def sgd(lr: float) -> Optimizer:
    """Plain (stochastic) gradient descent: ``update = −lr · g``.

    Parameters
    ----------
    lr : float
        Learning rate, ``> 0`` (the course's "aggression").

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import sgd
    >>> opt = sgd(0.5)
    >>> updates, _ = opt.update(np.array([2.0]), opt.init(np.array([0.0])))
    >>> updates
    array([-1.])
    """
    lr = _learning_rate(lr)

    def init(params: PyTree) -> EmptyState:
        _leaf_namespace(params, "params")
        return EmptyState()

    def update(grads: PyTree, state: EmptyState) -> tuple[PyTree, EmptyState]:
        return tree_map(lambda g: -lr * g, grads), state

    return Optimizer(init, update)


def momentum(lr: float, beta: float = 0.9) -> Optimizer:
    """Heavy-ball momentum, as ``torch.optim.SGD(momentum=beta)`` and ``optax.sgd(momentum=)``.

    ``v ← beta·v + g``; ``update = −lr · v``.

    Parameters
    ----------
    lr : float
        Learning rate, ``> 0``.
    beta : float
        Momentum coefficient in ``[0, 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import momentum
    >>> opt = momentum(0.1, beta=0.5)
    >>> state = opt.init(np.zeros(1))
    >>> u1, state = opt.update(np.array([1.0]), state)
    >>> u2, state = opt.update(np.array([1.0]), state)
    >>> u1, u2
    (array([-0.1]), array([-0.15]))
    """
    lr = _learning_rate(lr)
    beta = _checks.check_real(beta, "beta", low=0.0, high=1.0, high_open=True)

    def init(params: PyTree) -> MomentumState:
        _leaf_namespace(params, "params")
        return MomentumState(_zeros_like(params))

    def update(grads: PyTree, state: MomentumState) -> tuple[PyTree, MomentumState]:
        _check_same_arrays(grads, "grads", state.velocity, "params")
        velocity = tree_map(lambda v, g: beta * v + _cast_like(g, v), state.velocity, grads)
        return tree_map(lambda v: -lr * v, velocity), MomentumState(velocity)

    return Optimizer(init, update)


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba 2015), with the paper's bias corrections.

    ``m ← b1·m + (1−b1)·g``, ``v ← b2·v + (1−b2)·g²``,
    ``update = −lr · m̂ / (√v̂ + eps)`` with ``m̂ = m/(1−b1ᵗ)``, ``v̂ = v/(1−b2ᵗ)``.

    Parameters
    ----------
    lr : float
        Step size, ``> 0``.
    b1, b2 : float
        Decay rates of the moment estimates, in ``[0, 1)``.
    eps : float
        Added to the denominator, ``>= 0``.  It is absolute, as in the paper,
        PyTorch and optax: the update for gradients ``c·g`` with ``c·eps`` equals
        the update for ``g`` with `eps` (with ``eps=0`` Adam is invariant to the
        gradient's scale; a coordinate whose gradients were all 0 gets a 0
        step).  For gradients far below `eps` (``|g| ≪ 1e-8``) the steps shrink
        towards ``lr·|g|/eps``: pass an `eps` scaled like the gradients.  The
        second moment holds ``g²``: gradients beyond ``sqrt(finfo.max)``
        (``1.3e154`` in float64, ``1.8e19`` in float32) overflow it.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import adam
    >>> opt = adam(0.1)
    >>> updates, state = opt.update(np.array([3.0, -0.5]), opt.init(np.zeros(2)))
    >>> np.round(updates, 6)  # the first step is -lr·sign(g)
    array([-0.1,  0.1])
    """
    lr = _learning_rate(lr)
    b1 = _checks.check_real(b1, "b1", low=0.0, high=1.0, high_open=True)
    b2 = _checks.check_real(b2, "b2", low=0.0, high=1.0, high_open=True)
    eps = _checks.check_real(eps, "eps", low=0.0)

    def init(params: PyTree) -> AdamState:
        xp = _leaf_namespace(params, "params")
        first = tree_leaves(params)[0]
        dtype = _xp.float_dtype(xp, first.dtype, device(first))
        count = xp.zeros((), dtype=dtype, device=device(first))
        return AdamState(count, _zeros_like(params), _zeros_like(params))

    def update(grads: PyTree, state: AdamState) -> tuple[PyTree, AdamState]:
        _check_same_arrays(grads, "grads", state.mu, "params")
        count = state.count + 1
        grads = tree_map(_cast_like, grads, state.mu)
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * (g * g), state.nu, grads)
        # bias corrections folded into the step size, as in the paper's Algorithm 1 note
        correction1 = 1 - b1**count
        correction2 = 1 - b2**count
        updates = tree_map(lambda m, v: _adam_step(m, v, correction1, correction2), mu, nu)
        return updates, AdamState(count, mu, nu)

    def _adam_step(m: Array, v: Array, correction1: Array, correction2: Array) -> Array:
        leaf_xp = _xp.array_namespace(m)
        denominator = leaf_xp.sqrt(v / correction2) + eps
        # eps = 0 and a coordinate whose gradients were all 0: m = 0 too; step 0, not 0/0 = NaN
        denominator = leaf_xp.where(denominator == 0, leaf_xp.ones_like(denominator), denominator)
        return -lr * (m / correction1) / denominator

    return Optimizer(init, update)


# --------------------------------------------------------------------------- loops
def _gradient_function(grad: Any, x: Array, *, xp: Namespace) -> Callable[[Array], Array]:
    _checks.check_callable(grad, "grad", "returning the gradient array")

    def checked(v: Array) -> Array:
        g = _checks.returned_array(grad(v), "grad", v, xp=xp)
        if tuple(g.shape) != tuple(v.shape):
            msg = f"`grad` must return an array shaped like `x0` {tuple(v.shape)}; got {tuple(g.shape)}"
            raise ValueError(msg)
        return g

    return checked


def check_optimizer(optimizer: Any) -> Optimizer:
    """`optimizer` must be an :class:`Optimizer`."""
    if not isinstance(optimizer, Optimizer):
        msg = f"`optimizer` must be an Optimizer (sgd, momentum, adam, ...); got {type(optimizer).__name__}"
        raise TypeError(msg)
    return optimizer


def gradient_descent(
    grad: Callable[[Array], Array], x0: Array, *, lr: float, n_steps: int
) -> DescentPath:
    """Fixed-step steepest descent ``x ← x − lr·∇f(x)``, `n_steps` times (no line search).

    The course's "aggression" is `lr`.  Every point is kept: the path is
    ``(n_steps + 1, *x0.shape)``, starting with `x0`.

    Parameters
    ----------
    grad : callable
        ``∇f``, written with `x0`'s array namespace, returning an array shaped like `x0`.
    x0 : array
        Start.
    lr : float
        Step size, ``> 0``.
    n_steps : int
        Number of steps, ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import gradient_descent
    >>> result = gradient_descent(lambda x: 2 * x, np.array([1.0]), lr=0.25, n_steps=3)
    >>> result.path[:, 0]
    array([1.   , 0.5  , 0.25 , 0.125])
    """
    xp = _checks.namespace(x0=x0)
    x = _checks.check_real_array(x0, "x0", xp=xp, small=True)
    lr = _learning_rate(lr)
    n_steps = _checks.check_int(n_steps, "n_steps", low=0)
    gradient = _gradient_function(grad, x, xp=xp)
    path = [x]
    for _ in range(n_steps):
        g = gradient(x)
        with _xp.quiet_overflow():  # a divergence is reported below, in words
            (x,) = _xp.evaluate(_xp.numpy_scalar_as_array(x - lr * g, xp))
        path.append(x)
    path = xp.stack(path)
    # Dask: each step is persisted, a cheap read; under jax.jit nothing can be read
    if not _xp.is_traced(path) and not bool(_checks.all_finite(path)):
        finite = _xp.to_host(xp.all(xp.isfinite(xp.reshape(path, (n_steps + 1, -1))), axis=1))
        warn(f"gradient_descent diverged: the iterate is not finite from step {finite.index(False)} "
             "on (the path keeps it); lower `lr`, or check `grad`", ConvergenceWarning)  # fmt: skip
    return DescentPath(x, path)


def minimize(
    grad: Callable[[Array], Array],
    x0: Array,
    *,
    optimizer: Optimizer | None = None,
    max_iter: int = 1000,
    tol: float | None = None,
    raise_on_failure: bool = False,
) -> OptimizeResult:
    """Minimise a function given its gradient, with any :class:`Optimizer`.

    Iterates ``x ← x + update(∇f(x))`` until the gradient's max-norm is at most
    `tol`.  On JAX the step (gradient + update) is compiled once with
    ``jax.jit`` when `grad` can be traced; on GPUs the norm is read back only
    every few steps, since each read waits for the device.

    Parameters
    ----------
    grad : callable
        ``∇f``, written with `x0`'s namespace, returning an array shaped like `x0`.
    x0 : array
        Start.
    optimizer : Optimizer, optional
        Default ``adam(1e-3)``.
    max_iter : int
        Most steps.
    tol : float, optional
        Gradient max-norm at which to stop.  Default: relative,
        ``eps**(2/3) · ‖∇f(x0)‖∞`` (``eps`` of the dtype: ``3.7e-11`` in float64,
        ``2.4e-5`` in float32), so the test does not
        depend on the scale of ``f`` or of ``x``: with :func:`adam` (``eps=0``,
        or scaled with the gradient) the run for ``c·f`` is the run for ``f``.
        Plain :func:`sgd` and :func:`momentum` are not invariant: their steps
        scale with ``c``, and the run for ``c·f`` with ``lr/c`` is the run for
        ``f`` with ``lr``.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.ConvergenceError` instead of warning.

    Returns
    -------
    OptimizeResult
        ``x``, ``n_iter``, ``converged``, ``grad_norm`` (at `x`), ``status``, ``message``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import minimize, momentum
    >>> result = minimize(lambda x: 2 * (x - 3.0), np.array([0.0]), optimizer=momentum(0.1))
    >>> np.round(result.x, 6), result.converged
    (array([3.]), True)
    """
    xp = _checks.namespace(x0=x0)
    x = _checks.check_real_array(x0, "x0", xp=xp, small=True)
    max_iter = _checks.check_int(max_iter, "max_iter", low=1)
    relative_tol = tol is None
    tol = float(xp.finfo(x.dtype).eps) ** (2 / 3) if tol is None else tol
    tol = _checks.check_real(tol, "tol", low=0.0)
    optimizer = adam(1e-3) if optimizer is None else check_optimizer(optimizer)
    # Dask: the loop runs on the chunks' library, `grad` on Dask arrays
    x, n_iter, status, grad_norm, tol = _xp.host_driven(
        _minimize_loop, (grad,), (optimizer, max_iter, tol, relative_tol, xp), (x,), xp=xp
    )
    code = {"converged": 0, "max_iter": 1, "non-finite": 2}[status]
    converged = status == "converged"
    if converged:
        message = f"converged: gradient max-norm {grad_norm:.3e} <= tol {tol:.3e}"
    else:
        message = (
            f"minimize stopped after {n_iter} steps ({status}); "
            f"gradient max-norm {grad_norm:.3e} > tol {tol:.3e}"
        )
        report_non_convergence(message, raise_on_failure=raise_on_failure)
    return OptimizeResult(x, n_iter, converged, float(grad_norm), code, message)


def _minimize_loop(
    grad: Callable[[Array], Array], optimizer: Optimizer, max_iter: int, tol: float,
    relative_tol: bool, xp: Namespace, x: Array,
) -> tuple[Array, int, str, float, float]:  # fmt: skip
    """Run the optimiser's steps from `x` until the gradient test or `max_iter`.

    Returns the point, the steps taken, the status, the gradient's max-norm and
    the tolerance (made absolute).
    """
    gradient = _gradient_function(grad, x, xp=xp)

    def step(x: Array, state: PyTree) -> tuple[Array, PyTree, Array]:
        g = gradient(x)
        updates, state = optimizer.update(g, state)
        return x + xp.astype(updates, x.dtype), state, xp.max(xp.abs(g))

    state = optimizer.init(x)
    run = _xp.compile_step(step, xp)
    try:
        first = run(x, state)
    except Exception:
        if run is step:
            raise
        run = step  # `grad` is not traceable (it reads values): run it eagerly
        first = run(x, state)
    interval = _xp.check_interval(xp, device(x))
    last_good, status, n_iter, grad_norm = x, "max_iter", max_iter, math.inf
    for k in range(1, max_iter + 1):
        new_x, new_state, g_norm = first if k == 1 else run(x, state)
        checked = k == 1 or k % interval == 0 or k == max_iter
        if checked:
            # `g_norm` is the gradient at `x`, before this step: if it is small, `x` is the answer
            grad_norm, finite = _xp.to_host(
                xp.stack([g_norm, xp.astype(xp.all(xp.isfinite(new_x)), g_norm.dtype)])
            )
            if not math.isfinite(grad_norm):
                status, n_iter, x = "non-finite", k - 1, last_good
                break
            if k == 1 and relative_tol:
                tol *= grad_norm  # relative to the starting gradient: scale-free
            if grad_norm <= tol:
                status, n_iter = "converged", k - 1
                break
            if not finite:
                status, n_iter = "non-finite", k - 1
                break
            last_good = new_x
        x, state = new_x, new_state
    if status == "max_iter":
        grad_norm = float(_xp.to_host(xp.max(xp.abs(gradient(x)))))
        status = "converged" if grad_norm <= tol else status
    return x, n_iter, status, grad_norm, tol
