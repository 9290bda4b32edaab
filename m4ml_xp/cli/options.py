"""Argument helpers shared by the commands: backend choice, number types, the user-error type."""

from __future__ import annotations

import argparse
import math
from typing import Any

from m4ml_xp import backends


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


#: The optional extra (``pip install 'm4ml_xp[extra]'``) that brings each optional library.
EXTRAS: dict[str, str] = {
    "jax": "jax",
    "jaxlib": "jax",
    "torch": "torch",
    "dask": "dask",
    "distributed": "dask",
    "cupy": "cupy",
    "cupyx": "cupy",
    "array_api_strict": "test",
    "matplotlib": "plot",
    "scipy": "bench",
    "networkx": "bench",
    "sklearn": "bench",
    "asv": "bench",
}


def missing(exc: ImportError) -> str:
    """Name the library an ``ImportError`` misses and the extra that installs it, in one line."""
    name = (exc.name or "").split(".")[0]
    if name in EXTRAS:
        return f"{name} is not installed here: pip install 'm4ml_xp[{EXTRAS[name]}]'"
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return f"not installed here ({reason}); see `m4ml-xp info`"


def resolve(backend: str, device: str | None, job: str) -> tuple[str, Any, Any]:
    """``(label, namespace, device)`` for ``--backend`` / ``--device``; ``auto`` by `job`."""
    try:
        return pick_backend(backend, device, job)
    except ImportError as exc:
        raise CLIError(f"backend {backend!r}: {missing(exc)}") from None
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def nonnegative_int(text: str) -> int:
    """Parse an integer >= 0, such as a column number (argparse ``type``)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text}")
    return value


def positive_float(text: str) -> float:
    """Parse a positive finite number (argparse ``type``)."""
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def positive_int(text: str) -> int:
    """Parse a positive integer (argparse ``type``)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def int_list(text: str) -> list[int]:
    """Parse positive integers separated by commas, e.g. ``256,64`` (argparse ``type``)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be integers separated by commas; got {text}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers; got {text}")
    return values


def float_list(text: str) -> list[float]:
    """Parse finite numbers separated by commas, e.g. ``1,0,2`` (argparse ``type``)."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be numbers separated by commas; got {text}"
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"must be finite numbers; got {text}")
    return values


def add_backend_arguments(
    parser: argparse.ArgumentParser, *, job: str, default: str = "numpy"
) -> None:
    """``--backend`` (``auto``: the fastest GPU backend for `job` that works) and ``--device``."""
    order = ", then ".join(backends.AUTO_ORDER[job])
    parser.add_argument(
        "--backend", default=default, choices=["auto", *sorted(backends.BACKENDS)],
        help=f"auto: the fastest working GPU backend for this job ({order}), else numpy",
    )  # fmt: skip
    parser.add_argument(
        "--device", default=None,
        help="e.g. cpu, cuda, cuda:1, gpu (default: the backend's own default device)",
    )  # fmt: skip


def backend_label(name: str, dev: Any) -> str:
    """``numpy``, ``cupy``, ``torch:cpu``, ``torch:cuda``, ``jax:cuda:0``: where the work runs."""
    return name if name in ("numpy", "cupy", "dask") else f"{name}:{dev}"


def pick_backend(name: str, device: str | None, job: str = "pca") -> tuple[str, Any, Any]:
    """Return ``(label, namespace, device)``: `name`, or with ``auto`` the fastest for `job`.

    ``auto`` takes the first backend of ``backends.AUTO_ORDER[job]`` that imports and computes
    on its GPU (on `device` when given), and NumPy on the CPU when none does.
    """
    if name != "auto":
        xp, dev = backends.resolve_backend(name, device)
        return backend_label(name, dev), xp, dev
    if device is None:
        backend, gpu = backends.auto_backend(job)
    elif device == "cpu":
        backend, gpu = "numpy", None
    else:  # auto among the backends that have this device

        def works(candidate: str) -> bool:
            try:
                backends.resolve_backend(candidate, device)
            except Exception:
                return False
            return True

        backend, gpu = backends.auto_backend(job, works)
        gpu = device if backend != "numpy" else None
    xp, dev = backends.resolve_backend(backend, gpu)
    if backend == "numpy":
        return "numpy (auto: no GPU backend works here)", xp, dev
    return f"{backend_label(backend, dev)} (auto: fastest for {job})", xp, dev


def nonnegative_float(text: str) -> float:
    """Parse a finite number >= 0, such as a limit of a random draw (argparse ``type``)."""
    value = float(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text}")
    return value
