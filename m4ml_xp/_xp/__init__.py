"""The backend layer: the one place in m4ml_xp that knows array backends exist.

Everything else in m4ml_xp is written once against the Python Array API
standard and asks this package for: the namespace of its inputs, dtype choices,
host synchronisation, and the few native fast paths (sparse mat-vec and
segment sums) that the standard cannot express efficiently.  Each fast path
has the array-api-extra shape "delegate where a native path exists, else an
agnostic fallback written with standard functions".

The package is split by concern; every name is re-exported here, so algorithm
modules write ``from m4ml_xp import _xp`` and ``_xp.<name>``:

* :mod:`~m4ml_xp._xp._namespaces` — namespaces, dtypes, precision, random numbers;
* :mod:`~m4ml_xp._xp._devices` — backend resolution, devices, the auto choice,
  synchronisation and host reads (public face: :mod:`m4ml_xp.backends`);
* :mod:`~m4ml_xp._xp._control` — loops, compilation and autodiff (JAX, PyTorch);
* :mod:`~m4ml_xp._xp._dask` — Dask plumbing (deferred checks, persisting, chunk maps);
* :mod:`~m4ml_xp._xp._staging` — host chunks to a GPU through pinned buffers;
* :mod:`~m4ml_xp._xp._sparse` — segment sums and the sparse mat-vec.
"""

from __future__ import annotations

from typing import Any

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

from m4ml_xp._xp._control import (
    autodiff_batch_jacobian,
    autodiff_hessian,
    autodiff_jacobian,
    can_autodiff,
    compile_scan,
    compile_step,
    fill_masked,
    replace_rows,
    while_any,
    while_loop,
)
from m4ml_xp._xp._dask import (
    deferred_check,
    eigh,
    evaluate,
    is_chunked,
    map_batch,
    map_batch_chunks,
    map_block_pairs,
    materialise,
    one_chunk,
    svd,
)
from m4ml_xp._xp._devices import (
    AUTO_ORDER,
    BACKENDS,
    GPU_DEVICES,
    auto_backend,
    available_backends,
    check_interval,
    gpu_backend_works,
    resolve_backend,
    sync,
    to_host,
    to_numpy,
)
from m4ml_xp._xp._namespaces import (
    default_float,
    float_dtype,
    full_precision,
    generator,
    is_array,
    is_lazy,
    is_masked_array,
    is_narrow_float,
    is_traced,
    library_name,
    namespace_for,
    numpy_scalar_as_array,
    standard_normal,
    supports_float64,
)
from m4ml_xp._xp._sparse import (
    EdgeOperator,
    segment_sum,
    wide_sum,
)
from m4ml_xp._xp._sparse import (
    _native_csr_matvec as _native_csr_matvec,
)
from m4ml_xp._xp._sparse import (
    _SplitRows as _SplitRows,
)
from m4ml_xp._xp._sparse import (
    _torch_csr_matvec as _torch_csr_matvec,
)
from m4ml_xp._xp._staging import _PinnedSlots as _PinnedSlots
from m4ml_xp._xp._staging import to_device_chunks

Array = Any
Namespace = Any

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "GPU_DEVICES",
    "EdgeOperator",
    "array_namespace",
    "auto_backend",
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
    "gpu_backend_works",
    "is_array",
    "is_array_api_obj",
    "is_array_api_strict_namespace",
    "is_chunked",
    "is_cupy_array",
    "is_cupy_namespace",
    "is_dask_array",
    "is_dask_namespace",
    "is_jax_array",
    "is_jax_namespace",
    "is_lazy",
    "is_lazy_array",
    "is_masked_array",
    "is_narrow_float",
    "is_numpy_array",
    "is_numpy_namespace",
    "is_torch_array",
    "is_torch_namespace",
    "is_traced",
    "library_name",
    "map_batch",
    "map_batch_chunks",
    "map_block_pairs",
    "materialise",
    "namespace_for",
    "numpy_scalar_as_array",
    "one_chunk",
    "replace_rows",
    "resolve_backend",
    "segment_sum",
    "size",
    "standard_normal",
    "supports_float64",
    "svd",
    "sync",
    "to_device_chunks",
    "to_host",
    "to_numpy",
    "while_any",
    "while_loop",
    "wide_sum",
]
