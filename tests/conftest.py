"""Test fixtures: one parametrisation per array backend.

``M4ML_XP_BACKENDS`` (comma-separated ``Backend`` values, set by nox and CI)
restricts the run to those backends and turns a listed backend that cannot be
imported into an error rather than a skip.  Without it every backend that
imports is tested and the others are skipped with the reason.
``M4ML_XP_TORCH_DEVICE=cuda`` runs the torch tests on a GPU (JAX and CuPy use
theirs by default).
"""

from __future__ import annotations

import enum
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


class Backend(enum.Enum):
    """Array backends the suite runs on; the value names the module (and a variant)."""

    NUMPY = "numpy"
    NUMPY_READONLY = "numpy:readonly"
    ARRAY_API_STRICT = "array_api_strict"
    JAX = "jax.numpy"
    TORCH = "torch"
    DASK = "dask.array"
    CUPY = "cupy"

    @property
    def module_name(self) -> str:
        return self.value.split(":")[0]

    def __str__(self) -> str:
        return self.value


def _selected() -> list[Backend] | None:
    listed = os.environ.get("M4ML_XP_BACKENDS")
    if not listed:
        return None
    names = [name.strip() for name in listed.split(",") if name.strip()]
    by_value = {b.value: b for b in Backend}
    unknown = [name for name in names if name not in by_value]
    if unknown:
        raise pytest.UsageError(f"M4ML_XP_BACKENDS names unknown backends {unknown}")
    return [by_value[name] for name in names]


SELECTED = _selected()
#: JAX's persistent compilation cache for test runs (git-ignored)
JAX_CACHE = Path(__file__).resolve().parent.parent / ".jax_cache"
BACKENDS = SELECTED if SELECTED is not None else list(Backend)

#: Backends where one hypothesis example costs a compilation (JAX traces and compiles a
#: new closure per example) or a scheduler round trip per operation (Dask): a session of
#: only these draws a third as many examples per property; the eager backends' sessions
#: keep the full count, so every property still meets many cases in CI.
COSTLY_EXAMPLES = {Backend.JAX, Backend.DASK}
COSTLY_SESSION = SELECTED is not None and set(SELECTED) <= COSTLY_EXAMPLES


#: A session of JAX alone: compiled kernels are per shape (eager operations included), so
#: a property there draws its sizes from a few values and the examples reuse compilations.
COMPILING_SESSION = SELECTED is not None and set(SELECTED) == {Backend.JAX}


def sizes(low: int, high: int) -> st.SearchStrategy[int]:
    """A size for a property: any in ``[low, high]``; in a JAX-only session ends and middle.

    The eager backends' sessions draw every size; under JAX each new shape costs
    compilations, so there the smallest, the largest and one between are drawn
    (the edge cases kept), and later examples reuse the compiled kernels.
    """
    if COMPILING_SESSION:
        return st.sampled_from(sorted({low, (low + high) // 2, high}))
    return st.integers(low, high)


def examples(n: int) -> int:
    """Hypothesis examples for a property whose eager backends draw `n`."""
    return max(3, n // 3) if COSTLY_SESSION else n


# `xp` and `device` are stateless namespaces/devices, safe to share across examples.
_shared = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=examples(25), derandomize=True, **_shared)
settings.register_profile("dev", max_examples=examples(15), **_shared)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class NumPyReadOnly:
    """NumPy whose ``asarray`` returns non-writeable arrays: catches in-place writes."""

    __name__ = "numpy:readonly"

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def asarray(self, *args: Any, **kwargs: Any) -> np.ndarray:
        out = np.array(np.asarray(*args, **kwargs), copy=True)
        out.flags.writeable = False
        return out


def _share_jax_compilations(jax: ModuleType) -> None:
    """Keep every XLA compilation in JAX's persistent cache, shared by the xdist workers.

    The suite builds a new closure per test (and per hypothesis example), so JAX's
    in-memory caches miss and the same program is compiled again and again; the
    persistent cache is keyed by the compiled program, not the Python function.
    Numerics are unchanged.  ``JAX_COMPILATION_CACHE_DIR`` overrides the place.
    """
    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(JAX_CACHE))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _import_backend(backend: Backend) -> ModuleType:
    if SELECTED is not None:
        try:
            return importlib.import_module(backend.module_name)
        except ImportError as exc:  # listed but missing: a broken environment, not a skip
            pytest.fail(
                f"backend {backend} is listed in M4ML_XP_BACKENDS but fails to import: {exc}"
            )
    return pytest.importorskip(backend.module_name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply ``skip_xp_backend`` / ``xfail_xp_backend`` markers for the test's backend.

    Tests without an ``xp`` parameter run once per environment: in the session
    that includes NumPy, so that nox's per-backend sessions do not repeat them.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("xp") if callspec is not None else None
        if backend is None:
            only = item.get_closest_marker("xp_backend_only")
            if only is not None:
                if only.args[0] not in BACKENDS:
                    item.add_marker(pytest.mark.skip(reason=f"runs in the {only.args[0]} session"))
            elif SELECTED is not None and Backend.NUMPY not in SELECTED:
                item.add_marker(pytest.mark.skip(reason="backend-independent; runs with numpy"))
            continue
        for marker in item.iter_markers("skip_xp_backend"):
            if marker.args[0] == backend:
                item.add_marker(pytest.mark.skip(reason=marker.kwargs["reason"]))
        for marker in item.iter_markers("xfail_xp_backend"):
            if marker.args[0] == backend:
                item.add_marker(
                    pytest.mark.xfail(
                        reason=marker.kwargs["reason"], strict=marker.kwargs.get("strict", True)
                    )
                )


@pytest.fixture(params=BACKENDS, ids=str)
def xp(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The array namespace under test (array-api-compat wrapped where needed)."""
    backend: Backend = request.param
    module = _import_backend(backend)
    if backend is Backend.NUMPY_READONLY:
        yield NumPyReadOnly()
        return
    if backend is Backend.JAX:
        import jax

        # float64 tests need x64; the matmul precision stays JAX's default (TF32 for float32
        # on NVIDIA GPUs), as users run it: the library asks for full precision itself.
        # tests/test_jax_default.py runs every public function with x64 off as well.
        jax.config.update("jax_enable_x64", True)
        _share_jax_compilations(jax)
    elif backend is Backend.ARRAY_API_STRICT:
        module.set_array_api_strict_flags(api_version="2024.12")
    from array_api_compat import array_namespace

    torch_device = os.environ.get("M4ML_XP_TORCH_DEVICE")  # e.g. "cuda" on a GPU machine
    if backend is Backend.TORCH and torch_device:
        module.set_default_device(torch_device)
        try:
            yield array_namespace(module.empty(0))
        finally:
            module.set_default_device("cpu")
        return
    yield array_namespace(module.empty(0))


@pytest.fixture
def backend(xp: Any, request: pytest.FixtureRequest) -> Backend:
    """The ``Backend`` member of the current ``xp`` parametrisation."""
    return request.node.callspec.params["xp"]


@pytest.fixture
def device(xp: Any, backend: Backend) -> Any:
    """A non-default device where the backend has one without a GPU (array-api-strict's).

    Elsewhere the default device, so tests can pass ``device=device`` uniformly.
    """
    if backend is Backend.ARRAY_API_STRICT:
        import array_api_strict

        return array_api_strict.Device("device1")
    from array_api_compat import device as device_of

    return device_of(xp.empty(0))


# --------------------------------------------------------------------------- contract table
#: (function, bad-input class) -> outcomes of ``test_rejects_bad_input`` over the backends run.
_REJECTIONS: dict[tuple[str, str], set[str]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Tag each bad-input contract test's report with its (function, bad-input class)."""
    outcome = yield
    if getattr(item, "originalname", None) != "test_rejects_bad_input":
        return
    params = item.callspec.params
    outcome.get_result().user_properties.append(
        ("contract_rejection", (params["name"], params["bad"].value))
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the tagged outcomes (on the controller too when pytest-xdist runs workers)."""
    keys = [tuple(value) for name, value in report.user_properties if name == "contract_rejection"]
    for key in keys:
        if report.failed:
            _REJECTIONS.setdefault(key, set()).add("FAIL")
        elif report.skipped:
            _REJECTIONS.setdefault(key, set()).add("skip")
        elif report.when == "call":
            _REJECTIONS.setdefault(key, set()).add("ok")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print which classes of bad input each public function rejects (``-``: none such)."""
    if not _REJECTIONS:
        return
    from tests.contract_registry import FUNCTIONS, Bad

    write = terminalreporter.write_line
    terminalreporter.section("bad inputs rejected (contract)")
    width = max(len(name) for name in FUNCTIONS) + 2
    write("function".ljust(width) + "".join(bad.value.rjust(10) for bad in Bad))
    for name, entry in FUNCTIONS.items():
        cells = []
        for bad in Bad:
            seen = _REJECTIONS.get((name, bad.value), set())
            if bad not in entry.bad:
                cells.append("-")
            elif "FAIL" in seen:
                cells.append("FAIL")
            else:
                cells.append("ok" if "ok" in seen else "skip" if seen else "")
        write(name.ljust(width) + "".join(cell.rjust(10) for cell in cells))
    write("ok: rejected with the argument named, on every backend run; -: no such input")
