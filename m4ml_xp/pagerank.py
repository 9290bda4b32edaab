"""Course 1 project — PageRank, on dense link matrices and on sparse edge lists.

Link matrices are column-stochastic, ``L[to, from]``; ``damping`` is the
probability of following a link (the course's ``d``).  Scores sum to 1.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace
from m4ml_xp.errors import report_non_convergence, warn

__all__ = [
    "PageRankResult",
    "generate_internet",
    "generate_internet_edges",
    "pagerank",
    "pagerank_edges",
]


class PageRankResult(NamedTuple):
    """Result of :func:`pagerank` and :func:`pagerank_edges`.

    `status`: 0 converged (the L1 change fell below the threshold), 1 `max_iter`
    reached first; `message` says which.
    """

    scores: Array
    n_iter: int
    converged: bool
    error: float
    status: int
    message: str


# --------------------------------------------------------------------------- generators
#: Above this the dense generator's float64 work arrays exceed ~8 GiB each.
_MAX_DENSE_PAGES = 32_768


def _link_probability(distance: np.ndarray) -> np.ndarray:
    """P(|Cauchy| / 2 > distance + 1): the course generator's chance of a link."""
    return 1.0 - (2.0 / np.pi) * np.arctan(2.0 * (distance + 1.0))


def generate_internet(
    n: int,
    *,
    seed: int | None = None,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
) -> Array:
    """Return the course's random internet as a dense column-stochastic link matrix.

    A link from page j to page i exists when ``|Cauchy / 2| > |i − j| + 1`` (a
    band that thins out with distance); ``1e-10`` is added to every entry and
    each column normalised, so a page without links points uniformly everywhere.

    Parameters
    ----------
    n : int
        Number of pages.
    seed : int, optional
        Seed of the NumPy ``Generator``; the same seed gives the same matrix on
        every backend.
    xp, device, dtype : optional
        Namespace (default NumPy), device and floating dtype of the result.

    Returns
    -------
    (n, n) array
        ``L[to, from]``, columns summing to 1.

    Examples
    --------
    >>> from m4ml_xp import generate_internet
    >>> L = generate_internet(5, seed=0)
    >>> L.shape, bool(abs(L.sum(axis=0) - 1).max() < 1e-12)
    ((5, 5), True)
    """
    n = _checks.check_int(n, "n", low=1)
    if n > _MAX_DENSE_PAGES:
        msg = (
            f"`n` = {n} pages needs a dense {n}×{n} matrix ({8 * n * n / 2**30:.0f} GiB); "
            f"use generate_internet_edges for more than {_MAX_DENSE_PAGES} pages"
        )
        raise ValueError(msg)
    xp = _checks.creation_namespace(xp, device)
    rng = _xp.generator(_checks.check_seed(seed))
    index = np.arange(n)
    distance = np.abs(index[:, None] - index[None, :])
    links = (np.abs(rng.standard_cauchy((n, n)) / 2) > distance + 1).astype(np.float64) + 1e-10
    links = links / links.sum(axis=0, keepdims=True)
    dtype = _checks.check_float_dtype(dtype, xp=xp, device=device)
    return xp.asarray(links, dtype=dtype, device=device)


def generate_internet_edges(
    n: int,
    *,
    seed: int | None = None,
    xp: Namespace | None = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Return the course's random internet as a sparse edge list, for graphs of any size.

    Same link law as :func:`generate_internet` (a link j → i with probability
    ``P(|Cauchy| / 2 > |i − j| + 1)``, independently per pair), sampled without
    building the n × n matrix: per distance a binomial count, then positions
    without replacement.  About ``(2/π) · ln n + 0.3`` links per page.  Pages
    without links are dangling (uniform), as in the dense generator.

    Parameters
    ----------
    n : int
        Number of pages.
    seed : int, optional
        Seed of the NumPy ``Generator``.
    xp, device : optional
        Namespace (default NumPy) and device of the result.

    Returns
    -------
    src, dst : 1-D int64 arrays
        Edge ``k`` links page ``src[k]`` to page ``dst[k]``, sorted by ``src``.

    Examples
    --------
    >>> from m4ml_xp import generate_internet_edges
    >>> src, dst = generate_internet_edges(1000, seed=0)
    >>> src.shape == dst.shape, int(src.max()) < 1000
    (True, True)
    """
    n = _checks.check_int(n, "n", low=1)
    xp = _checks.creation_namespace(xp, device)
    rng = _xp.generator(_checks.check_seed(seed))
    distances = np.arange(n)
    pairs = np.where(distances == 0, n, 2 * (n - distances))  # ordered pairs at each distance
    counts = rng.binomial(pairs, _link_probability(distances.astype(np.float64)))
    distance, position = _distinct_positions(rng, counts, pairs)
    # pair p < n - k at distance k links p -> p + k; p' = p - (n - k) links p' + k -> p'
    forward = (distance == 0) | (position < n - distance)
    low = np.where(forward, position, position - (n - distance))
    src = np.where(forward, low, low + distance)
    dst = np.where(forward, low + distance, low)
    edges = np.sort(src * n + dst)  # sorted by source, then destination
    return xp.asarray(edges // n, device=device), xp.asarray(edges % n, device=device)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting (NumPy 2.4's hash-based unique is ~15x slower here)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if values.size else values


def _distinct_positions(
    rng: np.random.Generator, counts: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For every group k, `counts[k]` distinct positions drawn uniformly from ``range(pairs[k])``.

    Vectorised over groups: draw with replacement, drop repeats, redraw what is
    missing (rejection keeps every subset equally likely).  Groups that want a
    large share of their range use ``choice(replace=False)`` directly.
    """
    is_crowded = counts * 8 > pairs
    crowded = np.flatnonzero(is_crowded)
    groups = [np.full(counts[k], k) for k in crowded]
    positions = [rng.choice(pairs[k], size=counts[k], replace=False) for k in crowded]
    sparse = np.where(is_crowded, 0, counts)
    keys = np.zeros(0, dtype=np.int64)
    stride = int(pairs.max()) + 1
    missing = sparse
    while missing.sum():
        k = np.repeat(np.arange(counts.size), missing)
        drawn = _sorted_unique(k * stride + (rng.random(k.size) * pairs[k]).astype(np.int64))
        if keys.size:
            found = np.searchsorted(keys, drawn)
            drawn = drawn[keys[np.minimum(found, keys.size - 1)] != drawn]
        # two sorted runs: the stable sort (timsort) merges them in linear time
        keys = np.sort(np.concatenate([keys, drawn]), kind="stable")
        missing = sparse - np.bincount(keys // stride, minlength=counts.size)
    groups.append(keys // stride)
    positions.append(keys % stride)
    return np.concatenate(groups).astype(np.int64), np.concatenate(positions).astype(np.int64)


# --------------------------------------------------------------------------- tolerances
#: NetworkX's default tolerance per page, and the L1 accuracy a default call promises.
_NX_TOL = 1e-6
_ACCURACY = 1e-6


def _checked_tol(tol: Any, n: int, what: str) -> float:
    """Return an explicit `tol`, checked; warn when its L1 test ``n · tol`` cannot fail."""
    tol = _checks.check_real(tol, "tol", low=0.0, low_open=True)
    if n * tol >= 2.0:
        msg = (
            f"`tol` gives an L1 change threshold {what} = {n * tol:.3g} >= 2, which every "
            "iteration meets (two probability vectors are at most 2 apart in L1): PageRank "
            "stops after one iteration and reports converged=True; pass a smaller `tol`"
        )
        warn(msg, UserWarning)
    return tol


# --------------------------------------------------------------------------- dense


@_xp.full_precision
def pagerank(
    L: Array,
    *,
    damping: float = 0.85,
    tol: float | None = None,
    max_iter: int = 1000,
    raise_on_failure: bool = False,
) -> PageRankResult:
    """PageRank of a dense column-stochastic link matrix by power iteration.

    Iterates ``r ← M r`` with the damped matrix ``M = d·L + (1 − d)/n · J`` from
    the uniform start until the L1 change ``‖r_new − r‖₁`` drops below `tol`.
    An all-zero column (a page without links) links uniformly to every page.
    Columns are checked to sum to 1 within ``max(8·n·eps, 1e-5)`` and then
    renormalised exactly.

    Parameters
    ----------
    L : (n, n) array
        ``L[to, from]``; non-negative, each column summing to 1 or all zero.
    damping : float
        Probability of following a link, in [0, 1].
    tol : float, optional
        L1 tolerance; default ``10 · eps · √n`` (the course's L2 change of 0.01
        is too loose to rank near-ties), at most 2e-4 in float32 and 4e-13 in
        float64 for the largest dense matrix.  The scores are then within
        ``damping / (1 − damping) · tol`` of the fixed point in L1.  A `tol` of 2
        or more cannot fail (probability vectors are at most 2 apart): it warns.
    max_iter : int
        Iteration limit.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.errors.ConvergenceError` instead of warning when
        `max_iter` is reached first.

    Returns
    -------
    PageRankResult
        ``scores`` (n,) summing to 1, ``n_iter``, ``converged``, ``error`` (the
        final L1 change), ``status``, ``message``.

    Warns
    -----
    ConvergenceWarning
        When `max_iter` is reached first (``converged=False``).
    UserWarning
        When `tol` is 2 or more (a test that cannot fail).

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pagerank
    >>> L = np.asarray([[0.0, 1.0, 0.5], [0.5, 0.0, 0.5], [0.5, 0.0, 0.0]])
    >>> np.round(pagerank(L, damping=1.0).scores, 6)
    array([0.444444, 0.333333, 0.222222])
    """
    xp = _checks.namespace(L=L)
    L = _checks.check_real_array(L, "L", xp=xp, ndim=2, square=True)
    damping = _checks.check_real(damping, "damping", low=0.0, high=1.0)
    max_iter = _checks.check_int(max_iter, "max_iter", low=1)
    n = L.shape[0]
    eps = float(xp.finfo(L.dtype).eps)
    tol = 10.0 * eps * math.sqrt(n) if tol is None else _checked_tol(tol, 1, "tol")
    L = _checks.check_values(L, _checks.all_non_negative, "`L` must have non-negative link weights")
    column_sums = xp.sum(L, axis=0)
    dangling = column_sums == 0
    # Loose enough for float32 data stored as float64; the columns are then
    # renormalised so that the damped matrix is stochastic to working precision.
    unit = xp.abs(column_sums - 1) <= max(8 * n * eps, 1e-5)
    _checks.check_bool_result(
        xp.all(unit | dangling),
        "`L` must be column-stochastic: every column must sum to 1 (or be all zero)",
    )
    safe_sums = xp.where(dangling, 1.0, column_sums)
    M = xp.where(dangling[None, :], 1.0 / n, L / safe_sums[None, :]) * damping
    teleport = (1.0 - damping) / n
    r = xp.full(n, 1.0 / n, dtype=L.dtype, device=_xp.device(L))
    return _power_loop(lambda x: M @ x + teleport, r, xp, max_iter, tol, raise_on_failure)


def _power_loop(
    step: Any, x: Array, xp: Namespace, max_iter: int, threshold: float, raise_on_failure: bool
) -> PageRankResult:
    """Iterate ``x ← step(x)`` until ``‖Δx‖₁ < threshold``.

    Stops at the *first* iteration below the threshold (NetworkX semantics) while
    reading the error back to the host only every ``check_interval`` steps: the
    iterates of a block are kept, and the first converged one returned.  Below
    float64, every iterate is divided by its sum (accumulated in float64 where
    the device has it): the fixed point is a probability vector, and rounding
    (of ``1/out-degree`` above all) would otherwise drift its mass by ~1e-6.
    """
    every = _xp.check_interval(xp, _xp.device(x), exact=True)
    if x.dtype != xp.float64:
        unnormalised = step

        def step(x: Array) -> Array:
            new = unnormalised(x)
            return new / xp.astype(_xp.wide_sum(new, xp=xp), new.dtype)

    n_iter = 0
    while n_iter < max_iter:
        block = min(every, max_iter - n_iter)
        iterates, errors = [], []
        for _ in range(block):
            new = step(x)
            iterates.append(new)
            errors.append(_xp.wide_sum(xp.abs(new - x), xp=xp))
            x = new
        # Dask: the block's steps and errors computed in one pass (reading the errors
        # then redoes no step), not one scheduler run per iteration
        *iterates, stacked = _xp.evaluate(*iterates, xp.stack(errors))
        x = iterates[-1]
        host_errors = _xp.to_host(stacked)
        for i, err in enumerate(host_errors):
            if err < threshold:
                message = f"converged: L1 change {err:.3g} is below {threshold:.3g}"
                return PageRankResult(iterates[i], n_iter + i + 1, True, err, 0, message)
        n_iter += block
        error = host_errors[-1]
    message = (
        f"PageRank did not converge in {max_iter} iterations: L1 change {error:.3g} "
        f"is not below {threshold:.3g}"
    )
    report_non_convergence(message, raise_on_failure=raise_on_failure)
    return PageRankResult(x, n_iter, False, error, 1, message)


# --------------------------------------------------------------------------- sparse
def _node_vector(values: Array | None, name: str, default: Array, *, xp: Namespace) -> Array:
    """Return a personalization / dangling / nstart vector (`default` if None), normalised."""
    if values is None:
        return default
    n, dtype = default.shape[0], default.dtype
    values = _checks.check_real_array(values, name, xp=xp, ndim=1)
    if values.shape[0] != n:
        msg = f"`{name}` must have length n_nodes = {n}; got shape {tuple(values.shape)}"
        raise ValueError(msg)
    values = _checks.check_values(
        xp.astype(values, dtype), _checks.all_non_negative, f"`{name}` must be non-negative"
    )
    values = _unit_scaled(values, xp=xp)
    total = xp.sum(values)
    _checks.check_bool_result(total > 0, f"`{name}` must have a positive sum")
    return values / total


def _unit_scaled(values: Array, *, xp: Namespace) -> Array:
    """Return non-negative `values` times the power of two bringing their largest to about 1.

    Exact for normal numbers; sums of the result neither overflow (weights of
    1e308) nor lose subnormal values (weights of 1e-320), and ratios — all that
    PageRank uses — are unchanged.
    """
    if values.shape[0] == 0:
        return values
    return values * _scaling.power_of_two_scale(_scaling.max_abs(values, xp=xp), xp=xp)


def pagerank_edges(
    src: Array,
    dst: Array,
    *,
    n_nodes: int,
    weights: Array | None = None,
    damping: float = 0.85,
    personalization: Array | None = None,
    dangling: Array | None = None,
    nstart: Array | None = None,
    tol: float | None = None,
    max_iter: int = 100,
    dtype: Any = None,
    raise_on_failure: bool = False,
) -> PageRankResult:
    """PageRank of a sparse graph given as an edge list, with NetworkX's semantics.

    Reproduces :func:`networkx.pagerank` exactly (given its `tol`): edge ``k``
    is a link ``src[k] → dst[k]`` with weight ``weights[k]`` (parallel edges
    add); each page's out-weights are normalised; a page with no out-weight
    (dangling) links according to `dangling` (default: `personalization`);
    iterations ``x ← d·(Pᵀx + (Σ dangling x)·dangling) + (1 − d)·personalization``
    stop at the first L1 change ``< n_nodes · tol`` (by default, at most the
    change that bounds the L1 error by 1e-6: see `tol`).

    Parameters
    ----------
    src, dst : (E,) integer arrays
        Edge end points in ``[0, n_nodes)``.
    n_nodes : int
        Number of pages (pages without any edge are allowed).
    weights : (E,) array, optional
        Non-negative, finite edge weights (default 1), of any magnitude: they are
        first scaled exactly by the power of two that brings the largest to about
        1, so out-weights of 1e308s do not overflow and subnormal weights keep
        their ratios; only a weight below ``2**-1074`` (float32: ``2**-149``) times
        the largest is lost (counts as 0).
    damping : float
        NetworkX's ``alpha``: probability of following a link, in [0, 1].
    personalization, dangling, nstart : (n_nodes,) arrays, optional
        Teleport distribution, dangling-page distribution and start vector;
        non-negative, normalised here.  Default uniform (dangling: as
        personalization).
    tol : float, optional
        NetworkX's tolerance: stop when the L1 change is below ``n_nodes · tol``
        (``tol=1e-6``, NetworkX's default, reproduces its iterations).  NetworkX's
        threshold grows with the graph: its error bound ``d / (1 − d) · n_nodes ·
        tol`` exceeds 1e-6 from the first page on, and from ``2 / tol`` pages on
        no iteration can fail it (two probability vectors are at most 2 apart in
        L1), so an explicit `tol` with ``n_nodes · tol >= 2`` warns.  The
        default, ``None``, stops at NetworkX's threshold capped at
        ``1e-6 · (1 − d) / d`` (1.8e-7 for d = 0.85): one step contracts the
        distance to the fixed point by ``d``, so the scores are then within 1e-6
        of it in L1 at any size; if `max_iter` comes first, the
        :class:`ConvergenceWarning` says so.  The cap is never below ``4 · eps``
        of the dtype (float32 iterates keep changing by ~1 eps from rounding),
        which bounds float32 scores by ``d / (1 − d) · 4 · eps`` (2.7e-6 for
        d = 0.85) instead.
    max_iter : int
        Iteration limit (NetworkX raises at it; here ``converged=False`` and a
        :class:`ConvergenceWarning`).
    dtype : dtype, optional
        Working float dtype; default that of `weights`, else the default float.
    raise_on_failure : bool
        Raise :class:`~m4ml_xp.errors.ConvergenceError` (as NetworkX raises
        ``PowerIterationFailedConvergence``) instead of warning.

    Returns
    -------
    PageRankResult
        ``scores`` (n_nodes,), ``n_iter``, ``converged``, ``error``, ``status``, ``message``.

    Warns
    -----
    ConvergenceWarning
        When `max_iter` is reached first (``converged=False``).
    UserWarning
        When an explicit `tol` gives ``n_nodes · tol >= 2`` (a test that cannot fail).

    Notes
    -----
    The graph operator is built once (SciPy/CuPy CSR, torch sparse CSR, a jitted
    JAX segment sum over sorted rows, chunked Dask reductions, or sorted segment
    sums in the standard) and applied once per iteration.

    In float32, rows with many in-links (a hub page) are summed in chunks whose
    sums are added in float64, every sum over pages (dangling mass, L1 change)
    accumulates in float64, and each iterate is renormalised to sum 1, where the
    device has float64: float32 scores then agree with float64 ones to about
    1e-6 in L1 (without float64, as JAX by default, chunk sums add in float32).

    On Dask, the edge arrays may be larger than any worker's memory; each
    worker holds one edge chunk and the score vector.  On Dask, element-wise
    input checks (index ranges, signs, finiteness) run chunk by chunk as the
    iterations compute; a zero-sum
    `personalization` or `dangling` is not detected there.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pagerank_edges
    >>> src, dst = np.asarray([0, 1, 2, 2]), np.asarray([1, 2, 0, 1])
    >>> result = pagerank_edges(src, dst, n_nodes=3)
    >>> np.round(result.scores, 6), result.converged
    (array([0.214811, 0.3974  , 0.38779 ]), True)

    NetworkX's default stopping rule, and a `tol` that no iteration can fail:

    >>> pagerank_edges(src, dst, n_nodes=3, tol=1e-6).n_iter  # as networkx.pagerank
    25
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     vacuous = pagerank_edges(src, dst, n_nodes=3, tol=1.0)
    >>> vacuous.n_iter, str(caught[0].message)[:60]
    (1, '`tol` gives an L1 change threshold n_nodes · tol = 3 >= 2, w')
    """
    xp = _checks.namespace(
        src=src,
        dst=dst,
        weights=weights,
        personalization=personalization,
        dangling=dangling,
        nstart=nstart,
        optional=["weights", "personalization", "dangling", "nstart"],
    )
    n = _checks.check_int(n_nodes, "n_nodes", low=1)
    src = _checks.check_index_array(src, "src", xp=xp, n=n, n_name="n_nodes")
    dst = _checks.check_index_array(dst, "dst", xp=xp, n=n, n_name="n_nodes")
    if src.shape[0] != dst.shape[0]:
        msg = f"`src` and `dst` must have the same length; got {src.shape[0]} and {dst.shape[0]}"
        raise ValueError(msg)
    damping = _checks.check_real(damping, "damping", low=0.0, high=1.0)
    if tol is not None:
        tol = _checked_tol(tol, n, "n_nodes · tol")
    max_iter = _checks.check_int(max_iter, "max_iter", low=1)
    dev = _xp.device(src)
    if weights is None:
        dtype = _checks.check_float_dtype(dtype, xp=xp, device=dev)
        weights = xp.ones(src.shape, dtype=dtype, device=dev)
    else:
        weights = _checks.check_real_array(weights, "weights", xp=xp, ndim=1, allow_empty=True)
        if weights.shape[0] != src.shape[0]:
            msg = (
                f"`weights` must have one entry per edge ({src.shape[0]}); "
                f"got shape {tuple(weights.shape)}"
            )
            raise ValueError(msg)
        dtype = weights.dtype if dtype is None else _checks.check_float_dtype(dtype, xp=xp)
        message = "`weights` must be non-negative (negative link weights given)"
        weights = _checks.check_values(xp.astype(weights, dtype), _checks.all_non_negative, message)
    uniform = xp.full(n, 1.0 / n, dtype=dtype, device=dev)
    p = _node_vector(personalization, "personalization", uniform, xp=xp)
    d = _node_vector(dangling, "dangling", p, xp=xp)
    x = _node_vector(nstart, "nstart", uniform, xp=xp)

    # see `weights`; computed once (on Dask: persisted, n values), not in every iteration's graph
    weights = _unit_scaled(weights, xp=xp)
    (out_weight,) = _xp.evaluate(_xp.segment_sum(weights, src, n, xp=xp))
    is_dangling = xp.astype(out_weight == 0, dtype)
    inverse = xp.where(out_weight > 0, 1.0 / xp.where(out_weight > 0, out_weight, 1.0), 0.0)
    transitions = weights * xp.take(inverse, src)
    operator = _xp.EdgeOperator(dst, src, transitions, n, xp=xp)
    teleport = (1.0 - damping) * p
    threshold = n * (_NX_TOL if tol is None else tol)
    if tol is None and damping > 0:
        # The L1 change below which the scores are within `_ACCURACY` of the fixed point: one
        # step contracts the L1 distance to it by `damping`, so ‖x − x*‖₁ ≤ damping / (1 −
        # damping) · ‖x_new − x‖₁.  Above damping 0.99 the bound of 0.99 is used (at damping 1
        # no bound holds).  Never below 4 · eps: rounding keeps float32 iterates changing by
        # up to ~1 eps in L1.
        eps = float(xp.finfo(dtype).eps)
        accuracy = max(_ACCURACY * max(1.0 - damping, 0.01) / damping, 4.0 * eps)
        threshold = min(threshold, accuracy)

    def step(x: Array) -> Array:
        dangling_mass = xp.astype(_xp.wide_sum(x * is_dangling, xp=xp), x.dtype)
        return damping * (operator.matvec(x) + dangling_mass * d) + teleport

    return _power_loop(step, x, xp, max_iter, threshold, raise_on_failure)
