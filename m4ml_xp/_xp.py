"""The one module that knows array backends exist.

Everything else in m4ml_xp is written once against the Python Array API
standard and asks this module for: the namespace of its inputs, dtype choices,
host synchronisation, and the few native fast paths (sparse mat-vec and
segment sums) that the standard cannot express efficiently.  Each fast path
has the array-api-extra shape "delegate where a native path exists, else an
agnostic fallback written with standard functions".
"""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_array,
    is_cupy_namespace,
    is_dask_array,
    is_dask_namespace,
    is_jax_array,
    is_jax_namespace,
    is_lazy_array,
    is_numpy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
    size,
)

__all__ = [
    "BACKENDS",
    "EdgeOperator",
    "array_namespace",
    "autodiff_batch_jacobian",
    "autodiff_hessian",
    "autodiff_jacobian",
    "available_backends",
    "can_autodiff",
    "check_interval",
    "compile_scan",
    "compile_step",
    "default_float",
    "deferred_check",
    "device",
    "eigh",
    "evaluate",
    "fill_masked",
    "float_dtype",
    "full_precision",
    "generator",
    "is_array",
    "is_array_api_strict_namespace",
    "is_dask_namespace",
    "is_jax_namespace",
    "is_lazy",
    "is_lazy_array",
    "is_masked_array",
    "is_narrow_float",
    "is_numpy_namespace",
    "is_torch_namespace",
    "is_traced",
    "library_name",
    "map_batch_chunks",
    "map_block_pairs",
    "namespace_for",
    "numpy_scalar_as_array",
    "one_chunk",
    "replace_rows",
    "resolve_backend",
    "segment_sum",
    "size",
    "standard_normal",
    "supports_float64",
    "sync",
    "to_device_chunks",
    "to_host",
    "to_numpy",
    "while_any",
    "while_loop",
]

Array = Any
Namespace = Any

#: Backend names accepted by the CLI and benchmarks, with the module each needs.
BACKENDS: dict[str, str] = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "jax": "jax.numpy",
    "torch": "torch",
    "dask": "dask.array",
    "cupy": "cupy",
}


# --------------------------------------------------------------------------- precision
_Function = TypeVar("_Function", bound=Callable[..., Any])


def full_precision(function: _Function) -> _Function:
    """Decorate `function` so that its matrix products run in full precision on every backend.

    JAX multiplies float32 matrices (``@``, ``matmul``, ``vecdot``, ``tensordot``)
    in TF32 on NVIDIA GPUs by default: about 1e-4 relative error where float32
    promises 1e-7.  The wrapper enters ``jax.default_matmul_precision("highest")``,
    which JAX reads when each operation is created, so it holds for eager
    operations and for everything traced inside `function` — its own ``jit``
    kernels, and the caller's ``jit`` when `function` is called inside one —
    whatever precision the caller set (user callbacks evaluated inside
    `function` run at it too).  PyTorch and CuPy keep TF32 off by default, so
    for them, and whenever JAX is not imported, the wrapper only calls `function`.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        jax = sys.modules.get("jax")  # no JAX array can exist unless JAX was imported
        if jax is None:
            return function(*args, **kwargs)
        with jax.default_matmul_precision("highest"):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- namespaces
def library_name(x: object) -> str:
    """Short name of the library an object belongs to, for error messages."""
    module = type(x).__module__.split(".")[0]
    return {"builtins": type(x).__name__}.get(module, module)


def namespace_for(xp: Namespace | None = None) -> Namespace:
    """Return the array-api-compat namespace for `xp` (NumPy when None)."""
    if xp is None:
        import numpy as np

        xp = np
    return array_namespace(xp.empty(0))


def resolve_backend(name: str, device_name: str | None = None) -> tuple[Namespace, Any]:
    """Import backend `name` (a key of :data:`BACKENDS`) and resolve a device.

    Returns the compat namespace and a device object usable as ``device=``.
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
        import torch

        return torch.device(device_name)
    if name == "jax":
        import jax

        return jax.devices(platform)[index]
    if name == "cupy":
        import cupy

        return cupy.cuda.Device(index)
    if name == "array_api_strict":
        return module.Device(device_name)
    if device_name != "cpu":
        raise ValueError(f"only device 'cpu' exists for {name}")
    return device(module.empty(0))


def available_backends() -> dict[str, dict[str, Any]]:
    """Which backends import here, with version, devices and float64 support."""
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
            import torch

            devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        elif name == "jax":
            import jax

            devices = [str(d) for d in jax.devices()]
        elif name == "cupy":
            import cupy

            devices = [f"cuda:{i}" for i in range(cupy.cuda.runtime.getDeviceCount())]
        found[name] = {
            "available": True,
            "version": getattr(module, "__version__", "?"),
            "devices": devices,
            "float64": supports_float64(xp, dev),
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
    >>> from m4ml_xp._xp import auto_backend
    >>> auto_backend("pca", ["cupy", "torch"])
    ('torch', 'cuda')
    >>> auto_backend("pagerank", [])
    ('numpy', None)
    """
    if job not in AUTO_ORDER:
        raise ValueError(f"`job` must be one of {sorted(AUTO_ORDER)}; got {job!r}")
    if working is None:
        works = gpu_backend_works
    elif callable(working):
        works = working
    else:
        known = frozenset(working)
        works = known.__contains__
    for name in AUTO_ORDER[job] if order is None else order:
        if works(name):
            return name, GPU_DEVICES[name]
    return "numpy", None


def is_array(x: object) -> bool:
    """Whether `x` is an array of a library the Array API standard covers."""
    return is_array_api_obj(x)


def is_masked_array(x: object) -> bool:
    """Whether `x` is a NumPy masked array (``numpy.ma.MaskedArray``).

    It passes for an array (it subclasses ``ndarray``), but standard functions
    ignore its mask or fail inside ``numpy.ma``.  NumPy is not imported for this.
    """
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ma.MaskedArray)


def is_narrow_float(xp: Namespace, dtype: Any) -> bool:
    """Whether `dtype` is a floating dtype narrower than float32 (float16, bfloat16)."""
    return bool(xp.isdtype(dtype, "real floating")) and xp.finfo(dtype).bits < 32


def numpy_scalar_as_array(value: Any, xp: Namespace) -> Any:
    """NumPy's 0-d results (``np.float64`` scalars) as 0-d arrays; anything else unchanged.

    NumPy arithmetic on 0-d arrays returns scalars, so a user function written
    with `xp` returns one for 0-d input; other libraries return arrays.
    """
    if is_numpy_namespace(xp):
        import numpy as np

        if isinstance(value, np.generic):
            return np.asarray(value)
    return value


def is_traced(x: Array) -> bool:
    """Whether `x` is a JAX tracer inside ``jit``: its values cannot be read at all."""
    if is_jax_array(x):
        import jax

        return isinstance(x, jax.core.Tracer)
    return False


def is_lazy(x: Array) -> bool:
    """Whether reading values of `x` would force a computation or is impossible.

    True for Dask arrays and JAX tracers; concrete JAX arrays count as eager
    (array-api-compat's ``is_lazy_array`` treats every JAX array as lazy, which
    would skip input checks outside ``jit`` too).
    """
    return is_traced(x) or (not is_jax_array(x) and is_lazy_array(x))


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


# --------------------------------------------------------------------------- dtypes
def supports_float64(xp: Namespace, dev: Any = None) -> bool:
    """Whether `xp` can hold float64 arrays on device `dev`."""
    try:
        dtypes = xp.__array_namespace_info__().dtypes(device=dev, kind="real floating")
    except (AttributeError, TypeError, ValueError):
        return True
    return "float64" in dtypes


def default_float(xp: Namespace, dev: Any = None) -> Any:
    """Return the default real floating dtype of `xp` on device `dev`."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]
    except (AttributeError, TypeError, ValueError):
        return xp.float64


def float_dtype(xp: Namespace, dtype: Any, dev: Any = None) -> Any:
    """Return the floating dtype an algorithm computes in for inputs of `dtype`.

    Real floating dtypes are kept (float32 is never silently upcast); integers
    and booleans become the device's default float.
    """
    if xp.isdtype(dtype, "real floating"):
        return dtype
    return default_float(xp, dev)


def standard_normal(
    seed: int | None,
    shape: tuple[int, ...],
    *,
    xp: Namespace,
    device: Any = None,
    dtype: Any = None,
) -> Array:
    """Return standard normal draws from NumPy's ``Generator(seed)``, moved to `xp` on `device`.

    The same seed gives the same numbers on every backend.
    """
    import numpy as np

    values = np.random.default_rng(seed).standard_normal(shape)
    return xp.asarray(values, dtype=dtype or default_float(xp, device), device=device)


def generator(seed: int | None) -> Any:
    """NumPy's ``Generator(seed)``: the one source of random numbers, on the host.

    Algorithms draw from it and move the draws with ``xp.asarray(..., device=)``,
    so a seed gives the same numbers on every backend.
    """
    import numpy as np

    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- evaluation
def sync(tree: Any) -> Any:
    """Block until every array in `tree` (arrays, tuples, lists) is computed.

    Used for timing: GPU and lazy backends return before the work is done.
    Dask arrays are computed, so the result is returned rather than synced in place.
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


def evaluate(*arrays: Array) -> tuple[Array, ...]:
    """Materialise lazy arrays between iterations of a host-driven loop.

    Dask graphs would otherwise grow with every iteration; other libraries are
    already eager and are returned unchanged.
    """
    if arrays and is_dask_array(arrays[0]):
        import dask

        return dask.persist(*arrays)
    return arrays


def one_chunk(x: Array) -> Array:
    """Return a small Dask array as a single chunk (its linear algebra wants whole matrices).

    Matrices built by stacking scalars come out in 1×1 chunks, which Dask's
    ``svd`` and ``solve`` reject; other arrays are returned unchanged.
    """
    if is_dask_array(x):
        return x.rechunk(-1)
    return x


def to_host(x: Array) -> list[Any]:
    """Return the values of a small array as a (nested) Python list, in one transfer.

    For convergence tests read on the host: one copy for the whole array rather
    than one synchronisation per element.
    """
    if is_dask_array(x):
        x = x.compute()
    if hasattr(x, "tolist"):
        return x.tolist()
    return to_numpy(x).tolist()


def to_numpy(x: Array) -> Any:
    """Return a NumPy copy of `x`, for printing and comparison *outside* the algorithms.

    The CLI and benchmarks report results with it; algorithms never call it.
    """
    import numpy as np

    x = sync(x)
    if is_torch_array(x):
        return x.detach().cpu().numpy()
    if is_cupy_array(x):
        return x.get()
    if is_array_api_strict_namespace(array_namespace(x)):
        import array_api_strict

        return np.asarray(x.to_device(array_api_strict.Device("CPU_DEVICE")))
    return np.asarray(x)


def check_interval(xp: Namespace, dev: Any = None) -> int:
    """How many iterations to run between host-side convergence checks.

    Reading a device scalar on a GPU waits for all queued work, so GPU
    backends batch several iterations per check; CPU backends check every step.
    """
    text = str(dev).lower()
    if is_cupy_namespace(xp) or "cuda" in text or "gpu" in text or "tpu" in text:
        return 8
    return 1


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
    if is_jax_array(x):
        import jax

        return jax.jacfwd(f)(x)
    if is_torch_array(x):
        import torch

        with torch.enable_grad():
            return torch.autograd.functional.jacobian(f, x).detach()
    raise NotImplementedError(f"{library_name(x)} arrays have no automatic differentiation")


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
    if is_jax_array(x):
        import jax

        return jax.hessian(f)(x)
    if is_torch_array(x):
        import torch

        with torch.enable_grad():
            return torch.autograd.functional.hessian(f, x).detach()
    raise NotImplementedError(f"{library_name(x)} arrays have no automatic differentiation")


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
        import jax

        return jax.jit(fn, static_argnums=static_argnums)
    return fn


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

    return jax.jit(loop)


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
    while bool(to_host(condition(state))):
        state = body(state)
        if any(is_dask_array(leaf) for leaf in state):
            import dask

            state = (
                type(state)(*dask.persist(*state))
                if hasattr(state, "_fields")
                else tuple(dask.persist(*state))
            )
    return state


def replace_rows(
    mask: Array,
    function: Callable[..., tuple[Array, ...]],
    arrays: Sequence[Array],
    defaults: Sequence[Array],
    *,
    xp: Namespace,
) -> tuple[Array, ...]:
    """Return ``where(mask, function(*arrays), defaults)`` row by row.

    `function` is computed only on the rows where it is needed.  All arrays have the batch axis first and `mask` is ``(B,)``.  Eager backends
    evaluate `function` on the masked rows alone (gathered by index); JAX, whose
    shapes are static under ``jit``, evaluates it on every row inside a
    ``lax.cond`` taken only when some row is masked.
    """
    if is_jax_namespace(xp):
        import jax

        def chosen() -> tuple[Array, ...]:
            return tuple(
                xp.where(xp.reshape(mask, (-1,) + (1,) * (d.ndim - 1)), out, d)
                for out, d in zip(function(*arrays), defaults, strict=True)
            )

        return jax.lax.cond(xp.any(mask), chosen, lambda: tuple(defaults))
    flags = to_numpy(mask)
    if not flags.any():
        return tuple(defaults)
    if flags.all():
        return tuple(function(*arrays))
    rows = xp.asarray(flags.nonzero()[0], device=device(mask))
    outs = function(*(xp.take(a, rows, axis=0) for a in arrays))
    return tuple(fill_masked(mask, out, d, xp=xp) for out, d in zip(outs, defaults, strict=True))


def fill_masked(mask: Array, values: Array, defaults: Array, *, xp: Namespace) -> Array:
    """Return `defaults` with the rows where `mask` (``(B,)``) is true replaced.

    They are replaced, in order, by the rows of `values` (one per true entry): a scatter
    without in-place writes.
    """
    position = xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1
    position = xp.where(position < 0, xp.zeros_like(position), position)
    spread = xp.reshape(mask, (-1,) + (1,) * (defaults.ndim - 1))
    return xp.where(spread, xp.take(values, position, axis=0), defaults)


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


def to_device_chunks(chunks: Iterable[Any], xp: Namespace, dev: Any = None) -> Iterator[Array]:
    """Return the chunks as arrays of `xp` on `dev`, in order.

    Host (NumPy / memmap) chunks bound for a CUDA device go through two reused
    page-locked staging buffers: each chunk is copied into one while the device
    may still be reading the other, and the host-to-device copy from pinned memory
    runs asynchronously — the next chunk is read or generated on the host while
    the device copies and computes.  Other chunks go through ``xp.asarray``.
    """
    # torch without `dev`: its default device, which ``torch.set_default_device`` may make a GPU
    torch_dev = None
    if is_torch_namespace(xp):
        torch_dev = dev if dev is not None else device(xp.empty(0))
    if is_cupy_namespace(xp):
        stage, slots = _cupy_pinned_stage(dev)
    elif torch_dev is not None and getattr(torch_dev, "type", str(torch_dev)) == "cuda":
        stage, slots = _torch_pinned_stage(torch_dev)
    else:
        stage, slots = None, None
    try:
        for chunk in chunks:
            if stage is None or (is_array_api_obj(chunk) and not is_numpy_array(chunk)):
                yield xp.asarray(chunk, device=dev) if dev is not None else xp.asarray(chunk)
            else:
                yield stage(chunk)
    finally:
        if slots is not None:  # the buffers outlive no copy still reading them
            slots.drain()


class _PinnedSlots:
    """Two page-locked host buffers used in turn.

    A buffer is refilled only after the device copy out of it has finished (the event left
    in ``pending``).
    """

    def __init__(self, allocate: Callable[[int, Any], Any], fill: Callable[[Any, Any], Any]):
        self.allocate, self.fill = allocate, fill
        self.buffers: list[tuple[Any, Any] | None] = [None, None]  # (NumPy dtype, buffer)
        self.pending: list[Any] = [None, None]
        self.turn = 0

    def take(self, host: Any) -> tuple[int, Any]:
        """Return the next slot and a pinned view shaped like the NumPy array `host`, filled with it."""
        slot, self.turn = self.turn, 1 - self.turn
        if self.pending[slot] is not None:
            self.pending[slot].synchronize()
        held = self.buffers[slot]
        if held is None or held[0] != host.dtype or held[1].shape[0] < host.size:
            held = self.buffers[slot] = (host.dtype, self.allocate(host.size, host.dtype))
        view = held[1][: host.size].reshape(host.shape)
        self.fill(view, host)
        return slot, view

    def drain(self) -> None:
        """Wait for every copy still reading a buffer."""
        for event in self.pending:
            if event is not None:
                event.synchronize()


def _cupy_pinned_stage(dev: Any) -> tuple[Callable[[Any], Array], _PinnedSlots]:
    import contextlib

    import cupy
    import cupyx
    import numpy as np

    slots = _PinnedSlots(
        lambda n, dtype: cupyx.empty_pinned((n,), dtype=dtype),
        lambda view, host: np.copyto(view, host),
    )

    def stage(chunk: Any) -> Array:
        slot, view = slots.take(np.asarray(chunk))
        with dev if dev is not None else contextlib.nullcontext():
            moved = cupy.asarray(view, blocking=False)  # asynchronous from pinned memory
            done = cupy.cuda.Event()
            done.record()
        slots.pending[slot] = done
        return moved

    return stage, slots


def _torch_pinned_stage(dev: Any) -> tuple[Callable[[Any], Array], _PinnedSlots]:
    import numpy as np
    import torch

    def allocate(n: int, dtype: Any) -> Any:
        # page-locked from the start: ``from_numpy(np.empty(n)).pin_memory()`` also wrote n
        # pageable bytes and copied them over
        torch_dtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype).newbyteorder("="))).dtype
        # device="cpu": under ``torch.set_default_device("cuda")`` empty() would be on the GPU
        return torch.empty((n,), dtype=torch_dtype, device="cpu", pin_memory=True)

    # The fill is CuPy's: NumPy copies into the pinned buffer's NumPy view.  ``torch.from_numpy``
    # of a read-only chunk (a memmap opened "r") warns, an error where warnings are errors.
    slots = _PinnedSlots(allocate, lambda view, host: np.copyto(view.numpy(), host))

    def stage(chunk: Any) -> Array:
        slot, view = slots.take(np.asarray(chunk))
        moved = view.to(dev, non_blocking=True)  # asynchronous from pinned memory
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(dev))
        slots.pending[slot] = done
        return moved

    return stage, slots


def map_block_pairs(function: Callable[[Array, Array], Array], X: Array, Y: Array) -> Array:
    """``(N, M)`` from Dask row sets ``X (N, D)`` and ``Y (M, D)``.

    Block ``(i, j)`` is ``function(X_i, Y_j)`` on the chunks' own arrays, the feature axis
    kept whole.
    """
    import dask.array as da

    X, Y = X.rechunk({1: -1}), Y.rechunk({1: -1})
    return da.blockwise(
        function, "ij", X, "ik", Y, "jk", concatenate=True, dtype=X.dtype, meta=X._meta
    )


def map_batch_chunks(
    function: Callable[..., tuple[Array, ...]],
    arrays: Sequence[Array],
    outputs: Sequence[tuple[tuple[int, ...], Any]],
) -> tuple[Array, ...]:
    """Apply `function` to each chunk of the leading (batch) axis of Dask arrays.

    Every array has the batch axis first; the others are rechunked to the first
    array's batch chunks with their trailing axes whole, so chunk ``k`` of each
    holds the same rows.  ``function(*blocks)`` receives the chunks as the
    chunk library's arrays (NumPy or CuPy) and returns one array per entry of
    `outputs` — ``(trailing_shape, dtype)`` — with the chunk's rows first.  The
    chunks are independent tasks, so a ``dask.distributed`` cluster runs them
    on its workers.
    """
    import dask.array as da

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
    parts = [s for _, s in finished]
    return _take_rows(_concat_rows(parts, xp=xp), order, xp=xp)


def _first_leaf(tree: Any) -> Array:
    return _first_leaf(tree[0]) if isinstance(tree, tuple) else tree


def _take_rows(tree: Any, rows: Any, *, xp: Namespace) -> Any:
    """Return the `rows` (a host boolean mask or integer positions) of every leaf of `tree`."""
    if isinstance(tree, tuple):
        leaves = [_take_rows(leaf, rows, xp=xp) for leaf in tree]
        return type(tree)(*leaves) if hasattr(tree, "_fields") else tuple(leaves)
    import numpy as np

    index = rows.nonzero()[0] if rows.dtype == bool else rows
    return xp.take(tree, xp.asarray(np.asarray(index, dtype=np.int64), device=device(tree)), axis=0)


def _concat_rows(parts: list[Any], *, xp: Namespace) -> Any:
    first = parts[0]
    if isinstance(first, tuple):
        leaves = [_concat_rows([p[i] for p in parts], xp=xp) for i in range(len(first))]
        return type(first)(*leaves) if hasattr(first, "_fields") else tuple(leaves)
    return xp.concat(parts, axis=0)


# --------------------------------------------------------------------------- segment sums
def wide_sum(x: Array, *, xp: Namespace) -> Array:
    """``sum(x)`` accumulated in float64 where the device has it (a 0-d float64 array then).

    A reduction reads `x` once in its own dtype: the wider accumulator costs no
    memory traffic, and a float32 sum of millions of terms keeps float64 accuracy.
    """
    if x.dtype != xp.float64 and supports_float64(xp, device(x)):
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
        self.accumulate = xp.float64 if supports_float64(xp, dev) else None

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
    :meth:`matvec`: SciPy/CuPy CSR, torch sparse CSR, a jitted JAX segment sum
    over sorted rows, chunked Dask reductions, or sorted segment sums in the
    standard.  For the CSR and JAX paths the edges are sorted once by row; rows
    longer than a chunk become several virtual rows, each summed in the working
    precision, whose partial sums are added in float64 where the device has it.
    """

    def __init__(self, rows: Array, cols: Array, values: Array, n: int, *, xp: Namespace):
        self.n = n
        self.xp = xp
        self._matvec: Callable[[Array], Array]
        n_edges = rows.shape[0]
        if is_dask_namespace(xp):
            self._matvec = lambda x: _dask_edge_sum(
                lambda c, v, xs: v * xs[c], [cols, values], rows, n, x.dtype, whole=[x]
            )
        elif n_edges == 0:  # no links: cuSPARSE refuses some empty matrices, and none is needed
            self._matvec = lambda x: xp.zeros_like(x)
        elif not (
            is_numpy_namespace(xp)
            or is_cupy_namespace(xp)
            or is_torch_namespace(xp)
            or is_jax_namespace(xp)
        ):
            segments = _SortedSegments(rows, n, xp=xp)
            cols_sorted = xp.take(cols, segments.order)
            values_sorted = xp.take(values, segments.order)
            self._matvec = lambda x: segments.sum(
                values_sorted * xp.take(x, cols_sorted), presorted=True
            )
        elif is_numpy_namespace(xp) and not _has_scipy_sparse():
            import numpy as np  # SciPy is optional: bincount accumulates in float64 anyway

            self._matvec = lambda x: segment_sum(values * x[cols], rows, n, xp=np)
        elif is_jax_namespace(xp):
            self._matvec = _jax_edge_matvec(_SplitRows(rows, cols, values, n, xp=xp))
        else:
            split = _SplitRows(rows, cols, values, n, xp=xp)
            kernel = _native_csr_matvec(split, xp=xp)
            self._matvec = lambda x: split.combine(kernel(x))

    def matvec(self, x: Array) -> Array:
        """Apply the operator to the n-vector `x`."""
        return self._matvec(x)


def _has_scipy_sparse() -> bool:
    try:
        import scipy.sparse  # noqa: F401
    except ImportError:
        return False
    return True


def _has_int64(xp: Namespace, dev: Any) -> bool:
    try:
        dtypes = xp.__array_namespace_info__().dtypes(device=dev, kind="signed integer")
    except (AttributeError, TypeError, ValueError):
        return True
    return "int64" in dtypes


def _index_dtype(xp: Namespace, dev: Any, *sizes: int) -> Any:
    """int32 where every index and count fits (cuSPARSE's and SciPy's preference), else int64."""
    if max(sizes) < 2**31 - 1 or not _has_int64(xp, dev):
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
        wide = xp.int64 if _has_int64(xp, dev) else xp.int32
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
                    xp.sum(xp.astype(degrees > chunk, wide)),
                ]
            )
            n_extra, n_moved, n_heavy = (int(c) for c in to_host(counts))
            split = functools.partial(
                _split_long_rows,
                n=n,
                chunk=chunk,
                n_extra=n_extra,
                n_moved=n_moved,
                n_heavy=n_heavy,
            )
            if is_jax_namespace(xp):  # one compiled call: eager JAX compiles every op
                import jax

                split = jax.jit(split)
            rows, cols, values, self.heavy, self.owners = split(rows, cols, values, starts, degrees)
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
    wide = xp.int64 if _has_int64(xp, dev) else xp.int32
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
        if _has_int64(jnp, None):
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

    return jax.jit(sort)


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
    if is_numpy_namespace(xp):
        import scipy.sparse as sparse

        csr = sparse.csr_array((split.values, split.cols, split.indptr()), shape=shape)
        return csr.__matmul__
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
        wide = jnp.float64 if _has_int64(jnp, None) else y.dtype  # x64 gives both
        head = y[:n]
        chunks = jax.ops.segment_sum(
            y[n:].astype(wide), owners, num_segments=heavy.shape[0], indices_are_sorted=True
        )
        return head.at[heavy].set((head[heavy].astype(wide) + chunks).astype(y.dtype))

    return jax.jit(kernel)
