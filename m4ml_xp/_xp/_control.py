"""Control flow: loops, compilation and autodiff where a backend has its own.

JAX compiles (``jit``, ``lax.scan``, ``lax.while_loop``, ``lax.cond``: static
shapes, no host reads inside); PyTorch and JAX differentiate; the eager
libraries run Python loops that read a condition on the host.  Each function is
the one place an algorithm's loop meets that difference.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import (
    device,
    is_dask_array,
    is_dask_namespace,
    is_jax_array,
    is_jax_namespace,
    is_torch_array,
)

from m4ml_xp._xp._dask import _like, evaluate_tree, on_chunk_library
from m4ml_xp._xp._devices import to_host, to_numpy
from m4ml_xp._xp._namespaces import library_name, wide_index

Array = Any
Namespace = Any


# --------------------------------------------------------------------------- derivatives
def can_autodiff(x: Array) -> bool:
    """Whether the library of `x` differentiates functions itself (JAX, PyTorch)."""
    return is_jax_array(x) or is_torch_array(x)


def autodiff_jacobian(f: Callable[[Array], Array], x: Array) -> Array:
    """Exact Jacobian of `f` at the 1-D array `x` by the backend's autodiff.

    Shape ``f(x).shape + x.shape``: ``(n,)`` for scalar `f`, ``(m, n)`` for vector
    `f`.  Forward mode on JAX (the inputs are few); reverse mode on PyTorch.
    Raises ``NotImplementedError`` for libraries without autodiff.
    """
    return _autodiff(f, x, "jacfwd", "jacobian")


def autodiff_batch_jacobian(f: Callable[[Array], Array], x: Array) -> Array:
    """Exact Jacobians ``(B, m, n)`` of ``f: (B, n) -> (B, m)`` whose rows are independent fits.

    n forward-mode JVPs, one per parameter, each perturbing that parameter of
    every row at once (``jax.jvp``/``torch.func.jvp`` under ``vmap``).  Raises
    ``NotImplementedError`` for libraries without autodiff.
    """
    n = x.shape[-1]
    if is_jax_array(x):
        import jax
        import jax.numpy as jnp

        def column(t: Array) -> Array:
            return jax.jvp(f, (x,), (jnp.broadcast_to(t, x.shape),))[1]

        return jnp.moveaxis(jax.vmap(column)(jnp.eye(n, dtype=x.dtype)), 0, -1)
    if is_torch_array(x):
        import torch

        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        with torch.enable_grad(), warnings.catch_warnings():
            # forward mode's first use scripts torch's own decompositions with torch.jit.script
            warnings.filterwarnings(
                "ignore", "`torch.jit.script` is deprecated", DeprecationWarning
            )
            columns = torch.func.vmap(lambda t: torch.func.jvp(f, (x,), (t.expand_as(x),))[1])(eye)
        return columns.movedim(0, -1).detach()
    raise NotImplementedError(f"{library_name(x)} arrays have no automatic differentiation")


def autodiff_hessian(f: Callable[[Array], Array], x: Array) -> Array:
    """Exact Hessian ``(n, n)`` of the scalar `f` at the 1-D array `x` by autodiff."""
    return _autodiff(f, x, "hessian", "hessian")


def _autodiff(f: Callable[[Array], Array], x: Array, jax_name: str, torch_name: str) -> Array:
    """``jax.<jax_name>(f)(x)`` or ``torch.autograd.functional.<torch_name>(f, x)``."""
    if is_jax_array(x):
        import jax

        return getattr(jax, jax_name)(f)(x)
    if is_torch_array(x):
        import torch

        with torch.enable_grad():
            return getattr(torch.autograd.functional, torch_name)(f, x).detach()
    raise NotImplementedError(f"{library_name(x)} arrays have no automatic differentiation")


#: XLA:CPU options for the library's compiled kernels: loops of many small operations,
#: each of whose fusions XLA:CPU compiles as an LLVM module of its own.  Its loop emitters
#: (not the MLIR fusion emitters) halve their compilation — a batched Gaussian fit
#: 1.9-2.5 -> 1.1-1.4 s, one fit 1.5-1.6 -> 0.8 s, PageRank on edges 1.4 -> 0.9 s, Adam
#: 0.46 -> 0.21 s — and run them as fast (100,000 fits 1.77 -> 1.67 s; PageRank, PCA:
#: within the noise).  LLVM's -O1 compiled a little faster still but ran up to 1.5x
#: slower.  GPUs keep XLA's defaults.
CPU_KERNEL_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


@functools.cache
def cpu_kernel_options() -> dict[str, Any]:
    """:data:`CPU_KERNEL_OPTIONS` if this XLA takes them, else none (they are debug options)."""
    import jax

    try:
        probe = jax.jit(lambda v: v + 1, compiler_options=CPU_KERNEL_OPTIONS)
        probe(jax.device_put(0.0, jax.devices("cpu")[0]))
    except Exception:  # an XLA without one of them: its defaults, not an error
        return {}
    return dict(CPU_KERNEL_OPTIONS)


def jit(fn: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    """``jax.jit(fn, **kwargs)``, compiled with :func:`cpu_kernel_options` when called on CPU arrays.

    Inside a caller's trace (the kernel is then inlined; JAX takes compiler options
    at the top level only, which a call on constants alone finds out by JAX's
    refusal) and on accelerators it is plain ``jax.jit``.
    """
    import jax

    default = jax.jit(fn, **kwargs)
    options = cpu_kernel_options()
    if not options:
        return default
    on_cpu = jax.jit(fn, compiler_options=options, **kwargs)

    @functools.wraps(fn)
    def run(*args: Any, **kw: Any) -> Any:
        arrays = [a for a in jax.tree_util.tree_leaves((args, kw)) if isinstance(a, jax.Array)]
        cpu = bool(arrays) and not any(isinstance(a, jax.core.Tracer) for a in arrays)
        cpu = cpu and all(d.platform == "cpu" for a in arrays for d in a.devices())
        if cpu:
            try:
                return on_cpu(*args, **kw)
            except ValueError as error:  # constants only, but inside a caller's trace
                if "top-level" not in str(error):
                    raise
        return default(*args, **kw)

    run.variants = (default, on_cpu)  # type: ignore[attr-defined]
    run._cache_size = lambda: default._cache_size() + on_cpu._cache_size()  # type: ignore[attr-defined]
    return run


def compile_step(
    fn: Callable[..., Any], xp: Namespace, static_argnums: tuple[int, ...] = ()
) -> Callable[..., Any]:
    """`fn` compiled for repeated calls where the backend has a tracing JIT (JAX).

    `fn` must be pure (arrays and pytrees in and out, but for the hashable
    arguments at `static_argnums`, such as functions: JAX compiles once per
    value of those and caches by them).  Elsewhere it is returned unchanged:
    eager libraries gain nothing from tracing small per-step kernels.
    """
    if is_jax_namespace(xp):
        return jit(fn, static_argnums=static_argnums)
    return fn


class _Program:
    """A function of arrays as its jaxpr, the arrays it closes over left out.

    Equal (and hashed equal) to another with the same program text, so two
    closures that differ only in the data they capture share one compiled kernel;
    :meth:`bind` supplies the data.
    """

    def __init__(self, jaxpr: Any):
        self.jaxpr, self.text = jaxpr, str(jaxpr)

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Program) and self.text == other.text

    def bind(self, constants: tuple[Array, ...]) -> Callable[..., Array]:
        import jax

        return lambda *v: jax.core.eval_jaxpr(self.jaxpr, list(constants), *v)[0]


@functools.cache
def _kernel_of_program(
    kernel: Callable[..., Any], n_functions: int, n_static: int
) -> Callable[..., Any]:
    """``kernel(*functions, *static, *arrays)`` under one ``jax.jit`` per kernel and layout."""

    def run(*rest: Any) -> Any:
        programs, static = rest[:n_functions], rest[n_functions : n_functions + n_static]
        constants, *arrays = rest[n_functions + n_static :]
        functions = [p.bind(c) if isinstance(p, _Program) else p
                     for p, c in zip(programs, constants, strict=True)]  # fmt: skip
        return kernel(*functions, *static, *arrays)

    return jit(run, static_argnums=tuple(range(n_functions + n_static)))


def host_driven(
    kernel: Callable[..., Any], functions: tuple[Any, ...], static: tuple, arrays: tuple,
    *, xp: Namespace,
) -> Any:  # fmt: skip
    """Return ``kernel(*functions, *static, *arrays)``, a loop of small steps read on the host.

    On Dask the kernel runs on the chunks' library and the callables of
    `functions` (the user's) are called on Dask arrays, one graph computed per
    call (:func:`~m4ml_xp._xp._dask.on_chunk_library`); elsewhere as written.
    """
    if is_dask_namespace(xp):
        return on_chunk_library(kernel, functions, static, arrays, xp=xp)
    return kernel(*functions, *static, *arrays)


def compile_per_program(
    kernel: Callable[..., Any], functions: tuple[Any, ...], static: tuple, arrays: tuple,
    *, xp: Namespace,
) -> Any:  # fmt: skip
    """Return ``kernel(*functions, *static, *arrays)``; on JAX compiled once per *program*.

    Each callable of `functions` is traced at `arrays` to a jaxpr whose closed-over
    arrays become arguments, so a closure over new data (a fit in a loop over data
    sets) reuses the compiled kernel, across processes too (the persistent
    compilation cache); other entries (None, option strings) are compile-time
    constants like `static` (hashable).  A callable that cannot be traced (it reads
    values, calls NumPy) compiles the kernel per function object.  Elsewhere as
    :func:`host_driven`.
    """
    if not is_jax_namespace(xp):
        return host_driven(kernel, functions, static, arrays, xp=xp)
    import jax

    programs, constants = [], []
    for function in functions:
        closed = None
        if callable(function):
            with contextlib.suppress(Exception):  # reads values, calls NumPy: compiled per function
                closed = jax.make_jaxpr(function)(*arrays)
            if closed is None or len(closed.jaxpr.outvars) != 1:
                per_function = compile_step(
                    kernel, xp, static_argnums=tuple(range(len(functions) + len(static)))
                )
                return per_function(*functions, *static, *arrays)
        programs.append(function if closed is None else _Program(closed.jaxpr))
        constants.append(() if closed is None else tuple(closed.consts))
    compiled = _kernel_of_program(kernel, len(functions), len(static))
    return compiled(*programs, *static, tuple(constants), *arrays)


def fused(*static: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return a decorator that runs a small pure helper as one compiled program on JAX.

    Eager JAX compiles every operation anew for each new shape and dtype, so a
    helper of ten operations costs ten compilations per shape; under ``jax.jit``
    (the keyword ``xp`` and the keywords named in `static` as compile-time
    constants) it costs one, and runs as one dispatch.  Inside a caller's trace
    the helper is inlined.  Elsewhere it runs as written.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        compiled: list[Callable[..., Any]] = []

        @functools.wraps(function)
        def run(*args: Any, xp: Namespace, **kwargs: Any) -> Any:
            if not is_jax_namespace(xp):
                return function(*args, xp=xp, **kwargs)
            if not compiled:
                compiled.append(jit(function, static_argnames=("xp", *static)))
            return compiled[0](*args, xp=xp, **kwargs)

        return run

    return decorate


def compile_scan(step: Callable[..., Any], xp: Namespace) -> Callable[..., Any] | None:
    """Return a compiled loop ``carry = step(carry, xs[i], *consts)`` over the rows of `xs`, or None.

    On JAX: one ``jax.jit``-ed ``lax.scan``, so a whole epoch of small steps is
    one dispatch instead of one per step.  None elsewhere: eager libraries run
    the Python loop themselves (with per-step progress).
    """
    if not is_jax_namespace(xp):
        return None
    import jax

    def loop(carry: Any, xs: Array, *consts: Any) -> Any:
        return jax.lax.scan(lambda c, x: (step(c, x, *consts), None), carry, xs)[0]

    return jit(loop)


def while_loop(
    condition: Callable[[Any], Array], body: Callable[[Any], Any], state: Any, *, xp: Namespace
) -> Any:
    """``while condition(state): state = body(state)`` over a tuple of arrays.

    On JAX, ``jax.lax.while_loop``: the loop compiles once and also runs inside
    ``jax.jit``.  Elsewhere a Python loop that reads the 0-d boolean condition on
    the host each iteration (Dask states are materialised each pass).
    """
    if is_jax_namespace(xp):
        import jax

        return jax.lax.while_loop(condition, body, state)
    lazy = any(is_dask_array(leaf) for leaf in state)  # a body keeps its leaves' kinds
    while bool(to_host(condition(state))):
        state = body(state)
        if lazy:
            state = evaluate_tree(state)
    return state


def repeat(
    body: Callable[[Any], Any],
    state: Any,
    times: int,
    *,
    xp: Namespace,
    until: Callable[[Any], bool] | None = None,
) -> Any:
    """``state = body(state)`` `times` times, or until the host-side test `until(state)`.

    On JAX one ``lax.fori_loop`` (compiled once, not unrolled: a tenth of the
    program to compile); elsewhere a Python loop that stops early when `until`
    says so before an iteration.
    """
    if is_jax_namespace(xp):
        import jax

        return jax.lax.fori_loop(0, times, lambda _, s: body(s), state)
    for _ in range(times):
        if until is not None and until(state):
            break
        state = body(state)
    return state


def replace_rows(
    mask: Array,
    function: Callable[..., tuple[Array, ...]],
    arrays: Sequence[Array],
    defaults: Sequence[Array],
    *,
    xp: Namespace,
    dense_from: float = 1.0,
) -> tuple[Array, ...]:
    """Return ``where(mask, function(*arrays), defaults)`` row by row.

    All arrays have the batch axis first; `mask` is ``(B,)``.  Eager backends
    evaluate `function` on the masked rows alone (gathered by index) — or, once a
    fraction `dense_from` of the rows is masked (0: always), on every row and one
    ``where``: cheaper than gathering and scattering nearly all rows when
    `function` is cheap per row.  JAX (static shapes under ``jit``) evaluates it on
    every row inside a ``lax.cond`` taken only when some row is masked.
    """

    def on_every_row() -> tuple[Array, ...]:
        return tuple(
            xp.where(xp.reshape(mask, (-1,) + (1,) * (d.ndim - 1)), out, d)
            for out, d in zip(function(*arrays), defaults, strict=True)
        )

    if is_jax_namespace(xp):
        import jax

        return jax.lax.cond(xp.any(mask), on_every_row, lambda: tuple(defaults))
    flags = to_numpy(mask)
    count = int(flags.sum())
    if count == 0:
        return tuple(defaults)
    if count == flags.size:
        return tuple(function(*arrays))
    if count >= dense_from * flags.size:
        return on_every_row()
    rows = xp.asarray(flags.nonzero()[0], device=device(mask))
    outs = function(*(xp.take(a, rows, axis=0) for a in arrays))
    return tuple(fill_masked(mask, out, d, xp=xp) for out, d in zip(outs, defaults, strict=True))


def fill_masked(mask: Array, values: Array, defaults: Array, *, xp: Namespace) -> Array:
    """Return `defaults` with the rows where `mask` (``(B,)``) is true replaced.

    They are replaced, in order, by the rows of `values` (one per true entry): a scatter
    without in-place writes.
    """
    position = xp.cumulative_sum(xp.astype(mask, wide_index(xp, device(mask)))) - 1
    position = xp.where(position < 0, xp.zeros_like(position), position)
    spread = xp.reshape(mask, (-1,) + (1,) * (defaults.ndim - 1))
    return xp.where(spread, xp.take(values, position, axis=0), defaults)


def while_any(
    active: Callable[[Any], Array],
    body: Callable[[Any], Any],
    state: Any,
    *,
    xp: Namespace,
    retire: bool = False,
) -> Any:
    """``while any(active(state)): state = body(state)`` over a batch of items.

    `state` is a (named) tuple whose leaves — arrays, or tuples of arrays — all
    have the batch axis first, and `body` treats the rows independently.  With
    `retire`, eager backends drop the rows that are no longer active from the
    working state once an eighth of it has finished, so the last iterations
    cost what the stragglers cost; the rows come back in their original order.
    JAX keeps every row (static shapes) in one ``lax.while_loop``.
    """
    if is_jax_namespace(xp) or not retire:
        return while_loop(lambda s: xp.any(active(s)), body, state, xp=xp)
    import numpy as np

    position = np.arange(_first_leaf(state).shape[0])  # host bookkeeping of row positions
    finished: list[tuple[Any, Any]] = []
    while True:
        flags = to_numpy(active(state))
        if not flags.any():
            break
        if 8 * int((~flags).sum()) >= flags.size:
            finished.append((position[~flags], _take_rows(state, ~flags, xp=xp)))
            state, position = _take_rows(state, flags, xp=xp), position[flags]
        state = body(state)
    if not finished:
        return state
    finished.append((position, state))
    order = np.argsort(np.concatenate([p for p, _ in finished]), kind="stable")
    return _take_rows(_concat_rows([s for _, s in finished], xp=xp), order, xp=xp)


def _first_leaf(tree: Any) -> Array:
    return _first_leaf(tree[0]) if isinstance(tree, tuple) else tree


def _take_rows(tree: Any, rows: Any, *, xp: Namespace) -> Any:
    """Return the `rows` (a host boolean mask or integer positions) of every leaf of `tree`."""
    if isinstance(tree, tuple):
        return _like(tree, [_take_rows(leaf, rows, xp=xp) for leaf in tree])
    import numpy as np

    index = rows.nonzero()[0] if rows.dtype == bool else rows
    return xp.take(tree, xp.asarray(np.asarray(index, dtype=np.int64), device=device(tree)), axis=0)


def _concat_rows(parts: list[Any], *, xp: Namespace) -> Any:
    first = parts[0]
    if isinstance(first, tuple):
        return _like(first, [_concat_rows([p[i] for p in parts], xp=xp) for i in range(len(first))])
    return xp.concat(parts, axis=0)
