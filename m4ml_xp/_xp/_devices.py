"""Backend resolution, devices and the host: what the CLI, benchmarks and loops need.

Which backends import here and on which devices, the ``--backend auto`` choice
from measured speeds, blocking until work is done, and small host reads for
convergence tests.  Only the applications (through :mod:`m4ml_xp.backends`)
copy whole arrays to NumPy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from array_api_compat import (
    array_namespace,
    device,
    is_array_api_strict_namespace,
    is_cupy_array,
    is_cupy_namespace,
    is_dask_array,
    is_dask_namespace,
    is_jax_array,
    is_torch_array,
)

from m4ml_xp._xp._namespaces import Array, Namespace, has_dtype, is_traced

#: Backend names accepted by the CLI and benchmarks, with the module each needs.
BACKENDS: dict[str, str] = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "jax": "jax.numpy",
    "torch": "torch",
    "dask": "dask.array",
    "cupy": "cupy",
}


def resolve_backend(name: str, device_name: str | None = None) -> tuple[Namespace, Any]:
    """Import backend `name` (a key of :data:`BACKENDS`) and resolve a device.

    Parameters
    ----------
    name : str
        A key of :data:`BACKENDS` (``numpy``, ``array_api_strict``, ``jax``, ``torch``,
        ``dask``, ``cupy``).  JAX gets ``jax_enable_x64``: the CLI and benchmarks
        compare float64 results.
    device_name : str, optional
        ``cpu``, ``cuda``, ``cuda:1``, ``gpu`` …; default the backend's default device.

    Returns
    -------
    tuple
        The array-api-compat namespace and a device object usable as ``device=``.

    Raises
    ------
    ValueError
        For an unknown backend, or a device the backend does not have.
    ImportError
        When the backend's library is not installed.

    Examples
    --------
    >>> from m4ml_xp.backends import resolve_backend
    >>> xp, device = resolve_backend("numpy", "cpu")
    >>> xp.ones(3, device=device)
    array([1., 1., 1.])
    """
    if name not in BACKENDS:
        raise ValueError(f"`backend` must be one of {sorted(BACKENDS)}; got {name!r}")
    module = importlib.import_module(BACKENDS[name])
    if name == "jax":  # the CLI and benchmarks compare float64 results: enable JAX's x64
        import jax

        jax.config.update("jax_enable_x64", True)
    xp = array_namespace(module.empty(0))
    if device_name is None:
        return xp, device(xp.empty(0))
    try:
        dev = _device_object(name, module, device_name)
        xp.zeros(1, device=dev)  # fail here, with a clear message, if the device is absent
    except Exception as exc:
        msg = f"device {device_name!r} is not available to {name}: {type(exc).__name__}: {exc}"
        raise ValueError(msg) from None
    return xp, dev


def _device_object(name: str, module: Any, device_name: str) -> Any:
    """Backend device object for a name like ``cpu``, ``cuda``, ``cuda:1`` or ``gpu``."""
    platform, _, index_text = device_name.partition(":")
    index = int(index_text) if index_text else 0
    if name == "torch":
        return module.device(device_name)
    if name == "jax":
        import jax

        return jax.devices(platform)[index]
    if name == "cupy":
        return module.cuda.Device(index)
    if name == "array_api_strict":
        return module.Device(device_name)
    if device_name != "cpu":
        raise ValueError(f"only device 'cpu' exists for {name}")
    return device(module.empty(0))


def available_backends() -> dict[str, dict[str, Any]]:
    """Which backends import here, with version, devices and float64 support.

    Returns
    -------
    dict
        For each key of :data:`BACKENDS`: ``{"available": True, "version", "devices",
        "float64"}``, or ``{"available": False, "reason"}`` with the import error.

    Examples
    --------
    >>> from m4ml_xp.backends import available_backends
    >>> found = available_backends()
    >>> found["numpy"]["available"], found["numpy"]["devices"], found["numpy"]["float64"]
    (True, ['cpu'], True)
    """
    found: dict[str, dict[str, Any]] = {}
    for name in BACKENDS:
        try:
            xp, dev = resolve_backend(name)
        except Exception as exc:
            found[name] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
            continue
        module = importlib.import_module(BACKENDS[name].split(".")[0])
        devices: list[str] = [str(dev)]
        if name == "torch":
            devices += [f"cuda:{i}" for i in range(module.cuda.device_count())]
        elif name == "jax":
            devices = [str(d) for d in module.devices()]
        elif name == "cupy":
            devices = [f"cuda:{i}" for i in range(module.cuda.runtime.getDeviceCount())]
        found[name] = {
            "available": True,
            "version": getattr(module, "__version__", "?"),
            "devices": devices,
            "float64": has_dtype(xp, "float64", dev),
        }
    return found


#: The device name each GPU backend is resolved with when ``--backend auto`` picks it.
GPU_DEVICES: dict[str, str] = {"cupy": "cuda:0", "torch": "cuda", "jax": "gpu"}

#: ``--backend auto``, per job: the GPU backends fastest first.  Measured on one H200,
#: 2026-11-30 (CuPy 14.2, torch 2.11+cu130, JAX 0.11.2; ``shared/gpu/2026-11-30/check1.log``,
#: ``check2.log``, ``stream.log``).  `scripts/gpu_check.py` re-measures every row.
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    # PCA, 1M × 784 float32, k = 50, covariance_eigh: torch 45.5 ms, CuPy 70.0 ms (eigenvalue
    # error 5e-7 both); JAX 35.5 ms but 3.1e-4 error (TF32 matmuls) — last, for accuracy.
    "pca": ("torch", "cupy", "jax"),
    # PageRank, 10M nodes / 100M edges, float32: CuPy 0.84 ms/iter, torch 1.23, JAX 68.7
    # (float64: CuPy 1.25, torch 1.64, JAX 69.4).
    "pagerank": ("cupy", "torch", "jax"),
    # Batched Levenberg–Marquardt, 1M Gaussian fits: JAX 2.73M fits/s, CuPy 2.13M; torch
    # failed above ~10k fits (vendor batched eigh: cusolver error, then out of memory; since
    # replaced by Jacobi sweeps, torch at 1M unmeasured).  `fit` is one small fit, not
    # measured on a GPU: the batched order until the GPU check says otherwise.
    "fit": ("jax", "cupy", "torch"),
    # Streaming PCA from host chunks: CuPy 4.37 GB/s (pinned H2D 54 GB/s, host generation
    # 7.5 GB/s).  torch's 0.98 GB/s in stream.log ran on its default device, the CPU.
    "stream": ("cupy", "torch", "jax"),
    # MLP training (small matmuls, launch-bound): not measured on a GPU yet; torch's eager
    # dispatch first, JAX (one jitted step per batch), CuPy.  The GPU check's nn rows decide.
    "train": ("torch", "jax", "cupy"),
}


def gpu_backend_works(name: str) -> bool:
    """Whether backend `name` imports here and computes on its GPU device (:data:`GPU_DEVICES`)."""
    try:
        xp, dev = resolve_backend(name, GPU_DEVICES[name])
        sync(xp.ones(4, device=dev) @ xp.ones(4, device=dev))
    except Exception:  # not installed, no GPU, a broken driver: this backend does not work
        return False
    return True


def auto_backend(
    job: str,
    working: Iterable[str] | Callable[[str], bool] | None = None,
    *,
    order: Sequence[str] | None = None,
) -> tuple[str, str | None]:
    """Return ``(backend, device name)`` for ``--backend auto``: the fastest working GPU backend.

    Parameters
    ----------
    job : str
        A key of :data:`AUTO_ORDER` (``pca``, ``pagerank``, ``fit``, ``stream``, ``train``).
    working : iterable of str, callable or None
        The GPU backends known to work, or a predicate; default :func:`gpu_backend_works`,
        asked in order and only until one works (each probe imports a library).
    order : sequence of str, optional
        Preference order instead of the job's row of :data:`AUTO_ORDER`.

    Returns
    -------
    tuple
        The first backend of the order that works, with its :data:`GPU_DEVICES` name;
        ``("numpy", None)`` (the CPU) when none does.

    Examples
    --------
    >>> from m4ml_xp.backends import auto_backend
    >>> auto_backend("pca", ["cupy", "torch"])
    ('torch', 'cuda')
    >>> auto_backend("pagerank", [])
    ('numpy', None)
    """
    if job not in AUTO_ORDER:
        raise ValueError(f"`job` must be one of {sorted(AUTO_ORDER)}; got {job!r}")
    works = gpu_backend_works if working is None else working
    if not callable(works):
        works = frozenset(works).__contains__
    for name in AUTO_ORDER[job] if order is None else order:
        if works(name):
            return name, GPU_DEVICES[name]
    return "numpy", None


# --------------------------------------------------------------------------- evaluation
def sync(tree: Any) -> Any:
    """Block until every array in `tree` (arrays, tuples, lists) is computed.

    Used for timing: GPU and lazy backends return before the work is done.
    Dask arrays are computed, so the result is returned rather than synced in place.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp.backends import sync
    >>> sync((np.zeros(2), [np.ones(1)]))
    (array([0., 0.]), [array([1.])])
    """
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(sync(leaf) for leaf in tree))
    if isinstance(tree, list | tuple):
        return type(tree)(sync(leaf) for leaf in tree)
    if is_torch_array(tree):
        if tree.device.type == "cuda":
            import torch

            torch.cuda.synchronize(tree.device)
    elif is_cupy_array(tree):
        import cupy

        cupy.cuda.get_current_stream().synchronize()
    elif is_jax_array(tree):
        tree.block_until_ready()
    elif is_dask_array(tree):
        return tree.compute()
    return tree


def to_host(x: Array) -> list[Any]:
    """Return the values of a small array as a (nested) Python list, in one transfer.

    For convergence tests read on the host: one copy for the whole array rather
    than one synchronisation per element.
    """
    if is_traced(x):  # JAX's own error would name a line of the library, not the reason
        msg = (
            "this m4ml_xp function reads values on the host as it runs (a data-dependent loop, "
            "count or check), so it cannot run inside jax.jit, vmap or grad: call it outside "
            "them (the jit-compatible functions say so in their documentation)"
        )
        raise TypeError(msg)
    if is_dask_array(x):
        x = x.compute()
    return (x if hasattr(x, "tolist") else to_numpy(x)).tolist()


def to_numpy(x: Array) -> Any:
    """Return a NumPy copy of `x`, for printing and comparison *outside* the algorithms.

    The CLI and benchmarks report results with it; algorithms never call it.

    Examples
    --------
    >>> import array_api_strict as xps
    >>> from m4ml_xp.backends import to_numpy
    >>> to_numpy(xps.asarray([1.0, 2.0]))
    array([1., 2.])
    """
    import numpy as np

    if type(x) is np.ndarray:  # already on the host: no sync, no namespace lookup
        return x
    x = sync(x)
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    if is_cupy_array(x):
        return x.get()
    if is_array_api_strict_namespace(array_namespace(x)):
        import array_api_strict

        return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    return np.asarray(x)


def check_interval(xp: Namespace, dev: Any = None, *, exact: bool = False) -> int:
    """How many iterations to run between host-side convergence checks.

    Reading a device scalar on a GPU waits for all queued work, so GPU backends
    batch several iterations per check; so does Dask, where each read runs the
    scheduler, for a caller that keeps a block's iterates and returns the first
    that converged (`exact`: the results are then those of a check every step).
    CPU backends check every step.
    """
    batched = on_accelerator(xp, dev) or (exact and is_dask_namespace(xp))
    return 8 if batched else 1


def on_accelerator(xp: Namespace, dev: Any = None) -> bool:
    """Whether arrays of `xp` on device `dev` live on a GPU or TPU rather than the CPU."""
    text = str(dev).lower()
    return is_cupy_namespace(xp) or "cuda" in text or "gpu" in text or "tpu" in text
