"""Segment sums and the sparse mat-vec: native fast paths the standard cannot express.

Each has the array-api-extra shape "delegate where a native path exists (SciPy
and CuPy CSR, torch sparse CSR, JAX segment sums, NumPy ``bincount``, chunked
Dask reductions), else an agnostic fallback written with standard functions".
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import (
    array_namespace,
    device,
    is_cupy_namespace,
    is_dask_namespace,
    is_jax_array,
    is_jax_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)

from m4ml_xp._xp._control import jit
from m4ml_xp._xp._devices import to_host
from m4ml_xp._xp._namespaces import Array, Namespace, has_dtype, wide_index


# --------------------------------------------------------------------------- segment sums
def wide_sum(x: Array, *, xp: Namespace) -> Array:
    """``sum(x)`` accumulated in float64 where the device has it (a 0-d float64 array then).

    A reduction reads `x` once in its own dtype: the wider accumulator costs no
    memory traffic, and a float32 sum of millions of terms keeps float64 accuracy.
    """
    if x.dtype != xp.float64 and has_dtype(xp, "float64", device(x)):
        return xp.sum(x, dtype=xp.float64)
    return xp.sum(x)


def segment_sum(values: Array, ids: Array, n: int, *, xp: Namespace) -> Array:
    """``out[k] = sum(values[ids == k])`` for ``k in range(n)``.

    `ids` is a 1-D integer array in ``[0, n)``, `values` a 1-D float array of the
    same length.  Native scatter-adds where the backend has one; otherwise a
    sort + cumulative-sum fallback written with standard functions.
    """
    if is_numpy_namespace(xp):
        import numpy as np

        return np.bincount(ids, weights=values, minlength=n).astype(values.dtype, copy=False)
    if is_torch_namespace(xp):
        import torch

        out = torch.zeros(n, dtype=values.dtype, device=values.device)
        return out.index_add_(0, ids.to(torch.int64), values)
    if is_jax_namespace(xp):
        import jax

        return jax.ops.segment_sum(values, ids, num_segments=n)
    if is_cupy_namespace(xp):
        import cupy

        with values.device:  # allocate on the input's GPU, not the current one
            out = cupy.zeros(n, dtype=values.dtype)
            # not cupyx.scatter_add: CuPy 14 deprecates the ndarray.scatter_add it calls
            cupy.add.at(out, ids, values)
        return out
    if is_dask_namespace(xp):
        return _dask_edge_sum(lambda v: v, [values], ids, n, values.dtype)
    return _SortedSegments(ids, n, xp=xp).sum(values)


class _SortedSegments:
    """Agnostic segment sums: sort once, then one cumulative sum per call.

    The cumulative sum runs in float64 where the device has it, so that the
    difference of two running totals keeps the precision of small segments.
    """

    def __init__(self, ids: Array, n: int, *, xp: Namespace):
        dev = device(ids)
        self.xp = xp
        self.order = xp.argsort(ids, stable=True)
        sorted_ids = xp.take(ids, self.order)
        nodes = xp.arange(n, dtype=ids.dtype, device=dev)
        self.starts = xp.searchsorted(sorted_ids, nodes, side="left")
        self.ends = xp.searchsorted(sorted_ids, nodes, side="right")
        self.accumulate = xp.float64 if has_dtype(xp, "float64", dev) else None

    def sum(
        self, values: Array, *, presorted: bool = False, keep_accumulator: bool = False
    ) -> Array:
        """Segment sums of `values` (in `ids` order, or sorted order if `presorted`).

        The sums come back in the dtype of `values`, or in the accumulator's dtype
        (float64 where the device has it) if `keep_accumulator`.
        """
        xp = self.xp
        dtype = values.dtype
        ordered = values if presorted else xp.take(values, self.order)
        if self.accumulate is not None:
            ordered = xp.astype(ordered, self.accumulate)
        totals = xp.cumulative_sum(ordered, include_initial=True)
        sums = xp.take(totals, self.ends) - xp.take(totals, self.starts)
        return sums if keep_accumulator else xp.astype(sums, dtype)


def _dask_edge_sum(
    per_edge: Callable[..., Array],
    edge_arrays: Sequence[Array],
    ids: Array,
    n: int,
    dtype: Any,
    whole: Sequence[Array] = (),
) -> Array:
    """Dask: one partial segment sum of length n per edge chunk, then a tree sum.

    Memory per task is one edge chunk plus the `whole` arrays (length-n vectors
    every task needs), so the edge list can be far larger than any worker's
    memory.  ``per_edge`` maps the blocks of `edge_arrays` (aligned with `ids`)
    followed by the `whole` arrays to per-edge values.
    """
    import dask.array as da

    args: list[Any] = [ids, "e"]
    for a in edge_arrays:
        args += [a.rechunk(ids.chunks), "e"]
    for a, index in zip(whole, "uvwxyz", strict=False):
        args += [a.rechunk(-1), index]

    def partial(ids_block: Array, *blocks: Array) -> Array:
        values = per_edge(*blocks)
        return segment_sum(values, ids_block, n, xp=array_namespace(ids_block))[None, :]

    meta_xp = array_namespace(ids._meta)
    partials = da.blockwise(
        partial,
        "ej",
        *args,
        new_axes={"j": n},
        adjust_chunks={"e": 1},
        concatenate=True,
        dtype=dtype,
        meta=meta_xp.empty((0, 0), dtype=dtype),
    )
    return partials.sum(axis=0)


# --------------------------------------------------------------------------- sparse mat-vec
#: Rows with more entries than this (or than √(largest row), if larger) are summed in chunks
#: whose float32 partial sums are then added in float64: a hub page's in-links, summed as one
#: float32 run, lose ~1e-4 of the scores' mass (the L1 error budget of float32 PageRank is 1e-5).
_ROW_CHUNK = 256


class EdgeOperator:
    """The linear map ``y[rows[e]] += values[e] * x[cols[e]]`` on n-vectors.

    Built once from an edge list (duplicate edges add), applied many times by
    its ``matvec``: SciPy CSR (float64 entries), CuPy CSR, torch sparse CSR, a
    jitted JAX segment sum over sorted rows, chunked Dask reductions, or sorted
    segment sums in the standard.  For the CuPy, torch and JAX paths the edges are
    sorted once by row; rows longer than a chunk become several virtual rows, each
    summed in the working precision, whose partial sums are added in float64 where
    the device has it.
    """

    def __init__(self, rows: Array, cols: Array, values: Array, n: int, *, xp: Namespace):
        self.matvec: Callable[[Array], Array]  # applies the operator to an n-vector
        if is_dask_namespace(xp):
            self.matvec = lambda x: _dask_edge_sum(
                lambda c, v, xs: v * xs[c], [cols, values], rows, n, x.dtype, whole=[x]
            )
        elif rows.shape[0] == 0:  # no links: cuSPARSE refuses some empty matrices; none needed
            self.matvec = lambda x: xp.zeros_like(x)
        elif is_numpy_namespace(xp) and _has_scipy_sparse():
            self.matvec = _scipy_csr_matvec(rows, cols, values, n)
        elif is_numpy_namespace(xp):  # SciPy is optional: bincount accumulates in float64 anyway
            self.matvec = lambda x: segment_sum(values * x[cols], rows, n, xp=xp)
        elif is_jax_namespace(xp):
            self.matvec = _jax_edge_matvec(_SplitRows(rows, cols, values, n, xp=xp))
        elif is_cupy_namespace(xp) or is_torch_namespace(xp):
            split = _SplitRows(rows, cols, values, n, xp=xp)
            kernel = _native_csr_matvec(split, xp=xp)
            self.matvec = lambda x: split.combine(kernel(x))
        else:
            segments = _SortedSegments(rows, n, xp=xp)
            cols_sorted = xp.take(cols, segments.order)
            values_sorted = xp.take(values, segments.order)
            self.matvec = lambda x: segments.sum(
                values_sorted * xp.take(x, cols_sorted), presorted=True
            )


def _scipy_csr_matvec(rows: Array, cols: Array, values: Array, n: int) -> Callable[[Array], Array]:
    """SciPy CSR from the edge list by its O(E) counting sort (parallel edges summed).

    The entries are held in float64, so every row sums in float64 and float32 hub
    rows need no split into chunks (:class:`_SplitRows`); the result is cast back
    to `x`'s dtype.  Seven times faster to build than a comparison sort of the
    edges (100k nodes, 1M edges: 12 ms vs 80 ms).
    """
    import numpy as np
    import scipy.sparse as sparse

    csr = sparse.csr_array((values.astype(np.float64, copy=False), (rows, cols)), shape=(n, n))
    return lambda x: (csr @ x).astype(x.dtype, copy=False)


def _has_scipy_sparse() -> bool:
    try:
        import scipy.sparse  # noqa: F401
    except ImportError:
        return False
    return True


def _index_dtype(xp: Namespace, dev: Any, *sizes: int) -> Any:
    """int32 where every index and count fits (cuSPARSE's and SciPy's preference), else int64."""
    if max(sizes) < 2**31 - 1 or not has_dtype(xp, "int64", dev):
        return xp.int32
    return xp.int64


class _SplitRows:
    """Edges sorted by row once, long rows split into chunks of virtual rows.

    Within a row, edges are sorted by column where an int64 key exists (not on
    JAX, whose CPU argsort is slow).  Virtual rows ``0 … n-1`` hold the first `chunk` entries of every row (all of a
    short row), rows ``n … n+m-1`` the further chunks of the long rows.  A native
    kernel sums every virtual row (at most `chunk` terms, in the working
    precision); :meth:`combine` adds a long row's chunk sums in float64 where the
    device has it.  A chunk never exceeds `n` entries, so no virtual row holds more
    entries than the matrix has columns (cuSPARSE refuses ``nnz > rows·cols``).
    """

    def __init__(self, rows: Array, cols: Array, values: Array, n: int, *, xp: Namespace):
        import math

        dev = device(rows)
        self.xp, self.n = xp, n
        n_edges = rows.shape[0]
        sort = _jax_sort_edges(n) if is_jax_namespace(xp) else functools.partial(_sort_edges, n=n)
        rows, cols, values, starts, degrees, longest = sort(rows, cols, values)
        longest = int(longest)
        chunk = min(max(_ROW_CHUNK, math.isqrt(max(longest - 1, 0)) + 1), n)
        self.heavy = None
        n_extra = 0
        if longest > chunk:
            counts = xp.stack(
                [
                    xp.sum(xp.where(degrees > chunk, (degrees - 1) // chunk, 0)),
                    xp.sum(xp.where(degrees > chunk, degrees - chunk, 0)),
                    xp.sum(xp.astype(degrees > chunk, degrees.dtype)),
                ]
            )
            n_extra, n_moved, n_heavy = (int(c) for c in to_host(counts))
            # one compiled call on JAX (eager JAX compiles every op), kept for the next graph
            # of these sizes
            split = _jax_split_long_rows() if is_jax_namespace(xp) else _split_long_rows
            rows, cols, values, self.heavy, self.owners = split(
                rows, cols, values, starts, degrees,
                n=n, chunk=chunk, n_extra=n_extra, n_moved=n_moved, n_heavy=n_heavy,
            )  # fmt: skip
            if not is_jax_namespace(xp):  # JAX adds the chunks inside its jitted mat-vec
                self.segments = _SortedSegments(self.owners, n_heavy, xp=xp)
        self.n_virtual = n + n_extra
        self.index = _index_dtype(xp, dev, self.n_virtual + 1, n, n_edges)
        self.rows, self.values = rows, values
        self.cols = xp.astype(cols, self.index)

    def indptr(self) -> Array:
        """Return the CSR row pointers of the virtual rows, in the dtype of the column indices."""
        xp = self.xp
        nodes = xp.arange(self.n_virtual + 1, dtype=self.rows.dtype, device=device(self.rows))
        return xp.astype(xp.searchsorted(self.rows, nodes, side="left"), self.index)

    def combine(self, y: Array) -> Array:
        """Return the n row sums from the `n_virtual` virtual-row sums `y`."""
        if self.heavy is None:
            return y
        xp = self.xp
        head = y[: self.n]
        extra = self.segments.sum(y[self.n :], presorted=True, keep_accumulator=True)
        first = xp.take(head, self.heavy)
        totals = xp.astype(xp.astype(first, extra.dtype) + extra, y.dtype)
        return _set_entries(head, self.heavy, totals, xp=self.xp)


def _sort_edges(
    rows: Array, cols: Array, values: Array, *, n: int
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Edges sorted by row (then column), with every row's start, degree and the largest."""
    xp = array_namespace(rows, values)
    dev = device(rows)
    wide = wide_index(xp, dev)
    rows, cols = xp.astype(rows, wide), xp.astype(cols, wide)
    # by (row, column) where the key fits: x is then read in order within a row
    order = xp.argsort(rows * n + cols) if wide == xp.int64 else xp.argsort(rows, stable=True)
    rows, cols, values = xp.take(rows, order), xp.take(cols, order), xp.take(values, order)
    nodes = xp.arange(n, dtype=wide, device=dev)
    starts = xp.searchsorted(rows, nodes, side="left")
    degrees = xp.searchsorted(rows, nodes, side="right") - starts
    return rows, cols, values, starts, degrees, xp.max(degrees)


@functools.lru_cache(maxsize=32)
def _jax_sort_edges(n: int) -> Callable[..., tuple[Array, ...]]:
    """:func:`_sort_edges` for JAX, compiled once per graph size.

    Sorted by row only, through one single-array sort of ``row · E + edge`` where
    int64 exists: XLA's CPU argsort (a two-operand sort) is ~6x slower.
    """
    import jax
    import jax.numpy as jnp

    def sort(rows: Array, cols: Array, values: Array) -> tuple[Array, ...]:
        n_edges = rows.shape[0]
        if has_dtype(jnp, "int64", None):
            edges = jnp.arange(n_edges, dtype=jnp.int64)
            keys = jnp.sort(rows.astype(jnp.int64) * n_edges + edges)
            rows, order = keys // n_edges, keys % n_edges
        else:
            edges = jnp.arange(n_edges, dtype=jnp.int32)
            rows, order = jax.lax.sort((rows.astype(jnp.int32), edges), num_keys=1)
        nodes = jnp.arange(n, dtype=rows.dtype)
        starts = jnp.searchsorted(rows, nodes, side="left")
        degrees = jnp.searchsorted(rows, nodes, side="right") - starts
        return rows, cols[order], values[order], starts, degrees, jnp.max(degrees)

    return jit(sort)


def _split_long_rows(
    rows: Array,
    cols: Array,
    values: Array,
    starts: Array,
    degrees: Array,
    *,
    n: int,
    chunk: int,
    n_extra: int,
    n_moved: int,
    n_heavy: int,
) -> tuple[Array, Array, Array, Array, Array]:
    """Virtual rows of the sorted edges: see :class:`_SplitRows`.

    Returns the edges reordered (first chunks, then the extra chunks), their
    virtual rows, the long rows, and for every extra chunk its long row's rank.
    The sizes (`n_extra` chunks, `n_moved` edges in them, `n_heavy` long rows)
    are given, so that JAX can compile it.
    """
    xp = array_namespace(rows, values)
    dev = device(rows)
    n_edges = rows.shape[0]
    wide = rows.dtype
    position = xp.arange(n_edges, dtype=wide, device=dev) - xp.take(starts, rows)
    first = position < chunk
    is_heavy = degrees > chunk
    extra_chunks = xp.where(is_heavy, (degrees - 1) // chunk, 0)
    ends = xp.cumulative_sum(extra_chunks)
    virtual = xp.where(first, rows, n + xp.take(ends - extra_chunks, rows) + position // chunk - 1)
    # first chunks (already in row order), then the extra chunks (also in order)
    keep = xp.concat([_nonzero(first, n_edges - n_moved), _nonzero(~first, n_moved)])
    heavy = _nonzero(is_heavy, n_heavy)
    heavy_rank = xp.cumulative_sum(xp.astype(is_heavy, wide)) - 1
    chunk_rows = xp.searchsorted(ends, xp.arange(n_extra, dtype=wide, device=dev), side="right")
    return (
        xp.take(virtual, keep),
        xp.take(cols, keep),
        xp.take(values, keep),
        heavy,
        xp.take(heavy_rank, chunk_rows),
    )


@functools.cache
def _jax_split_long_rows() -> Callable[..., tuple[Array, ...]]:
    """:func:`_split_long_rows` under ``jax.jit``, its sizes static: compiled once per sizes."""
    sizes = ("n", "chunk", "n_extra", "n_moved", "n_heavy")
    return jit(_split_long_rows, static_argnames=sizes)


def _nonzero(mask: Array, size: int) -> Array:
    """Positions of the `size` true entries of the 1-D `mask` (JAX: inside ``jit`` too)."""
    if is_jax_array(mask):
        import jax.numpy as jnp

        return jnp.nonzero(mask, size=size)[0]
    return array_namespace(mask).nonzero(mask)[0]


def _set_entries(y: Array, index: Array, values: Array, *, xp: Namespace) -> Array:
    """`y` (an array this module made) with ``y[index] = values``."""
    if is_torch_namespace(xp):
        return y.index_copy(0, index, values)
    if is_jax_namespace(xp):
        return y.at[index].set(values)
    y[index] = values  # NumPy, CuPy: y is a fresh result of the mat-vec
    return y


def _native_csr_matvec(split: _SplitRows, *, xp: Namespace) -> Callable[[Array], Array]:
    """Return the virtual-row mat-vec of `split` with the backend's own sparse kernel."""
    shape = (split.n_virtual, split.n)
    if is_cupy_namespace(xp):
        import cupyx.scipy.sparse as cusparse

        if split.index != xp.int32:  # CuPy's CSR casts its indices to int32
            rows, cols, values = split.rows, split.cols, split.values
            return lambda x: segment_sum(values * x[cols], rows, split.n_virtual, xp=xp)
        with split.values.device:  # built from one sort: no COO round trip, no duplicate sums
            csr = cusparse.csr_matrix((split.values, split.cols, split.indptr()), shape=shape)
        return csr.dot
    return _torch_csr_matvec(split.indptr(), split.cols, split.values, shape)


def _torch_csr_matvec(
    crow: Array, cols: Array, values: Array, shape: tuple[int, int]
) -> Callable[[Array], Array]:
    """Torch sparse CSR from row pointers (``coalesce`` is ~10x slower than one sort).

    Parallel edges stay as repeated entries, which a mat-vec adds up.  `crow` and
    `cols` must share one integer dtype (cuSPARSE reads both with one index type).
    """
    import torch

    if crow.dtype != cols.dtype:
        msg = f"`crow` and `cols` must have the same dtype; got {crow.dtype} and {cols.dtype}"
        raise TypeError(msg)
    with warnings.catch_warnings():
        # torch's notices that sparse CSR is "beta" and that invariants go unchecked
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
        csr = torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)
    return functools.partial(torch.mv, csr)


def _jax_edge_matvec(split: _SplitRows) -> Callable[[Array], Array]:
    """Return the mat-vec of `split` in JAX: one jitted call, long rows' chunk sums included."""
    args = (split.rows, split.cols, split.values)
    if split.heavy is not None:
        args += (split.heavy, split.owners)
    kernel = _jax_matvec(split.n, split.n_virtual)
    return lambda x: kernel(x, *args)


@functools.lru_cache(maxsize=32)
def _jax_matvec(n: int, n_virtual: int) -> Callable[..., Array]:
    """Jitted segment sums over rows sorted once at build: no contended scatter-adds.

    With `heavy` rows, the virtual rows past `n` are their further chunks (of row
    ``heavy[owners[k]]``), added in float64 where JAX has it (``jax_enable_x64``).
    """
    import jax
    import jax.numpy as jnp

    def kernel(
        x: Array,
        rows: Array,
        cols: Array,
        values: Array,
        heavy: Array | None = None,
        owners: Array | None = None,
    ) -> Array:
        y = jax.ops.segment_sum(
            values * x[cols], rows, num_segments=n_virtual, indices_are_sorted=True
        )
        if heavy is None:
            return y
        wide = jnp.float64 if has_dtype(jnp, "int64", None) else y.dtype  # x64 gives both
        head = y[:n]
        chunks = jax.ops.segment_sum(
            y[n:].astype(wide), owners, num_segments=heavy.shape[0], indices_are_sorted=True
        )
        return head.at[heavy].set((head[heavy].astype(wide) + chunks).astype(y.dtype))

    return jit(kernel)
