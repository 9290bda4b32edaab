"""The backend layer: the one place in m4ml_xp that knows array backends exist.

The rest of the core is written once against the Array API standard and asks
this package, as ``from m4ml_xp import _xp`` and ``_xp.<name>``, for what the
standard cannot say: namespaces and dtypes (``_namespaces``), devices, the auto
choice and host reads (``_devices``, public face :mod:`m4ml_xp.backends`), loops,
compilation and autodiff (``_control``), Dask plumbing (``_dask``), staging host
chunks to a GPU (``_staging``) and the sparse fast paths (``_sparse``).
"""

from __future__ import annotations

from array_api_compat import array_namespace, device

from m4ml_xp._xp._control import (
    autodiff_batch_jacobian,
    autodiff_hessian,
    autodiff_jacobian,
    can_autodiff,
    compile_per_program,
    compile_scan,
    compile_step,
    fill_masked,
    fused,
    host_driven,
    repeat,
    replace_rows,
    while_any,
    while_loop,
)
from m4ml_xp._xp._dask import (
    deferred_check,
    eigh,
    evaluate,
    evaluate_tree,
    is_chunked,
    map_batch,
    map_block_pairs,
    materialise,
    one_chunk,
    svd,
)
from m4ml_xp._xp._devices import (
    check_interval,
    on_accelerator,
    to_host,
    to_numpy,
)
from m4ml_xp._xp._namespaces import (
    Array,
    Namespace,
    default_float,
    dtypes_of,
    float_dtype,
    full_precision,
    generator,
    gram,
    is_array,
    is_lazy,
    is_masked_array,
    is_narrow_float,
    is_traced,
    library_name,
    namespace_for,
    numpy_scalar_as_array,
    quiet_overflow,
    wide_index,
)
from m4ml_xp._xp._sparse import (
    EdgeOperator,
    segment_sum,
    wide_sum,
)
from m4ml_xp._xp._staging import to_device_chunks
