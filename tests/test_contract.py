"""The whole-library contract, generated from ``tests/contract_registry.py``.

For every public function on every backend: each applicable class of bad
input raises ``ValueError`` / ``TypeError`` from m4ml_xp's own checks with the
argument named; a valid call leaves its inputs unchanged and returns arrays of
the input's library on the input's device; seeded calls are bit-identical on
one backend and agree with NumPy within the dtype's tolerance; iterative
methods stopped early report ``converged=False`` and warn.  The table of which
bad inputs each function rejects is printed in the terminal summary.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from array_api_compat import array_namespace, is_array_api_obj, is_dask_array
from array_api_compat import device as device_of

import m4ml_xp
from m4ml_xp.errors import ConvergenceWarning
from tests._helpers import asarray, dtype_name, to_numpy
from tests.conftest import Backend
from tests.contract_registry import DATA, FUNCTIONS, TYPES, Bad, Entry

PACKAGE = Path(m4ml_xp.__file__).resolve().parent


def _entry_marks(name: str, *, test: str = "") -> list[Any]:
    entry = FUNCTIONS[name]
    xfail = {**entry.xfail, **getattr(entry, f"xfail_{test}", {})}
    return [
        pytest.mark.xfail_xp_backend(Backend(backend), reason=reason)
        for backend, reason in xfail.items()
    ]


def _params(names: list[str], *, test: str = "") -> list[Any]:
    return [pytest.param(name, id=name, marks=_entry_marks(name, test=test)) for name in names]


BAD_CASES = [
    pytest.param(name, bad, id=f"{name}-{bad.name.lower()}", marks=_entry_marks(name))
    for name, entry in FUNCTIONS.items()
    for bad in Bad
    if bad in entry.bad
]


class Context:
    """What a mutation needs: the namespace, device, inputs, and other libraries/devices."""

    def __init__(self, xp: Any, device: Any, backend: Backend, a: dict[str, Any]) -> None:
        self.xp, self.device, self.backend, self.a = xp, device, backend, a

    def foreign(self, values: np.ndarray) -> Any:
        """`values` as an array of another library than the backend's."""
        if self.backend in (Backend.NUMPY, Backend.NUMPY_READONLY):
            strict = pytest.importorskip("array_api_strict")
            return strict.asarray(values)
        return np.asarray(values)

    def elsewhere(self, values: np.ndarray) -> Any:
        """`values` on another device of the backend than the inputs'.

        array-api-strict always has two; torch and JAX on a GPU also have the CPU.
        """
        on_gpu = "cpu" not in str(self.device).lower()
        if self.backend is Backend.ARRAY_API_STRICT:
            info = self.xp.__array_namespace_info__()
            other = next(d for d in info.devices() if d != self.device)
        elif self.backend is Backend.TORCH and on_gpu:
            other = "cpu"
        elif self.backend is Backend.JAX and on_gpu:
            import jax

            other = jax.devices("cpu")[0]
        else:
            pytest.skip("one device here (array-api-strict has two; torch/JAX on a GPU, cpu too)")
        return self.xp.asarray(values, device=other)

    def with_nan(self, v: Any) -> Any:
        """`v` with its first entry NaN and its last infinite."""
        values = np.array(to_numpy(v), dtype=np.float64, copy=True)
        values.flat[0] = np.nan
        values.flat[-1] = np.inf
        return asarray(self.xp, values.astype(to_numpy(v).dtype), device_of(v))

    def masked(self, v: Any) -> Any:
        """`v` as a NumPy masked array with its first entry masked (NumPy backends only)."""
        if self.backend not in (Backend.NUMPY, Backend.NUMPY_READONLY):
            pytest.skip("masked arrays (numpy.ma) exist on the NumPy backends only")
        values = to_numpy(v)
        mask = np.zeros(values.shape, dtype=bool)
        mask.flat[0] = True
        return np.ma.masked_array(values, mask=mask)

    def half(self, v: Any) -> Any:
        """`v` in float16 (on backends that have it)."""
        return self.xp.astype(v, self.half_dtype())

    def half_dtype(self) -> Any:
        """The backend's float16 (skips on backends without it)."""
        if self.backend is Backend.DASK:  # not in array-api-compat's namespace; Dask has it
            return np.float16
        if not hasattr(self.xp, "float16"):
            pytest.skip(f"{self.xp.__name__} has no float16")
        return self.xp.float16


def _as_backend(tree: Any, xp: Any, device: Any) -> Any:
    if isinstance(tree, np.ndarray):
        return asarray(xp, tree, device)
    if isinstance(tree, list | tuple):
        return type(tree)(_as_backend(v, xp, device) for v in tree)
    if isinstance(tree, dict):
        return {k: _as_backend(v, xp, device) for k, v in tree.items()}
    return tree


def _float32(tree: Any) -> Any:
    """Every floating NumPy array in `tree` as float32 (integers and callables unchanged)."""
    if isinstance(tree, np.ndarray):
        return tree.astype(np.float32) if np.issubdtype(tree.dtype, np.floating) else tree
    if isinstance(tree, list | tuple):
        return type(tree)(_float32(v) for v in tree)
    if isinstance(tree, dict):
        return {k: _float32(v) for k, v in tree.items()}
    return tree


def entry_inputs(entry: Entry, xp: Any, device: Any, *, float32: bool = False) -> dict[str, Any]:
    """The entry's valid inputs on the backend (every floating array float32 if asked)."""
    if entry.needs_data and not (DATA / entry.needs_data).is_dir():
        pytest.skip(f"needs {DATA / entry.needs_data} (set M4ML_XP_DATA)")
    tree = entry.inputs(np.random.default_rng(0))
    a = _as_backend(_float32(tree) if float32 else tree, xp, device)
    return {**a, "xp": xp, "device": device}


def _inputs(name: str, xp: Any, device: Any) -> dict[str, Any]:
    return entry_inputs(FUNCTIONS[name], xp, device)


def _arrays(tree: Any) -> list[Any]:
    """Every array in a result: dataclass / named-tuple fields, sequences, dicts."""
    if isinstance(tree, np.generic) or (
        is_array_api_obj(tree) and not isinstance(tree, bool | int | float | complex)
    ):
        return [tree]
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        tree = [getattr(tree, f.name) for f in dataclasses.fields(tree)]
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list | tuple):
        return [leaf for item in tree for leaf in _arrays(item)]
    return []


def _run(entry: Entry, a: dict[str, Any], **options: Any) -> Any:
    """Call, then compute any Dask outputs (deferred input checks raise here)."""
    result = entry.call(a, **options)
    lazy = [x for x in _arrays(result) if is_dask_array(x)]
    if lazy:
        import dask

        dask.compute(*lazy)
    return result


def _generic(bad: Bad, value: Any, ctx: Context) -> Any:
    if bad is Bad.NDIM:
        return value[None, ...]
    if bad is Bad.SHAPE:
        return value[..., :-1]
    if bad is Bad.NONFINITE:
        return ctx.with_nan(value)
    if bad is Bad.EMPTY:
        return value[:0, ...]
    if bad is Bad.DTYPE:
        return ctx.xp.astype(value, ctx.xp.complex128)
    if bad is Bad.MIXED:
        return ctx.foreign(to_numpy(value))
    if bad is Bad.DEVICE:
        return ctx.elsewhere(to_numpy(value))
    if bad is Bad.MASKED:
        return ctx.masked(value)
    if bad is Bad.HALF:
        return ctx.half(value)
    return to_numpy(value).tolist()  # Bad.NONARRAY


def test_every_public_name_has_a_registry_entry() -> None:
    """A new public name without an entry (or a stale entry) fails here."""
    public = set(m4ml_xp.__all__)
    registered = set(FUNCTIONS) | set(TYPES)
    assert not public - registered, (
        f"add contract_registry entries for {sorted(public - registered)}"
    )
    assert not registered - public, f"registry names not in __all__: {sorted(registered - public)}"
    assert not set(FUNCTIONS) & set(TYPES)


@pytest.mark.parametrize(("name", "bad"), BAD_CASES)
def test_rejects_bad_input(name: str, bad: Bad, xp: Any, device: Any, backend: Backend) -> None:
    entry = FUNCTIONS[name]
    a = _inputs(name, xp, device)
    mutation = entry.bad[bad]
    ctx = Context(xp, device, backend, a)
    options = {k: v(ctx) if callable(v) else v for k, v in mutation.options.items()}
    if not options:
        change = mutation.change or (lambda v, c: _generic(bad, v, c))
        a = {**a, mutation.arg: change(a.get(mutation.arg), ctx)}
    with pytest.raises((ValueError, TypeError)) as info:
        _run(entry, a, **options)
    message = str(info.value)
    named = mutation.expect or mutation.arg
    assert re.search(rf"`{named}(\[[^`]*\])?`", message), (
        f"the message does not name `{named}`: {message}"
    )
    raised_in = Path(str(info.traceback[-1].path)).resolve()
    assert raised_in.is_relative_to(PACKAGE), (
        f"raised inside {raised_in}, not by m4ml_xp's checks: {message}"
    )


@pytest.mark.parametrize("name", _params(list(FUNCTIONS)))
def test_inputs_unchanged_and_outputs_on_input_device(name: str, xp: Any, device: Any) -> None:
    entry = FUNCTIONS[name]
    a = _inputs(name, xp, device)
    before = {k: [to_numpy(x).copy() for x in _arrays(v)] for k, v in a.items() if k != "xp"}
    result = _run(entry, a)
    for key, copies in before.items():
        for old, new in zip(copies, _arrays(a[key]), strict=True):
            np.testing.assert_array_equal(to_numpy(new), old, err_msg=f"{name} modified `{key}`")
    outputs = _arrays(result)
    assert bool(outputs) == entry.returns_arrays, f"{name} returned {type(result).__name__}"
    assert_outputs_promised(name, result, xp, device)


def assert_outputs_promised(
    name: str, result: Any, xp: Any, device: Any, *, dtype: Any = None
) -> None:
    """Every array in `result` is of `xp`'s library, on `device`, and (if given) floats in `dtype`.

    Integer and boolean outputs (counts, indices, flags) are exempt from `dtype`.
    """
    probe = xp.empty(0, device=device) if device is not None else xp.empty(0)
    for out in _arrays(result):
        if isinstance(out, np.generic):  # NumPy's 0-d results are its scalars
            assert isinstance(probe, np.ndarray), f"{name} returned a NumPy scalar"
        else:
            array_namespace(out, probe)  # raises when the library differs
            assert device_of(out) == device, f"{name} returned an array on {device_of(out)}"
        kind = dtype_name(out.dtype)
        if dtype is not None and kind.startswith(("float", "complex")):
            assert kind == dtype_name(dtype), (
                f"{name} returned {kind} for {dtype_name(dtype)} input"
            )


def _takes_dtype(name: str) -> bool:
    return "dtype" in inspect.signature(getattr(m4ml_xp, name)).parameters


@pytest.mark.parametrize("name", _params(list(FUNCTIONS), test="float32"))
def test_float32_in_float32_out(name: str, xp: Any, device: Any) -> None:
    """float32 inputs (or ``dtype=float32`` for creators) give float32 results, nothing wider."""
    entry = FUNCTIONS[name]
    if not entry.returns_arrays:
        pytest.skip(f"{name} returns no arrays")
    options: dict[str, Any] = {}
    if entry.creates:
        if not _takes_dtype(name):
            pytest.skip(f"{name} creates its arrays in the default dtype (no dtype option)")
        options["dtype"] = xp.float32
    a = entry_inputs(entry, xp, device, float32=True)
    assert_outputs_promised(name, _run(entry, a, **options), xp, device, dtype=xp.float32)


TRANSFORMS = [
    name for name, entry in FUNCTIONS.items() if entry.returns_arrays and not entry.creates
]


@pytest.mark.parametrize("name", _params(TRANSFORMS, test="mixed_widths"))
def test_float32_with_float64_promotes(name: str, xp: Any, device: Any, backend: Backend) -> None:
    """One float32 array among float64 ones: float64 results (NumPy's promotion).

    Or the dtype of the entry's `dtype_of` argument, by its convention.  PyTorch does
    not promote in products ("expected m1 and m2 to have the same dtype").
    """
    if backend is Backend.JAX:  # and each case would compile the whole function anew
        pytest.skip(
            "jax.numpy promotes mixed widths itself; with JAX's default x64 off all are float32"
        )
    entry = FUNCTIONS[name]
    a = entry_inputs(entry, xp, device)
    wide = [key for key, value in a.items() if key not in ("xp", "device")
            and is_array_api_obj(value) and dtype_name(value.dtype) == "float64"]  # fmt: skip
    if len(wide) < 2:
        pytest.skip(f"{name} takes fewer than two floating arrays")
    a[wide[0]] = xp.astype(a[wide[0]], xp.float32)
    expected = xp.float64 if entry.dtype_of is None else a[entry.dtype_of].dtype
    assert_outputs_promised(name, _run(entry, a), xp, device, dtype=expected)


CREATORS = [name for name, entry in FUNCTIONS.items() if entry.creates]


@pytest.mark.parametrize("name", _params(CREATORS))
def test_creators_refuse_a_name_for_xp_and_a_device_the_library_lacks(name: str) -> None:
    entry = FUNCTIONS[name]
    a = entry_inputs(entry, np, None)
    with pytest.raises(TypeError, match="`xp` must be an array namespace"):
        _run(entry, {**a, "xp": "numpy"})
    with pytest.raises(ValueError, match="`device` must be a device of numpy"):
        _run(entry, {**a, "device": "cuda:0"})


SEEDED = [name for name, entry in FUNCTIONS.items() if entry.seeded is not None]


def _seeded_outputs(name: str, xp: Any, device: Any, seed: int) -> list[np.ndarray]:
    entry = FUNCTIONS[name]
    result = _run(entry, _inputs(name, xp, device), seed=seed, **entry.seeded)
    return [to_numpy(x) for x in _arrays(result)]


@pytest.mark.parametrize("name", _params(SEEDED, test="seeded"))
def test_same_seed_same_result(name: str, xp: Any, device: Any) -> None:
    first = _seeded_outputs(name, xp, device, seed=3)
    again = _seeded_outputs(name, xp, device, seed=3)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    other = _seeded_outputs(name, xp, device, seed=4)
    assert any(not np.array_equal(x, y) for x, y in zip(first, other, strict=True)), (
        f"{name}: the seed changes nothing"
    )


@pytest.mark.parametrize("name", _params(SEEDED, test="seeded"))
def test_seeded_result_agrees_with_numpy(name: str, xp: Any, device: Any) -> None:
    ours = _seeded_outputs(name, xp, device, seed=3)
    reference = _seeded_outputs(name, np, None, seed=3)
    for x, y in zip(ours, reference, strict=True):
        assert x.shape == y.shape
        if np.issubdtype(y.dtype, np.floating):
            tol = float(np.sqrt(np.finfo(y.dtype).eps))
            np.testing.assert_allclose(x, y, rtol=tol, atol=tol * float(np.max(np.abs(y))))
        else:
            np.testing.assert_array_equal(x, y)


ITERATIVE = [name for name, entry in FUNCTIONS.items() if entry.convergence is not None]


@pytest.mark.parametrize("name", _params(ITERATIVE, test="convergence"))
def test_stopped_early_reports_and_warns(name: str, xp: Any, device: Any) -> None:
    entry = FUNCTIONS[name]
    with pytest.warns(ConvergenceWarning) as caught:
        result = _run(entry, _inputs(name, xp, device), **entry.convergence)
    assert not bool(entry.converged(result)), f"{name} claims convergence after one step"
    # attributed to the line that called m4ml_xp (a decorator or helper in between must
    # not make it name a line of the library)
    for warning in caught:
        assert PACKAGE not in Path(warning.filename).resolve().parents, warning.filename


@pytest.mark.parametrize("name", list(TYPES))
def test_public_type_is_produced(name: str) -> None:
    kind = getattr(m4ml_xp, name)
    spec = TYPES[name]
    a = _inputs(spec.produced_by, np, None)
    make = spec.make or (lambda a: _run(FUNCTIONS[spec.produced_by], a))
    if spec.how == "raises":
        with pytest.raises(kind):
            make(a)
    elif spec.how == "warns":
        with pytest.warns(kind):
            make(a)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert isinstance(make(a), kind)


#: The field order API.md lists for each result family; the common tail follows.
RESULT_FIELDS = {
    "EigResult": ("eigenvalue", "eigenvector", "n_iter", "converged"),
    "PageRankResult": ("scores", "n_iter", "converged", "error"),
    "RootResult": ("root", "iterates", "n_iter", "converged"),
    "LagrangeResult": ("x", "lam", "converged"),
    "OptimizeResult": ("x", "n_iter", "converged"),
    "TrainResult": ("params", "losses"),
    "LMResult": ("x", "cost"),
}


@pytest.mark.parametrize("name", list(RESULT_FIELDS))
def test_result_keeps_the_listed_order_then_status_and_message(name: str) -> None:
    """API.md's fields first, then ``n_iter, converged, status, message`` where they exist."""
    kind = getattr(m4ml_xp, name)
    listed = RESULT_FIELDS[name]
    assert kind._fields[: len(listed)] == listed
    assert kind._fields[-2:] == ("status", "message")
    tail = [f for f in ("n_iter", "converged") if f in kind._fields and f not in listed]
    assert [f for f in kind._fields if f in tail] == tail
    spec = TYPES[name]
    a = _inputs(spec.produced_by, np, None)
    result = (spec.make or (lambda a: _run(FUNCTIONS[spec.produced_by], a)))(a)
    assert type(result.status) is int, f"{name}.status is {type(result.status).__name__}"
    assert isinstance(result.message, str)
    assert result.message
