"""The asv base class: the array backend (and device) is a benchmark parameter.

A backend that is not installed, or a device that is absent, makes ``setup``
raise ``SkipNotImplemented`` so asv records "n/a" instead of failing.  Timed
calls synchronise (GPU queues, JAX dispatch, Dask graphs) and JIT compilation
is paid in ``setup``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # older asv
    SkipNotImplemented = NotImplementedError

from m4ml_xp import backends
from m4ml_xp.cli.harness.common import TARGETS, mnist_or_synthetic

#: asv parameter value -> (m4ml_xp backend name, device name): the same table `m4ml-xp bench` uses
BACKENDS = TARGETS

LARGE = os.environ.get("M4ML_XP_BENCH_LARGE") == "1"

_SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_data() -> tuple[np.ndarray, np.ndarray]:
    """MNIST t10k images and labels from ``M4ML_XP_DATA`` (or ../shared/data/mnist beside
    the repository), else random data of the same shape."""
    location = os.environ.get("M4ML_XP_DATA") or (
        str(_SHARED_MNIST) if _SHARED_MNIST.is_dir() else None
    )
    return mnist_or_synthetic(location)[:2]


class XPBenchmark:
    """Base class: ``params[0]`` is the backend; subclasses append their own parameters."""

    params: list[list[Any]] = [list(BACKENDS)]
    param_names: list[str] = ["backend"]
    timeout = 600

    def setup(self, backend: str, *args: Any) -> None:
        name, device = BACKENDS[backend]
        try:
            self.xp, self.device = backends.resolve_backend(name, device)
        except Exception as exc:
            raise SkipNotImplemented(f"{backend} not available: {exc}") from None

    def asarray(self, a: np.ndarray, dtype: Any = None) -> Any:
        """Move benchmark data (made with NumPy) to the backend under test."""
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    @staticmethod
    def sync(result: Any) -> Any:
        """Wait for the work behind `result` to finish (part of the timed call)."""
        return backends.sync(result)
