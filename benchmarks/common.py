"""The asv base class: the implementation is the first benchmark parameter.

Each benchmark puts m4ml_xp on every backend found here (``m4ml_xp[numpy]``,
``m4ml_xp[torch:cpu]``, …; the GPU ones only where a GPU works) and the
reference tools for that job (``scikit-learn``, ``networkx``, ``scipy`` …) in
one parameter, so the dashboard draws them on the same chart.  The list is
built at import time from what is installed; nothing that is missing appears.

Sizes: the full sizes by default, tiny ones with ``M4ML_XP_BENCH_QUICK=1`` (the
quick dashboard, minutes on two cores), the GPU sizes with
``M4ML_XP_BENCH_LARGE=1``.  ``M4ML_XP_BENCH_IMPLEMENTATIONS`` (labels,
comma-separated) keeps only those implementations.

Timed calls synchronise (GPU queues, JAX dispatch, Dask graphs) through
:func:`m4ml_xp.backends.sync`, and warm-up (JIT compilation) is paid in ``setup``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # older asv
    SkipNotImplemented = NotImplementedError

from m4ml_xp import backends
from m4ml_xp.cli.harness.common import mnist_or_synthetic

# Imported once in asv's fork server (``--launch-method=forkserver``) rather than in each
# benchmark's process; importing starts no device and no thread pool, so forking stays safe.
for _module in ("torch", "jax", "jax.numpy", "dask.array", "scipy.sparse", "sklearn.decomposition"):
    if importlib.util.find_spec(_module.partition(".")[0]) is not None:
        importlib.import_module(_module)

LARGE = os.environ.get("M4ML_XP_BENCH_LARGE") == "1"
QUICK = os.environ.get("M4ML_XP_BENCH_QUICK") == "1"

#: m4ml_xp's implementations: asv parameter value -> (backend name, device name)
OURS: dict[str, tuple[str, str | None]] = {
    "m4ml_xp[numpy]": ("numpy", None),
    "m4ml_xp[array-api-strict]": ("array_api_strict", None),
    "m4ml_xp[jax:cpu]": ("jax", "cpu"),
    "m4ml_xp[torch:cpu]": ("torch", "cpu"),
    "m4ml_xp[dask]": ("dask", None),
    "m4ml_xp[cupy]": ("cupy", "cuda:0"),
    "m4ml_xp[torch:cuda]": ("torch", "cuda"),
    "m4ml_xp[jax:gpu]": ("jax", "gpu"),
}
GPU_LABELS = ("m4ml_xp[cupy]", "m4ml_xp[torch:cuda]", "m4ml_xp[jax:gpu]")

#: reference tool label -> the module it needs
REFERENCE_MODULES: dict[str, str] = {
    "scikit-learn": "sklearn",
    "networkx": "networkx",
    "scipy": "scipy",
    "scipy.ndimage": "scipy",
    "scipy eigsh": "scipy",
    "scipy eigs": "scipy",
    "numpy.linalg.qr": "numpy",
    "scipy least_squares loop": "scipy",
    "scipy least_squares": "scipy",
    "torch autograd": "torch",
    "jax lax.scan": "jax",
}

#: implementations whose first call costs what the others do (no JIT, no device, no lazy
#: imports): the quick run (``M4ML_XP_BENCH_QUICK=1``) times their first call
NOTHING_TO_WARM_UP = {
    "m4ml_xp[numpy]",
    "m4ml_xp[array-api-strict]",
    "m4ml_xp[dask]",
    "numpy.linalg.qr",
    "scipy.ndimage",
    "scipy eigsh",
    "scipy eigs",
    "scipy",
    "networkx",
    "scipy least_squares loop",
    "scipy least_squares",
}

_SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

_GPU_PROBE = """
import json, sys
from m4ml_xp import backends
working = []
for label, (name, device) in json.loads(sys.argv[1]).items():
    try:
        xp, dev = backends.resolve_backend(name, device)
        backends.sync(xp.ones(4, device=dev) @ xp.ones(4, device=dev))
    except Exception:
        continue
    working.append(label)
print(json.dumps(working))
"""


def _installed(module: str) -> bool:
    # the top-level package only: find_spec of "a.b" imports "a"
    return importlib.util.find_spec(module.partition(".")[0]) is not None


def _probe_cache() -> Path:
    """A file shared by the processes of one asv run: its discovery and benchmark processes
    are children of the same asv process (the parent's id and start time name it)."""
    parent = os.getppid()
    try:
        started = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = "0"
    key = f"{sys.executable}|{parent}|{started}".encode()
    return Path(tempfile.gettempdir()) / f"m4ml_xp_bench_gpus_{hashlib.sha1(key).hexdigest()}.json"


@functools.cache
def _working_gpu_labels() -> tuple[str, ...]:
    """The GPU implementations that compute here (none without an NVIDIA driver).

    Probed in a child process, once per asv run: CUDA (and JAX's backends) must not
    start in asv's fork server, and the parameter lists must agree between processes.
    """
    if shutil.which("nvidia-smi") is None and not Path("/dev/nvidia0").exists():
        return ()
    candidates = {
        label: OURS[label] for label in GPU_LABELS if _installed(backends.BACKENDS[OURS[label][0]])
    }
    if not candidates:
        return ()
    cache = _probe_cache()
    try:
        return tuple(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _GPU_PROBE, json.dumps(candidates)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        working = json.loads(probe.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        working = []
    cache.write_text(json.dumps(working))
    return tuple(working)


def _selected(label: str) -> bool:
    wanted = os.environ.get("M4ML_XP_BENCH_IMPLEMENTATIONS")
    return not wanted or label in {part.strip() for part in wanted.split(",")}


def our_implementations() -> list[str]:
    """The ``m4ml_xp[...]`` labels available here: installed CPU backends, working GPUs."""
    gpus = _working_gpu_labels()
    return [
        label
        for label, (name, _device) in OURS.items()
        if _selected(label)
        and (label in gpus if label in GPU_LABELS else _installed(backends.BACKENDS[name]))
    ]


def implementations(*references: str) -> list[str]:
    """The parameter values of one benchmark: ours, then its `references` that are installed."""
    unknown = [name for name in references if name not in REFERENCE_MODULES]
    if unknown:
        raise ValueError(f"`references` must be keys of REFERENCE_MODULES; got {unknown}")
    tools = [name for name in references if _selected(name) and _installed(REFERENCE_MODULES[name])]
    return [*our_implementations(), *tools]


def sizes(full: list[Any], quick: list[Any], large: list[Any] | None = None) -> list[Any]:
    """A size parameter: `quick` under ``M4ML_XP_BENCH_QUICK=1``, `full` plus `large` if asked."""
    if QUICK:
        return quick
    return full + (large or []) if LARGE else full


def mnist_data(limit: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """MNIST t10k images and labels from ``M4ML_XP_DATA`` (or ../shared/data/mnist beside
    the repository), else random data of the same shape."""
    location = os.environ.get("M4ML_XP_DATA") or (
        str(_SHARED_MNIST) if _SHARED_MNIST.is_dir() else None
    )
    return mnist_or_synthetic(location, limit=limit)[:2]


class Benchmark:
    """Base class: ``params[0]`` is the implementation; subclasses add their own parameters.

    A subclass writes ``prepare(implementation, *args)``, which builds the inputs and
    returns the zero-argument call to time; ``setup`` runs it once (warm-up, JIT) and
    ``self.run()`` times it, synchronised (the quick run skips the warm-up of
    :data:`NOTHING_TO_WARM_UP`).  For ``m4ml_xp[...]`` implementations
    ``self.xp`` and ``self.device`` are the backend's; a reference tool gets NumPy.
    """

    param_names: list[str] = ["implementation"]
    timeout = 600

    def setup(self, implementation: str, *args: Any) -> None:
        self.ours = implementation in OURS
        if self.ours:
            name, device = OURS[implementation]
            try:
                self.xp, self.device = backends.resolve_backend(name, device)
            except Exception as exc:
                raise SkipNotImplemented(f"{implementation} is not available: {exc}") from None
        else:
            self.xp, self.device = backends.resolve_backend("numpy")
        self.call = self.prepare(implementation, *args)
        # JIT compilation, lazy imports and GPU start-up happen here, not in the timing; the
        # quick run warms up only the implementations that have them
        if not (QUICK and implementation in NOTHING_TO_WARM_UP):
            self.run()

    def prepare(self, implementation: str, *args: Any) -> Callable[[], Any]:
        raise NotImplementedError

    def run(self) -> Any:
        """The timed work, waited for."""
        return backends.sync(self.call())

    def asarray(self, a: np.ndarray, dtype: Any = None) -> Any:
        """Move benchmark data (made with NumPy) to the backend under test."""
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    @staticmethod
    def not_applicable(implementation: str, why: str) -> SkipNotImplemented:
        return SkipNotImplemented(f"{implementation}: {why}")
