"""Dask plumbing: chunked arrays computed where an algorithm needs whole values.

Dask graphs are lazy and chunked: checks are deferred to compute time, loops
persist their state each pass, small matrices become one chunk for Dask's
linear algebra, and per-row or per-block work maps over the chunks.  Every
function returns other arrays unchanged (or is only called for Dask arrays).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_dask_array,
)

Array = Any
Namespace = Any


def deferred_check(x: Array, check: Callable[[Array], Any], message: str) -> Array:
    """Attach a value check to a lazy Dask array: ``ValueError(message)`` at compute time.

    Reading values of a Dask array now would compute its graph; instead each
    chunk is checked as it is computed, for the cost of one pass over it.
    Other arrays are returned unchanged (their checks run eagerly).
    """
    if not is_dask_array(x):
        return x

    def checked(block: Array) -> Array:
        if block.size and not bool(check(block)):
            raise ValueError(message)
        return block

    return x.map_blocks(checked, dtype=x.dtype, meta=x._meta)


def evaluate(*arrays: Array) -> tuple[Array, ...]:
    """Materialise lazy arrays between iterations of a host-driven loop.

    Dask graphs would otherwise grow with every iteration; other libraries are
    already eager and are returned unchanged.
    """
    if arrays and is_dask_array(arrays[0]):
        import dask

        return dask.persist(*arrays)
    return arrays


def evaluate_tree(tree: Any) -> Any:
    """Materialise every Dask leaf of a pytree (lists, tuples, NamedTuples, dicts) in one pass.

    The leaves of a loop's state (an optimiser's moments, a network's layers) share
    the graph of the steps since the last pass: persisting them one at a time would
    run that graph once per leaf.  Trees without Dask arrays are returned unchanged.
    """
    if not _has_dask_leaf(tree):
        return tree
    import dask

    return dask.persist(tree)[0]


def _has_dask_leaf(tree: Any) -> bool:
    if isinstance(tree, list | tuple):
        return any(_has_dask_leaf(part) for part in tree)
    if isinstance(tree, dict):
        return any(_has_dask_leaf(part) for part in tree.values())
    return is_dask_array(tree)


def one_chunk(x: Array) -> Array:
    """Return a small Dask array as a single chunk (its linear algebra wants whole matrices).

    Matrices built by stacking scalars come out in 1×1 chunks, which Dask's
    ``svd`` and ``solve`` reject; other arrays are returned unchanged.
    """
    return x.rechunk(-1) if is_dask_array(x) else x


def eigh(S: Array, *, xp: Namespace) -> tuple[Array, Array]:
    """``eigh`` of a symmetric matrix.

    A Dask matrix (small: D × D after a distributed reduction) is computed and decomposed by
    its chunks' library, the results returned as one-chunk Dask arrays.
    """
    if not is_dask_array(S):
        return tuple(xp.linalg.eigh(S))
    import dask.array as da

    values = S.compute()
    eigenvalues, vectors = array_namespace(values).linalg.eigh(values)
    return da.from_array(eigenvalues, chunks=-1), da.from_array(vectors, chunks=-1)


def svd(A: Array, *, xp: Namespace) -> tuple[Array, Array, Array]:
    """Thin SVD ``(U, s, Vt)`` of a matrix or a stack of them.

    Dask's ``svd`` takes one tall matrix only: a small Dask stack (the
    Levenberg–Marquardt step of one fit) is computed and decomposed by its
    chunks' library, the results returned as one-chunk Dask arrays.
    """
    if not is_dask_array(A):
        return tuple(xp.linalg.svd(A, full_matrices=False))
    import dask.array as da

    values = A.compute()
    factors = array_namespace(values).linalg.svd(values, full_matrices=False)
    return tuple(da.from_array(factor, chunks=-1) for factor in factors)


def on_chunk_library(
    kernel: Callable[..., Any], functions: tuple[Any, ...], static: tuple, arrays: tuple,
    *, xp: Namespace,
) -> Any:  # fmt: skip
    """Run a host-driven kernel of small arrays on the chunks' library, the user's functions on Dask.

    ``kernel(*functions, *static, *arrays)`` steps through many small operations
    on a small state (an optimiser's parameters, residuals, Jacobian); on Dask
    each would build a graph, and each branch compute it again.  Instead
    `arrays` are computed once to their chunks' library (NumPy or CuPy), the
    kernel runs there (the Dask namespace among `static` replaced by that
    library's), and each callable of `functions` is called on Dask arrays made
    from the kernel's, its result computed: one graph per call, over whatever
    Dask data the function closes over.  The kernel's arrays come back as
    one-chunk Dask arrays.
    """
    import dask
    import dask.array as da

    values = dask.compute(*arrays)
    library = array_namespace(*values)

    def on_dask(function: Any) -> Any:
        if not callable(function):
            return function

        def call(*args: Array) -> Any:
            out = function(*(da.from_array(a, chunks=a.shape) for a in args))
            return out.compute() if is_dask_array(out) else out

        return call

    static = tuple(library if entry is xp else entry for entry in static)
    out = kernel(*(on_dask(f) for f in functions), *static, *values)
    return _as_dask(out)


def _as_dask(tree: Any) -> Any:
    """Every array leaf of `tree` (tuples, named tuples) as a one-chunk Dask array."""
    import dask.array as da

    if isinstance(tree, tuple):
        return _like(tree, [_as_dask(leaf) for leaf in tree])
    if is_array_api_obj(tree) and not is_dask_array(tree):
        return da.from_array(tree, chunks=tree.shape)
    return tree


def _like(tree: tuple, leaves: Sequence[Any]) -> tuple:
    """`leaves` in a tuple of `tree`'s kind (a named tuple's own type)."""
    return type(tree)(*leaves) if hasattr(tree, "_fields") else tuple(leaves)


def is_chunked(x: Array) -> bool:
    """Whether `x` is split into chunks that only reductions combine (a Dask array).

    Algorithms whose routes need the whole matrix at once (an SVD of the data, a
    Gram matrix) refuse such arrays, or take their reduction route.
    """
    return is_dask_array(x)


def materialise(x: Array) -> Array:
    """Return the values of a small array: Dask computed (in its chunks' library), others as given.

    For checks that read a small matrix whole (its eigenvalues, its symmetry).
    """
    return x.compute() if is_dask_array(x) else x


def map_block_pairs(function: Callable[[Array, Array], Array], X: Array, Y: Array) -> Array:
    """``(N, M)`` from row sets ``X (N, D)`` and ``Y (M, D)``: ``function(X, Y)``.

    For Dask arrays block ``(i, j)`` is ``function(X_i, Y_j)`` on the chunks' own arrays,
    the feature axis kept whole; other arrays are passed to `function` whole.
    """
    if not is_dask_array(X):
        return function(X, Y)
    import dask.array as da

    X, Y = X.rechunk({1: -1}), Y.rechunk({1: -1})
    return da.blockwise(
        function, "ij", X, "ik", Y, "jk", concatenate=True, dtype=X.dtype, meta=X._meta
    )


def map_batch(
    function: Callable[..., tuple[Array, ...]],
    arrays: Sequence[Array],
    outputs: Sequence[tuple[tuple[int, ...], Any]] | None = None,
) -> tuple[Array, ...]:
    """Return ``function(*arrays)``, for Dask arrays chunk by chunk along the batch axis.

    Every array has the batch axis first and `function` returns arrays with it
    first, one per entry of `outputs` — ``(trailing_shape, dtype)``; other
    libraries' arrays are passed whole.  Without `outputs`, `function` first runs
    on the first row of Dask arrays, computed now: that reports bad input at the
    call and gives the outputs' trailing shapes and dtypes.  The Dask arrays are
    rechunked to the first one's batch chunks with their trailing axes whole, and
    `function` gets each chunk as the chunk library's arrays (NumPy or CuPy): the
    chunks are independent tasks, so a ``dask.distributed`` cluster runs them on
    its workers.
    """
    if not is_dask_array(arrays[0]):
        return tuple(function(*arrays))
    import dask.array as da

    if outputs is None:
        probe = function(*(a[:1].compute() for a in arrays))
        outputs = [(tuple(out.shape[1:]), out.dtype) for out in probe]
    batch = arrays[0].chunks[0]
    aligned = [a.rechunk({0: batch, **{axis: -1 for axis in range(1, a.ndim)}}) for a in arrays]
    letters = iter(f"d{i}" for i in range(10_000))

    def core(ndim: int) -> str:
        return "(" + ",".join(next(letters) for _ in range(ndim)) + ")"

    inputs = ",".join(core(a.ndim - 1) for a in aligned)
    sizes: dict[str, int] = {}
    results = []
    for shape, _dtype in outputs:
        names = [next(letters) for _ in shape]
        sizes.update(zip(names, shape, strict=True))
        results.append("(" + ",".join(names) + ")")
    meta = aligned[0]._meta
    return tuple(
        da.apply_gufunc(
            function,
            f"{inputs}->{','.join(results)}",
            *aligned,
            output_sizes=sizes,
            meta=tuple(meta.astype(dtype) for _shape, dtype in outputs),
        )
    )
