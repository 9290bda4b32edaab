"""``m4ml-xp pca --augment K``: PCA of K randomly transformed copies of every digit, streamed.

The affine part of the MNIST-8M recipe (Loosli, Canu & Bottou, 2007): each copy of
each digit gets its own small rotation, shear and sub-pixel shift.  The parameters
are drawn on the host from a NumPy Generator seeded with ``(seed, copy)``, so a seed
gives the same augmented set on every backend and for every chunk size; the images
are made on the device of the base digits by :func:`~m4ml_xp.transform_image`, one
call per chunk (a stack of transforms, one per row), and streamed through
:func:`~m4ml_xp.streaming_pca`.  The K copies are never all held at once: a chunk
is made, merged into the running covariance and dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from m4ml_xp import backends
from m4ml_xp.pca import PCAResult
from m4ml_xp.pca_stream import streaming_pca, update_state
from m4ml_xp.transformations import rotation_matrix, transform_image

#: rows per chunk when ``--chunk-rows`` is not given.  Making a chunk holds about 70 bytes
#: of temporaries per float32 pixel (4.4 GB at 65,536 rows, measured): on a GPU the chunk's
#: work should dwarf the host's per-chunk work; on a CPU smaller chunks fault in less memory.
GPU_CHUNK_ROWS = 65_536
CPU_CHUNK_ROWS = 16_384


def default_chunk_rows(xp: Any, device: Any) -> int:
    """Return the chunk size for `device`: larger on a GPU than on the CPU."""
    return GPU_CHUNK_ROWS if backends.on_accelerator(xp, device) else CPU_CHUNK_ROWS


SIDE = 28  # MNIST digits are 28×28


@dataclass(frozen=True)
class Augmentation:
    """How the copies are made: `copies` per digit, limits of the uniform draws, the seed.

    Each copy of each digit is rotated by an angle in ``±max_rotation`` degrees,
    sheared along x by a factor in ``±max_shear`` and shifted by up to
    ``±max_shift`` pixels along x and y (sub-pixel shifts are interpolated).
    """

    copies: int
    seed: int = 0
    max_rotation: float = 15.0
    max_shear: float = 0.15
    max_shift: float = 2.0

    def __post_init__(self) -> None:
        """Refuse counts below 1, negative seeds and limits that are negative or not finite."""
        if self.copies < 1 or self.seed < 0:
            msg = f"`copies` must be >= 1 and `seed` >= 0; got {self.copies} and {self.seed}"
            raise ValueError(msg)
        for name in ("max_rotation", "max_shear", "max_shift"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a finite number >= 0; got {value}")

    def parameters(self, copy: int, n_digits: int) -> tuple[np.ndarray, np.ndarray]:
        """Return copy `copy`'s transforms ``(n_digits, 2, 2)`` and shifts ``(n_digits, 2)``.

        Drawn from ``numpy.random.default_rng([seed, copy])`` — the same on every
        backend — as ``T = rotation(θ) · shear(k)`` and ``(dx, dy)`` in pixels, y up.
        """
        rng = np.random.default_rng([self.seed, copy])
        angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation, n_digits))
        shear = rng.uniform(-self.max_shear, self.max_shear, n_digits)
        shift = rng.uniform(-self.max_shift, self.max_shift, (n_digits, 2))
        shears = np.zeros((n_digits, 2, 2))
        shears[:, 0, 0] = shears[:, 1, 1] = 1.0
        shears[:, 0, 1] = shear  # x' = x + k·y, as shear_matrix(k, axis=0)
        return rotation_matrix(angle) @ shears, shift


class AugmentedDigits:
    """The ``copies × N`` augmented digits as chunks of `chunk_rows` rows, made on demand.

    Row ``r`` is copy ``r // N`` of digit ``r % N`` of `images` (``(N, 784)`` rows of
    `xp` on `device`); each chunk is made on that device.
    """

    def __init__(
        self, images: Any, augmentation: Augmentation, *, chunk_rows: int, xp: Any, device: Any
    ) -> None:
        self.images, self.augmentation, self.chunk_rows = images, augmentation, chunk_rows
        self.xp, self.device = xp, device
        self.n_digits = int(images.shape[0])
        self.n_rows = augmentation.copies * self.n_digits
        self._held: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None  # the last copy's

    def __len__(self) -> int:
        """Return the number of chunks."""
        return math.ceil(self.n_rows / self.chunk_rows)

    @property
    def nbytes(self) -> int:
        """Bytes of all the augmented rows."""
        itemsize = self.xp.finfo(self.images.dtype).bits // 8
        return self.n_rows * int(self.images.shape[1]) * itemsize

    def _parameters(self, copy: int) -> tuple[np.ndarray, np.ndarray]:
        if self._held is None or self._held[0] != copy:
            self._held = (copy, self.augmentation.parameters(copy, self.n_digits))
        return self._held[1]

    def rows(self, start: int, stop: int) -> Any:
        """Return augmented rows ``start:stop`` as one ``(stop − start, 784)`` array."""
        xp, n = self.xp, self.n_digits
        transforms, shifts = [], []
        for copy in range(start // n, (stop - 1) // n + 1):
            low, high = max(start - copy * n, 0), min(stop - copy * n, n)
            T, shift = self._parameters(copy)
            transforms.append(T[low:high])
            shifts.append(shift[low:high])
        dtype = self.images.dtype
        digits = xp.take(self.images, xp.arange(start, stop, device=self.device) % n, axis=0)
        return transform_image(
            digits,
            xp.asarray(np.concatenate(transforms), dtype=dtype, device=self.device),
            offset=xp.asarray(np.concatenate(shifts), dtype=dtype, device=self.device),
            image_shape=(SIDE, SIDE),
        )

    def __iter__(self) -> Iterator[Any]:
        """Yield the chunks in order."""
        for start in range(0, self.n_rows, self.chunk_rows):
            yield self.rows(start, min(start + self.chunk_rows, self.n_rows))


class AugmentedRun(NamedTuple):
    """The PCA of the augmented digits, how many there were and how fast they went."""

    result: PCAResult
    n_rows: int
    nbytes: int
    seconds: float


def augmented_pca(
    images: Any,
    augmentation: Augmentation,
    n_components: int,
    *,
    xp: Any,
    device: Any,
    chunk_rows: int | None = None,
    progress: bool | None = None,
) -> AugmentedRun:
    """Stream the augmented copies of `images` through ``streaming_pca``; time it.

    A small untimed warm-up first (kernels compiled, libraries loaded), then the
    timed run, synchronised at the end.  `chunk_rows`: by default
    :func:`default_chunk_rows`.  `progress`: a tqdm bar with images/s and
    GB/s (``None``: only on a terminal).
    """
    from tqdm.auto import tqdm

    chunk_rows = chunk_rows or default_chunk_rows(xp, device)
    chunks = AugmentedDigits(images, augmentation, chunk_rows=chunk_rows, xp=xp, device=device)
    # warm-up, untimed: the gathers and the scatter product once on a few rows (the eigh
    # at the end is the base PCA's, already warm)
    backends.sync(update_state(None, chunks.rows(0, min(64, chunks.n_rows)), xp=xp).scatter)
    bytes_per_row = chunks.nbytes / chunks.n_rows
    bar = tqdm(
        total=chunks.n_rows, desc="augmented PCA", unit="img", unit_scale=True, leave=False,
        disable=None if progress is None else not progress,
    )  # fmt: skip
    start = time.perf_counter()

    def counted() -> Iterator[Any]:
        for chunk in chunks:
            yield chunk
            bar.update(int(chunk.shape[0]))  # merged: streaming_pca asks for the next one
            rate = bar.n * bytes_per_row / max(time.perf_counter() - start, 1e-9) / 1e9
            bar.set_postfix_str(f"{rate:.3g} GB/s", refresh=False)

    try:
        result = streaming_pca(counted(), n_components, xp=xp, device=device)
        backends.sync(result.components)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    return AugmentedRun(result, chunks.n_rows, chunks.nbytes, seconds)
