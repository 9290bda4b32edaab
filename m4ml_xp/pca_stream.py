"""Course 3 — PCA that streams: exact statistics merged chunk by chunk, and the estimator.

A chunk's count, mean and centred cross-product matrix are merged into the
running ones with the pairwise update of Chan, Golub & LeVeque (1979)::

    δ = μ_b − μ_a,   n = n_a + n_b,   μ = μ_a + δ·n_b/n,
    M = M_a + M_b + δδᵀ·n_a·n_b/n

which is exact — the same covariance as one pass over all the data, to
rounding — and never forms ``E[xxᵀ] − μμᵀ``.  One ``eigh`` of ``M/(n − 1)``
then gives the components.  The state (and how many chunks it has seen) can be
saved and resumed, so a run killed mid-way ends with the same result.

Any finite magnitude works, without knowing it in advance: the state keeps
``M`` for the rows multiplied by a power of two ``scale`` (near ``1/max|x|`` over
the rows seen so far).  A chunk of larger magnitude lowers the scale, and the
accumulated ``M`` is multiplied by ``(new/old)²`` — exact, being a power of two
— before the chunk, scaled by the new one, is merged.  The result is scaled
back as :func:`~m4ml_xp.pca` does.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from m4ml_xp import _checks, _scaling, _xp
from m4ml_xp._xp import Array, Namespace
from m4ml_xp.pca import (
    PCAResult,
    _n_components,
    centred_scatter,
    finish_result,
    largest_magnitude,
    pca,
    scaled_mean,
    scatter_decomposition,
    working_scale,
)

__all__ = ["PCA", "StreamingState", "streaming_pca"]


class StreamingState(NamedTuple):
    """Running statistics of a stream.

    ``count`` rows, their ``mean``, and the centred cross-product matrix of the rows
    multiplied by ``scale`` (a power of two, a 0-d array), ``scatter = scale² · Σ (x −
    μ)(x − μ)ᵀ``, after ``n_chunks`` chunks.  States saved before ``scale`` existed
    load with ``scale = 1`` (their unscaled ``scatter``) and merge on correctly.
    """

    count: int
    mean: Array
    scatter: Array
    n_chunks: int
    scale: Any = 1.0

    def state_dict(self) -> dict[str, Any]:
        """Host (NumPy) copies of the state, for saving."""
        return {
            "count": self.count,
            "mean": _xp.to_numpy(self.mean),
            "scatter": _xp.to_numpy(self.scatter),
            "n_chunks": self.n_chunks,
            "scale": _xp.to_numpy(_scale_of(self, _xp.array_namespace(self.mean))),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state to `path` (``.npz``) atomically: a kill mid-write keeps the old file."""
        import numpy as np

        path = Path(path)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, **self.state_dict())
        os.replace(partial, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, xp: Namespace | None = None, device: Any = None
    ) -> StreamingState:
        """Read a state saved by :meth:`save` onto `xp` / `device` (default NumPy)."""
        import numpy as np

        try:
            with np.load(Path(path)) as saved:
                parts = {key: saved[key] for key in ("count", "mean", "scatter", "n_chunks")}
                if "scale" in saved:  # absent from states saved by earlier versions
                    parts["scale"] = saved["scale"]
        except (OSError, KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a saved streaming-PCA state ({exc})") from None
        return cls.from_state_dict(parts, xp=xp, device=device)

    @classmethod
    def from_state_dict(
        cls, parts: dict[str, Any], *, xp: Namespace | None = None, device: Any = None
    ) -> StreamingState:
        """Rebuild a state from :meth:`state_dict`'s parts onto `xp` / `device`."""
        xp = _checks.creation_namespace(xp, device)
        mean = xp.asarray(parts["mean"], device=device)
        scatter = xp.asarray(parts["scatter"], device=device)
        # 1: a state saved before the scale was kept
        scale = xp.asarray(parts.get("scale", 1.0), dtype=mean.dtype, device=device)
        return cls(int(parts["count"]), mean, scatter, int(parts["n_chunks"]), scale)


def _scale_of(state: StreamingState, xp: Namespace) -> Array:
    """Return the state's scale as a 0-d array of its mean's dtype and device."""
    if _xp.is_array(state.scale) and state.scale.dtype == state.mean.dtype:
        return state.scale  # (torch: asarray of a tensor in a graph warns)
    return xp.asarray(state.scale, dtype=state.mean.dtype, device=_xp.device(state.mean))


def _chunk_scale(chunk: Array, xp: Namespace) -> Array:
    """Return the power of two bringing `chunk` near 1; all-zero chunks set no limit (the largest)."""
    largest = largest_magnitude(chunk, xp=xp)
    top = float(math.frexp(float(xp.finfo(largest.dtype).max))[1] - 1)  # 1023 / 127
    no_limit = xp.pow(xp.full_like(largest, 2.0), xp.full_like(largest, top))
    return xp.where(largest == 0, no_limit, _scaling.power_of_two_scale(largest, xp=xp))


def update_state(state: StreamingState | None, chunk: Array, *, xp: Namespace) -> StreamingState:
    """Merge one ``(n, D)`` chunk into the running statistics (Chan et al.).

    The scale only falls (towards the largest magnitude seen): the accumulated
    scatter is multiplied by ``(new / old)²``, exact for powers of two.
    """
    first = state is None or state.count == 0
    if not first and chunk.shape[1] != state.mean.shape[0]:
        msg = (
            f"`chunks[{state.n_chunks}]` must have {state.mean.shape[0]} columns like the "
            f"first chunk; got shape {tuple(chunk.shape)}"
        )
        raise ValueError(msg)
    limit = None if first else _scale_of(state, xp)
    scale, mean_b, scatter_b = _chunk_moments(chunk, limit, xp=xp)
    count_b = chunk.shape[0]
    if first:
        n_chunks = 1 if state is None else state.n_chunks + 1
        return StreamingState(count_b, mean_b / scale, scatter_b, n_chunks, scale)
    count = state.count + count_b  # Python integers: the weights as floats, never overflowing
    mean, scatter = _merge(
        state.mean, state.scatter, limit, mean_b, scatter_b, scale,
        count_b / count, state.count * count_b / count, xp=xp,
    )  # fmt: skip
    return StreamingState(count, mean, scatter, state.n_chunks + 1, scale)


@_xp.fused()
def _chunk_moments(
    chunk: Array, limit: Array | None, *, xp: Namespace
) -> tuple[Array, Array, Array]:
    """Return the chunk's scale (at most `limit`), scaled mean and centred scatter (one JAX program)."""
    scale = _chunk_scale(chunk, xp)
    if limit is not None:
        scale = xp.minimum(limit, scale)
    mean = scaled_mean(chunk, scale, xp=xp)
    return scale, mean, centred_scatter(chunk, mean, xp=xp, scale=scale)


@_xp.fused()
def _merge(
    mean_a: Array, scatter_a: Array, scale_a: Array, mean_b: Array, scatter_b: Array,
    scale: Array, weight_b: float, weight_ab: float, *, xp: Namespace,
) -> tuple[Array, Array]:  # fmt: skip
    """Chan et al.'s merge of two chunks' moments, the new `scale` ≤ `scale_a` (a power of two)."""
    ratio = scale / scale_a  # a power of two <= 1: exact
    mean_a = mean_a * scale
    delta = mean_b - mean_a
    mean = mean_a + delta * weight_b
    scatter = (
        scatter_a * ratio * ratio  # one factor at a time: ratio² may underflow
        + scatter_b
        + (delta[:, None] * delta[None, :]) * weight_ab
    )
    return mean / scale, scatter


def result_from_state(state: StreamingState, n_components: Any, *, xp: Namespace) -> PCAResult:
    """Return the principal components of the streamed data: one ``eigh`` of the covariance."""
    N, D = state.count, state.mean.shape[0]
    if N < 2:
        raise ValueError(f"at least 2 rows are needed for PCA; the stream had {N}")
    k, fraction = _n_components(n_components, N, D, "covariance_eigh")
    singular, components, total = scatter_decomposition(state.scatter, xp=xp)
    return finish_result(
        singular, components, total, state.mean, N, k, fraction,
        xp=xp, scale=_scale_of(state, xp), warn=True,
    )  # fmt: skip


@_xp.full_precision
def streaming_pca(
    chunks: Iterable[Any],
    n_components: int | float | None = None,
    *,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    progress: bool = False,
) -> PCAResult:
    """Exact PCA of data arriving in row chunks — more data than fits on the device.

    Parameters
    ----------
    chunks : iterable of (n_i, D) arrays
        Arrays: NumPy arrays or memmaps on the host, or arrays of `xp` (lists and
        other non-arrays are refused, naming ``chunks[i]``); each is moved to
        `device` and merged into the running statistics.  Host
        chunks bound for a CUDA device (CuPy, torch) pass through two reused
        page-locked buffers, so reading the next chunk overlaps the transfer and
        the work on this one.
    n_components : int, float or None
        As for :func:`~m4ml_xp.pca`.
    xp, device, dtype : optional
        Where the work happens (default: the first chunk's library, its default
        float).  Use e.g. ``xp=cupy`` to stream host data through a GPU.
    checkpoint : path, optional
        Resume from this file if it exists (skipping the chunks it has seen),
        and save the state there every `checkpoint_every` chunks and at the end.
    progress : bool
        A tqdm bar over the chunks.

    Returns
    -------
    PCAResult
        Equal, to rounding, to :func:`~m4ml_xp.pca` with ``method="covariance_eigh"``
        on all the rows at once.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import pca, streaming_pca
    >>> X = np.random.default_rng(0).standard_normal((1000, 5))
    >>> streamed = streaming_pca((X[i : i + 128] for i in range(0, 1000, 128)), 2)
    >>> bool(np.allclose(streamed.explained_variance, pca(X, 2).explained_variance))
    True
    """
    checkpoint_every = _checks.check_int(checkpoint_every, "checkpoint_every", low=1)
    state: StreamingState | None = None
    if checkpoint is not None and Path(checkpoint).exists():
        state = StreamingState.load(checkpoint, xp=xp, device=device)
        xp = _xp.array_namespace(state.mean)
    skip = state.n_chunks if state is not None else 0
    iterator = iter(_checks.array_items(chunks, "chunks"))
    for _ in range(skip):  # already counted before the interruption
        next(iterator, None)
    if progress:
        from tqdm.auto import tqdm

        total = len(chunks) if hasattr(chunks, "__len__") else None
        iterator = tqdm(iterator, desc="streaming PCA", unit="chunk", initial=skip, total=total)
    if xp is None:  # the first chunk's library
        first = next(iterator, None)
        if first is None:
            raise ValueError("`chunks` was empty: no rows to analyse")
        xp = _xp.array_namespace(first) if _xp.is_array(first) else _xp.namespace_for(None)
        iterator = itertools.chain([first], iterator)
    on_device = _xp.to_device_chunks(_one_library(iterator, xp, skip), xp, device)
    finiteness = _checks.StreamFiniteness("chunks", xp=xp)
    for index, block in enumerate(on_device, start=skip):
        block = _checks.check_real_array(block, f"chunks[{index}]", xp=xp, ndim=2, finite=False)
        block = finiteness.add(block, index)
        if dtype is not None and block.dtype != dtype:
            block = xp.astype(block, dtype)
        if state is not None and state.mean.dtype != block.dtype:
            block = xp.astype(block, state.mean.dtype)
        with warnings.catch_warnings():  # a non-finite chunk is reported by `verify`, not here
            warnings.simplefilter("ignore", RuntimeWarning)
            state = update_state(state, block, xp=xp)
        if checkpoint is not None and state.n_chunks % checkpoint_every == 0:
            finiteness.verify()
            state.save(checkpoint)
    if state is None:
        raise ValueError("`chunks` was empty: no rows to analyse")
    finiteness.verify()
    if checkpoint is not None:
        state.save(checkpoint)
    return result_from_state(state, n_components, xp=xp)


def _foreign_library(array: Any, library: str) -> str | None:
    """Return the library of `array` where it is neither `library` nor NumPy (host arrays move)."""
    other = _xp.library_name(array) if _xp.is_array(array) else None
    return None if other in (None, "numpy", library) else other


def _one_library(chunks: Iterable[Any], xp: Namespace, start: int) -> Iterator[Any]:
    """Pass on `chunks`, refusing one of a library other than `xp`'s (host NumPy chunks pass)."""
    library = _xp.library_name(xp.empty(0))
    for index, chunk in enumerate(chunks, start=start):
        if other := _foreign_library(chunk, library):
            msg = (
                f"`chunks[{index}]` comes from {other}, in a stream of {library} arrays: pass "
                "chunks of one library (host NumPy chunks are moved to any backend)"
            )
            raise TypeError(msg)
        yield chunk


class PCA:
    """Principal component analysis as a scikit-learn-style estimator.

    Parameters
    ----------
    n_components : int, float or None
        As for :func:`~m4ml_xp.pca`.  A float is the variance fraction to keep:
        after each ``partial_fit`` the count is chosen again from all the rows
        seen so far, so ``n_components_`` may change as data arrive (it always
        equals a batch ``fit`` on the same rows).
    method : str
        As for :func:`~m4ml_xp.pca` (``fit``); ``partial_fit`` is always the
        exact streaming covariance route.
    whiten : bool
        Scale the projections to unit variance (with ``partial_fit``: the
        variance of the rows seen so far).
    seed : int, optional
        For ``method="randomized"``.

    Attributes
    ----------
    components_, explained_variance_, explained_variance_ratio_, singular_values_,
    mean_, n_components_, n_samples_, n_features_in_ : as in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import PCA
    >>> X = np.random.default_rng(0).standard_normal((100, 4))
    >>> model = PCA(2).fit(X)
    >>> Z = model.transform(X)
    >>> Z.shape, model.components_.shape
    ((100, 2), (2, 4))
    """

    def __init__(
        self,
        n_components: int | float | None = None,
        *,
        method: str = "auto",
        whiten: bool = False,
        seed: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.method = method
        self.whiten = whiten
        self.seed = seed
        self._state: StreamingState | None = None

    def _set(self, result: PCAResult, n_samples: int) -> PCA:
        for field, value in result._asdict().items():  # components_, ..., mean_
            setattr(self, f"{field}_", value)
        self.n_components_, self.n_features_in_ = (int(size) for size in result.components.shape)
        self.n_samples_ = n_samples
        return self

    def fit(self, X: Array, y: Any = None) -> PCA:
        """Fit on all of `X` at once."""
        self._state = None
        return self._set(pca(X, self.n_components, method=self.method, seed=self.seed), X.shape[0])

    @_xp.full_precision
    def partial_fit(self, X: Array, y: Any = None) -> PCA:
        """Merge the rows of `X` into the running statistics; the fit is exact after each call."""
        if self._state is not None:  # later batches join the fitted library (host NumPy moves)
            library = _xp.library_name(self._state.mean)
            if other := _foreign_library(X, library):
                msg = (
                    f"`X` comes from {other}, but the model was fitted on {library} arrays: pass "
                    "batches of one library (host NumPy batches are moved to it)"
                )
                raise TypeError(msg)
            if _xp.is_array(X) and _xp.library_name(X) == "numpy" and library != "numpy":
                fitted = _xp.array_namespace(self._state.mean)
                X = fitted.asarray(X, device=_xp.device(self._state.mean))
        xp = _checks.namespace(X=X)
        X = _checks.check_real_array(X, "X", xp=xp, ndim=2)
        if self._state is not None and self._state.mean.dtype != X.dtype:
            X = xp.astype(X, self._state.mean.dtype)
        self._state = update_state(self._state, X, xp=xp)
        return self._refit()

    def state_dict(self) -> dict[str, Any]:
        """Return the streaming statistics (host copies), to resume ``partial_fit`` later."""
        if self._state is None:
            raise ValueError("no partial_fit yet: nothing to save")
        return self._state.state_dict()

    @_xp.full_precision
    def load_state_dict(
        self, parts: dict[str, Any], *, xp: Namespace | None = None, device: Any = None
    ) -> PCA:
        """Resume from :meth:`state_dict`'s output."""
        self._state = StreamingState.from_state_dict(parts, xp=xp, device=device)
        return self._refit()

    def _refit(self) -> PCA:
        state = self._state
        if state is not None and state.count >= 2:
            xp = _xp.array_namespace(state.mean)
            self._set(result_from_state(state, self.n_components, xp=xp), state.count)
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet: call fit or partial_fit first")

    def _checked(
        self, name: str, array: Array, columns: int, why: str, also: Array | None = None
    ) -> tuple[Namespace, Array, Array | None]:
        """Return the namespace, `array` checked and in the model's dtype, and its working scale.

        The scale is the power of two to work on it at (None: as it is; see :func:`~m4ml_xp.pca`).
        """
        xp = _checks.namespace(**{name: array, "components_": self.components_})
        array = _checks.check_real_array(array, name, xp=xp, ndim=2, finite=_xp.is_lazy(array))
        if array.shape[1] != columns:
            msg = f"`{name}` must have {columns} columns {why}; got {tuple(array.shape)}"
            raise ValueError(msg)
        if array.dtype != self.components_.dtype:  # the model's dtype, as partial_fit
            array = xp.astype(array, self.components_.dtype)
        return xp, array, working_scale(array, name, xp=xp, also=also)

    def _std(self, xp: Namespace) -> Array:
        """Return the components' standard deviations, right where the variance overflows or underflows."""
        variance = self.explained_variance_
        normal = xp.isfinite(variance) & (variance >= xp.finfo(variance.dtype).smallest_normal)
        from_singular = self.singular_values_ / math.sqrt(max(self.n_samples_ - 1, 1))
        return xp.where(normal, xp.sqrt(variance), from_singular)

    def _whitened(self, Z: Array, xp: Namespace, scale: Array | None) -> Array:
        """``Z`` over the deviations (times `scale`); 0 along a null component, not 0/0 or noise.

        Null: a deviation at most ``sqrt(max(N, D)·eps)`` of the largest — a variance
        at the covariance's rounding, ``max(N, D)·eps`` of the leading one — whose
        coordinates are rounding error that whitening would blow up.
        """
        std = self._std(xp)
        eps = float(xp.finfo(std.dtype).eps)
        spread = std > math.sqrt(max(self.n_samples_, self.n_features_in_) * eps) * std[:1]
        divisor = xp.where(spread, std if scale is None else std * scale, 1.0)
        return xp.where(spread, Z / divisor, 0.0)

    @_xp.full_precision
    def transform(self, X: Array) -> Array:
        """Coordinates of the rows of `X` along the components: ``(N, k)``, in the model's dtype."""
        self._fitted()
        xp, X, scale = self._checked(
            "X", X, self.n_features_in_, "like the fitted data", self.mean_
        )
        # extreme magnitudes: projected at a power-of-two scale, exactly undone (whitened:
        # divided by the scaled deviations, never through coordinates that underflow)
        centred = X - self.mean_ if scale is None else X * scale - self.mean_ * scale
        Z = centred @ xp.linalg.matrix_transpose(self.components_)
        if self.whiten:
            return self._whitened(Z, xp, scale)
        return Z if scale is None else Z / scale

    def fit_transform(self, X: Array, y: Any = None) -> Array:
        """Fit on `X` and return its coordinates along the components (:meth:`transform`)."""
        return self.fit(X).transform(X)

    @_xp.full_precision
    def inverse_transform(self, Z: Array) -> Array:
        """Back to the data space: ``Z·components + mean`` (the course's reconstruction)."""
        self._fitted()
        xp, Z, scale = self._checked("Z", Z, self.n_components_, "(one per component)", self.mean_)
        if self.whiten:
            std = self._std(xp)
            scale = working_scale(std, "Z", xp=xp, also=self.mean_)
            Z = Z * (std if scale is None else std * scale)
        elif scale is not None:
            Z = Z * scale
        X = Z @ self.components_
        return (X if scale is None else X / scale) + self.mean_
