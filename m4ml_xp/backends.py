"""Backends and devices for applications: the CLI, benchmarks, examples and scripts.

The algorithms take their namespace and device from their inputs; a program
that makes those inputs chooses a backend first.  This module is the public
face of the backend layer (:mod:`m4ml_xp._xp`) for that: resolve a backend name
and device to a namespace and device object, list what is available here, the
``--backend auto`` choice (the fastest working GPU backend for a job, from
measured speeds), block until work is done, and copy results to NumPy for
printing and plotting.

Examples
--------
>>> import m4ml_xp as mx
>>> from m4ml_xp import backends
>>> xp, device = backends.resolve_backend("numpy")
>>> X = xp.asarray([[2.0, 0.0], [0.0, 0.0], [-2.0, 0.0]], device=device)
>>> backends.to_numpy(mx.pca(X, 1).explained_variance)
array([4.])
"""

from __future__ import annotations

from m4ml_xp._xp._devices import (
    AUTO_ORDER,
    BACKENDS,
    GPU_DEVICES,
    auto_backend,
    available_backends,
    gpu_backend_works,
    on_accelerator,
    resolve_backend,
    sync,
    to_numpy,
)

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "GPU_DEVICES",
    "auto_backend",
    "available_backends",
    "gpu_backend_works",
    "on_accelerator",
    "resolve_backend",
    "sync",
    "to_numpy",
]
