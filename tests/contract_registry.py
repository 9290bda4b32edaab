"""The registry of the whole-library contract: one valid call per public name.

Every name in ``m4ml_xp.__all__`` has an entry: functions in ``FUNCTIONS`` (a
valid call, the bad inputs it must reject, whether it is seeded or iterative),
result types, warnings and errors in ``TYPES`` (the function that returns or
raises them).  ``tests/test_contract.py`` generates the contract tests from it
on every backend and ``tests/support_table.py`` the README's backend table.

A call is ``call(a, **options)``: `a` maps argument names to the inputs built
on the backend under test (``a["xp"]`` and ``a["device"]`` are the namespace
and device), `options` are keyword options forwarded to the function (the bad
option values, ``max_iter=1``, ``seed``).
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from array_api_compat import array_namespace

import m4ml_xp as m

DATA = Path(os.environ.get("M4ML_XP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class Bad(enum.Enum):
    """The classes of bad input every function is checked against."""

    NDIM = "ndim"
    SHAPE = "shape"
    NONFINITE = "nan/inf"
    EMPTY = "empty"
    DTYPE = "dtype"
    MIXED = "mixed lib"
    DEVICE = "device"
    NONARRAY = "non-array"
    OPTION = "option"
    MASKED = "masked"
    HALF = "float16"


@dataclass(frozen=True)
class Mutation:
    """How to make one bad input: change argument `arg` (or pass `options`).

    `change` maps ``(value, ctx)`` to the bad value; ``None`` uses the class's
    generic change (see ``test_contract.GENERIC``).  `options` are passed to
    the call instead (bad option values, NaN scalars; a callable value is
    called with the context).  The error message must name `expect` (default
    `arg`): the argument where the function detects the problem.
    """

    arg: str
    change: Callable[[Any, Any], Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    expect: str | None = None


def on(
    arg: str, change: Callable[[Any, Any], Any] | None = None, *, expect: str | None = None
) -> Mutation:
    """Mutate array argument `arg` (generically when `change` is None)."""
    return Mutation(arg, change, expect=expect)


def option(arg: str, value: Any) -> Mutation:
    """Pass the bad option ``arg=value``."""
    return Mutation(arg, options={arg: value})


@dataclass(frozen=True)
class Entry:
    """A public function: its valid call and what the contract checks on it.

    `inputs` builds the NumPy inputs from a generator (pytrees of arrays are
    allowed; scalars, strings and callables pass through unchanged).
    `convergence` are the options that stop an iterative method before it
    converges; `converged` reads the flag off the result.  `seeded` calls take
    a ``seed`` option (with the options in `seeded` that make the seed matter).  `xfail` maps a backend value (``"dask.array"``) to the
    reason the function is not supported there; `xfail_convergence` and
    `xfail_seeded` the same for the convergence and seed tests alone.
    `dtype_of` names the argument whose floating dtype the results take when
    float32 and float64 arrays are mixed (a documented convention: an image's, as
    ``scipy.ndimage``; the parameters', as optax; the start's; the fitted model's);
    None: NumPy's promotion, float64.
    """

    call: Callable[..., Any]
    inputs: Callable[[np.random.Generator], dict[str, Any]]
    bad: dict[Bad, Mutation]
    seeded: dict[str, Any] | None = None
    convergence: dict[str, Any] | None = None
    converged: Callable[[Any], Any] = lambda result: result.converged
    creates: bool = False
    returns_arrays: bool = True
    needs_data: str | None = None
    xfail: dict[str, str] = field(default_factory=dict)
    xfail_convergence: dict[str, str] = field(default_factory=dict)
    xfail_seeded: dict[str, str] = field(default_factory=dict)
    dtype_of: str | None = None


def _ns(v: Any) -> Any:
    return array_namespace(v)


def _square(rng: np.random.Generator, n: int = 3) -> np.ndarray:
    A = rng.standard_normal((n, n))
    return A @ A.T + n * np.eye(n)


def _spd(rng: np.random.Generator) -> np.ndarray:
    return _square(rng, 3)


def _non_square(A: Any, ctx: Any) -> Any:
    return A[:, :-1]


def _shorter(v: Any, ctx: Any) -> Any:
    return v[..., :-1]


def _fewer_rows(v: Any, ctx: Any) -> Any:
    return v[:-1, ...]


def _float(v: Any, ctx: Any) -> Any:
    return ctx.xp.astype(v, ctx.xp.float64)


def _vec3(rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(3)


def _exp_decay(a: dict[str, Any]) -> Callable[[Any], Any]:
    t, y = a["t"], a["y"]
    return lambda b: b[0] * _ns(b).exp(-b[1] * t) - y


def _exp_decay_batched(b: Any, t: Any, y: Any) -> Any:
    return b[:, :1] * _ns(b).exp(-b[:, 1:] * t) - y


def _decay_data(rng: np.random.Generator) -> dict[str, Any]:
    t = np.linspace(0.0, 4.0, 12)
    return {"t": t, "y": 3.0 * np.exp(-0.7 * t), "x0": np.array([1.0, 1.0])}


def _curve(x: Any, p: Any) -> Any:
    return p[0] * _ns(p).exp(-p[1] * x)


def _pca_data(rng: np.random.Generator) -> dict[str, Any]:
    X = rng.standard_normal((30, 4)) @ np.diag([3.0, 2.0, 1.0, 0.5]) + 5.0
    return {"X": X}


def _mlp_data(rng: np.random.Generator) -> dict[str, Any]:
    params = m.init_mlp([1, 4, 2], seed=0)
    X, Y = m.heart_curve(16)
    return {"params": params, "X": X, "Y": Y}


def _edges(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "src": np.array([0, 1, 2, 2, 3]),
        "dst": np.array([1, 2, 0, 1, 0]),
        "weights": np.array([1.0, 2.0, 1.0, 1.0, 3.0]),
    }


def _two_vectors(rng: np.random.Generator) -> dict[str, Any]:
    return {"x": rng.standard_normal(3), "y": rng.standard_normal(3), "A": _spd(rng)}


def _product(v: Any) -> Any:
    return v[0] * v[1]


def _on_line(v: Any) -> Any:
    return v[0] + v[1] - 2.0


def _bowl_gradient(v: Any) -> Any:
    return 2.0 * (v - 3.0)


def _vector_field(v: Any) -> Any:
    return _ns(v).stack([v[0] ** 2 * v[1], _ns(v).sin(v[1])])


def _cubic(v: Any) -> Any:
    return v[0] ** 2 * v[1] + 3.0 * v[1] ** 2


# Shared bad-input sets for the common argument layouts.
_ONE_MATRIX = {
    Bad.NDIM: on("A"),
    Bad.NONFINITE: on("A"),
    Bad.EMPTY: on("A"),
    Bad.DTYPE: on("A"),
    Bad.NONARRAY: on("A"),
    Bad.OPTION: option("tol", -1.0),
}
_SQUARE_MATRIX = {**_ONE_MATRIX, Bad.SHAPE: on("A", _non_square)}
# An empty set of vectors is valid for these: its span has dimension 0.
_VECTOR_SET = {bad: m for bad, m in _ONE_MATRIX.items() if bad is not Bad.EMPTY}
_VECTOR_PAIR = {
    Bad.NDIM: on("A"),
    Bad.SHAPE: on("y", _shorter),
    Bad.NONFINITE: on("x"),
    Bad.EMPTY: on("y"),
    Bad.DTYPE: on("x"),
    Bad.MIXED: on("y"),
    Bad.DEVICE: on("A"),
    Bad.NONARRAY: on("y"),
}
_DATA_MATRIX = {
    Bad.NDIM: on("X"),
    Bad.NONFINITE: on("X"),
    Bad.EMPTY: on("X"),
    Bad.DTYPE: on("X"),
    Bad.NONARRAY: on("X"),
}
_FUNCTION_AT_POINT = {
    Bad.NDIM: on("x"),
    Bad.NONFINITE: on("x"),
    Bad.EMPTY: on("x"),
    Bad.DTYPE: on("x"),
    Bad.NONARRAY: on("x"),
    Bad.OPTION: option("method", "spline"),
}
_OPTIMIZER_STEP = {
    Bad.SHAPE: on("grads", _shorter),
    Bad.MIXED: on("grads"),
    Bad.DEVICE: on("grads"),
    Bad.NONARRAY: on("grads"),
}
_MLP = {
    Bad.NDIM: on("X"),
    Bad.SHAPE: on("X", lambda X, ctx: ctx.xp.concat([X, X], axis=1)),
    Bad.NONFINITE: on("X"),
    Bad.EMPTY: on("X"),
    Bad.DTYPE: on("X"),
    Bad.MIXED: on("X"),
    Bad.DEVICE: on("X"),
    Bad.NONARRAY: on("X"),
    Bad.OPTION: option("activation", "swish"),
}
_CREATOR = {
    Bad.OPTION: option("dtype", lambda ctx: ctx.xp.int64),
    Bad.HALF: option("dtype", lambda ctx: ctx.half_dtype()),
}


def _optimizer_call(make: Callable[..., Any]) -> Callable[..., Any]:
    def call(a: dict[str, Any], **options: Any) -> Any:
        opt = make(**{"lr": 0.1, **options})
        state = opt.init(a["params"])
        updates, state = opt.update(a["grads"], state)
        return m.apply_updates(a["params"], updates), state

    return call


def _pca_class_call(a: dict[str, Any], **options: Any) -> Any:
    model = m.PCA(2, **options).fit(a["X"])
    Z = model.transform(a["Z"])
    return Z, model.inverse_transform(Z), model.components_, model.mean_


def _train_call(a: dict[str, Any], **options: Any) -> Any:
    options = {"epochs": 3, "batch_size": 8, **options}
    return m.train_mlp(a["params"], a["X"], a["Y"], optimizer=m.sgd(1.0), **options)


def _streaming_call(a: dict[str, Any], **options: Any) -> Any:
    X = a["X"]
    chunks = a.get("chunks", [X[:10, ...], X[10:, ...]])
    return m.streaming_pca(chunks, 2, xp=a["xp"], device=a["device"], **options)


def _pca_result(a: dict[str, Any]) -> Any:
    return m.pca(a["R"], 1)


FUNCTIONS: dict[str, Entry] = {
    # Course 1: linear algebra
    "gram_schmidt": Entry(
        lambda a, **o: m.gram_schmidt(a["A"], **o), lambda r: {"A": _square(r)}, _VECTOR_SET
    ),
    "is_singular": Entry(
        lambda a, **o: m.is_singular(a["A"], **o),
        lambda r: {"A": _square(r)},
        _SQUARE_MATRIX,
        returns_arrays=False,
    ),
    "row_echelon": Entry(
        lambda a, **o: m.row_echelon(a["A"], **o), lambda r: {"A": _square(r)}, _ONE_MATRIX
    ),
    "span_dimension": Entry(
        lambda a, **o: m.span_dimension(a["A"], **o),
        lambda r: {"A": _square(r)},
        _VECTOR_SET,
        returns_arrays=False,
    ),
    "change_of_basis": Entry(
        lambda a, **o: m.change_of_basis(a["r"], a["B"], **o),
        lambda r: {"r": _vec3(r), "B": _square(r)},
        {
            Bad.NDIM: on("B"),
            Bad.SHAPE: on("r", _shorter),
            Bad.NONFINITE: on("B"),
            Bad.EMPTY: on("B"),
            Bad.DTYPE: on("r"),
            Bad.MIXED: on("r"),
            Bad.DEVICE: on("r"),
            Bad.NONARRAY: on("B"),
        },
    ),
    "power_iteration": Entry(
        lambda a, **o: m.power_iteration(a["A"], x0=a.get("x0"), **o),
        lambda r: {"A": _square(r)},
        {
            **_SQUARE_MATRIX,
            Bad.MIXED: on("x0", lambda A, ctx: ctx.foreign(np.ones(3))),
            Bad.DEVICE: on("x0", lambda A, ctx: ctx.elsewhere(np.ones(3))),
        },
        seeded={},
        convergence={"max_iter": 1},
    ),
    "pagerank": Entry(
        lambda a, **o: m.pagerank(a["L"], **o),
        lambda r: {"L": m.generate_internet(6, seed=1)},
        {
            Bad.NDIM: on("L"),
            Bad.SHAPE: on("L", _non_square),
            Bad.NONFINITE: on("L"),
            Bad.EMPTY: on("L"),
            Bad.DTYPE: on("L"),
            Bad.NONARRAY: on("L"),
            Bad.OPTION: option("damping", 1.5),
        },
        convergence={"max_iter": 1, "damping": 0.99},
    ),
    "pagerank_edges": Entry(
        lambda a, **o: m.pagerank_edges(a["src"], a["dst"], n_nodes=4, weights=a["weights"], **o),
        _edges,
        {
            Bad.NDIM: on("src"),
            Bad.SHAPE: on("dst", _shorter),
            Bad.NONFINITE: on("weights"),
            Bad.DTYPE: on("src", _float),
            Bad.MIXED: on("dst"),
            Bad.DEVICE: on("weights"),
            Bad.NONARRAY: on("src"),
            Bad.OPTION: option("tol", -1.0),
        },
        convergence={"max_iter": 1},
    ),
    "generate_internet": Entry(
        lambda a, **o: m.generate_internet(6, xp=a["xp"], device=a["device"], **o),
        lambda r: {},
        _CREATOR,
        seeded={},
        creates=True,
    ),
    "generate_internet_edges": Entry(
        lambda a, **o: m.generate_internet_edges(
            50, xp=a["xp"], device=a["device"], **{"seed": 0, **o}
        ),
        lambda r: {},
        {Bad.OPTION: option("seed", "zero")},
        seeded={},
        creates=True,
    ),
    "rotation_matrix": Entry(
        lambda a, **o: m.rotation_matrix(**{"theta": 0.3, **o}, xp=a["xp"], device=a["device"]),
        lambda r: {},
        {
            Bad.NONFINITE: option("theta", math.nan),
            Bad.NONARRAY: option("theta", "ninety"),
            Bad.OPTION: _CREATOR[Bad.OPTION],
            Bad.HALF: _CREATOR[Bad.HALF],
        },
        creates=True,
    ),
    "scaling_matrix": Entry(
        lambda a, **o: m.scaling_matrix(
            **{"factors": [2.0, 0.5], **o}, xp=a["xp"], device=a["device"]
        ),
        lambda r: {},
        {
            Bad.NDIM: option("factors", [[2.0, 0.5]]),
            Bad.NONFINITE: option("factors", [2.0, math.inf]),
            Bad.EMPTY: option("factors", []),
            Bad.NONARRAY: option("factors", "double"),
            Bad.OPTION: _CREATOR[Bad.OPTION],
            Bad.HALF: _CREATOR[Bad.HALF],
        },
        creates=True,
    ),
    "shear_matrix": Entry(
        lambda a, **o: m.shear_matrix(**{"k": 0.5, **o}, xp=a["xp"], device=a["device"]),
        lambda r: {},
        {
            Bad.NONFINITE: option("k", math.nan),
            Bad.NONARRAY: option("k", "half"),
            Bad.OPTION: option("axis", 2),
        },
        creates=True,
    ),
    "reflection_matrix": Entry(
        lambda a, **o: m.reflection_matrix(a["basis"], **o),
        lambda r: {"basis": np.array([[1.0, 1.0], [0.0, 1.0]])},
        {
            Bad.NDIM: on("basis"),
            Bad.SHAPE: on("basis", _non_square),
            Bad.NONFINITE: on("basis"),
            Bad.EMPTY: on("basis"),
            Bad.DTYPE: on("basis"),
            Bad.NONARRAY: on("basis"),
        },
    ),
    "transform_image": Entry(
        lambda a, **o: m.transform_image(a["images"], a["T"], **o),
        lambda r: {"images": r.random((2, 5, 5)), "T": np.array([[0.0, -1.0], [1.0, 0.0]])},
        {
            Bad.NDIM: on("T"),
            Bad.SHAPE: on("T", _non_square),
            Bad.NONFINITE: on("images"),
            Bad.EMPTY: on("images", lambda v, ctx: v[:, :0, :]),
            Bad.DTYPE: on("images"),
            Bad.MIXED: on("T"),
            Bad.DEVICE: on("T"),
            Bad.NONARRAY: on("T"),
            Bad.OPTION: option("mode", "wrap-around"),
        },
        dtype_of="images",
    ),
    # Course 3: geometry and statistics
    "mean": Entry(
        lambda a, **o: m.mean(a["X"]), lambda r: {"X": r.standard_normal((5, 3))}, _DATA_MATRIX
    ),
    "cov": Entry(
        lambda a, **o: m.cov(a["X"], **o),
        lambda r: {"X": r.standard_normal((5, 3))},
        {**_DATA_MATRIX, Bad.OPTION: option("correction", -1)},
    ),
    "affine_mean": Entry(
        lambda a, **o: m.affine_mean(a["m"], a["A"], a["b"]),
        lambda r: {"m": _vec3(r), "A": r.standard_normal((2, 3)), "b": r.standard_normal(2)},
        {
            Bad.NDIM: on("m"),
            Bad.SHAPE: on("b", _shorter),
            Bad.NONFINITE: on("A"),
            Bad.EMPTY: on("m"),
            Bad.DTYPE: on("b"),
            Bad.MIXED: on("b"),
            Bad.DEVICE: on("A"),
            Bad.NONARRAY: on("m"),
        },
    ),
    "affine_cov": Entry(
        lambda a, **o: m.affine_cov(a["S"], a["A"]),
        lambda r: {"S": _spd(r), "A": r.standard_normal((2, 3))},
        {
            Bad.NDIM: on("S"),
            Bad.SHAPE: on("A", _shorter),
            Bad.NONFINITE: on("S"),
            Bad.EMPTY: on("S", lambda S, ctx: S[:0, :0]),
            Bad.DTYPE: on("A"),
            Bad.MIXED: on("A"),
            Bad.DEVICE: on("S"),
            Bad.NONARRAY: on("S"),
        },
    ),
    "inner_product": Entry(
        lambda a, **o: m.inner_product(a["x"], a["y"], A=a["A"]), _two_vectors, _VECTOR_PAIR
    ),
    "distance": Entry(
        lambda a, **o: m.distance(a["x"], a["y"], A=a["A"]), _two_vectors, _VECTOR_PAIR
    ),
    "angle": Entry(lambda a, **o: m.angle(a["x"], a["y"], A=a["A"]), _two_vectors, _VECTOR_PAIR),
    "norm": Entry(
        lambda a, **o: m.norm(a["x"], A=a["A"]),
        lambda r: {"x": _vec3(r), "A": _spd(r)},
        {
            Bad.NDIM: on("A"),
            Bad.SHAPE: on("A", lambda A, ctx: A[:2, :2]),
            Bad.NONFINITE: on("x"),
            Bad.EMPTY: on("x"),
            Bad.DTYPE: on("x"),
            Bad.MIXED: on("A"),
            Bad.DEVICE: on("A"),
            Bad.NONARRAY: on("x"),
        },
    ),
    "pairwise_distances": Entry(
        lambda a, **o: m.pairwise_distances(a["X"], a["Y"]),
        lambda r: {"X": r.standard_normal((4, 3)), "Y": r.standard_normal((5, 3))},
        {
            **_DATA_MATRIX,
            Bad.SHAPE: on("Y", _shorter),
            Bad.MIXED: on("Y"),
            Bad.DEVICE: on("Y"),
        },
    ),
    "projection_matrix": Entry(
        lambda a, **o: m.projection_matrix(a["B"]),
        lambda r: {"B": r.standard_normal((3, 2))},
        {
            Bad.NDIM: on("B"),
            Bad.NONFINITE: on("B"),
            Bad.EMPTY: on("B"),
            Bad.DTYPE: on("B"),
            Bad.NONARRAY: on("B"),
        },
    ),
    "project": Entry(
        lambda a, **o: m.project(a["x"], a["B"]),
        lambda r: {"x": _vec3(r), "B": r.standard_normal((3, 2))},
        {
            Bad.NDIM: on("B"),
            Bad.SHAPE: on("x", _shorter),
            Bad.NONFINITE: on("x"),
            Bad.EMPTY: on("x"),
            Bad.DTYPE: on("B"),
            Bad.MIXED: on("B"),
            Bad.DEVICE: on("B"),
            Bad.NONARRAY: on("x"),
        },
    ),
    # Course 2: multivariate calculus
    "jacobian": Entry(
        lambda a, **o: m.jacobian(_vector_field, a["x"], **o),
        lambda r: {"x": np.array([1.0, 0.5])},
        _FUNCTION_AT_POINT,
    ),
    "hessian": Entry(
        lambda a, **o: m.hessian(_cubic, a["x"], **o),
        lambda r: {"x": np.array([1.0, 2.0])},
        _FUNCTION_AT_POINT,
    ),
    "newton_raphson": Entry(
        lambda a, **o: m.newton_raphson(lambda x: x**2 - 2.0, lambda x: 2.0 * x, a["x0"], **o),
        lambda r: {"x0": np.asarray(1.0)},
        {
            Bad.NDIM: on("x0", lambda v, ctx: ctx.xp.reshape(v, (1, 1))),
            Bad.NONFINITE: on("x0"),
            Bad.EMPTY: on("x0", lambda v, ctx: ctx.xp.reshape(v, (1,))[:0]),
            Bad.DTYPE: on("x0"),
            Bad.NONARRAY: on("x0", lambda v, ctx: "one"),
            Bad.OPTION: option("tol", -1.0),
        },
        convergence={"max_iter": 1},
    ),
    "newton_step": Entry(
        lambda a, **o: m.newton_step(a["J"], a["H"]),
        lambda r: {"J": np.array([2.0, 4.0]), "H": np.array([[2.0, 0.5], [0.5, 4.0]])},
        {
            Bad.NDIM: on("J"),
            Bad.SHAPE: on("J", _shorter),
            Bad.NONFINITE: on("H"),
            Bad.EMPTY: on("J"),
            Bad.DTYPE: on("H"),
            Bad.MIXED: on("H"),
            Bad.DEVICE: on("H"),
            Bad.NONARRAY: on("J"),
        },
    ),
    "sandpit_step": Entry(
        lambda a, **o: m.sandpit_step(a["J"], a["H"], **o),
        lambda r: {"J": np.array([1.0, 0.0]), "H": np.array([[-1.0, 0.0], [0.0, 1.0]])},
        {
            Bad.NDIM: on("J"),
            Bad.SHAPE: on("H", _non_square),
            Bad.NONFINITE: on("J"),
            Bad.EMPTY: on("J"),
            Bad.DTYPE: on("H"),
            Bad.MIXED: on("H"),
            Bad.DEVICE: on("H"),
            Bad.NONARRAY: on("H"),
            Bad.OPTION: option("gamma", -0.5),
        },
    ),
    "lagrange_multipliers": Entry(
        lambda a, **o: m.lagrange_multipliers(_product, _on_line, a["x0"], **o),
        lambda r: {"x0": np.array([0.5, 1.0])},
        {
            Bad.NDIM: on("x0"),
            Bad.NONFINITE: on("x0"),
            Bad.EMPTY: on("x0"),
            Bad.DTYPE: on("x0"),
            Bad.NONARRAY: on("x0"),
            Bad.OPTION: option("max_iter", 0),
        },
        convergence={"max_iter": 1},
    ),
    "gradient_descent": Entry(
        lambda a, **o: m.gradient_descent(
            _bowl_gradient, a["x0"], **{"lr": 0.25, "n_steps": 3, **o}
        ),
        lambda r: {"x0": np.array([1.0, -1.0])},
        {
            Bad.NONFINITE: on("x0"),
            Bad.EMPTY: on("x0"),
            Bad.DTYPE: on("x0"),
            Bad.NONARRAY: on("x0"),
            Bad.OPTION: option("n_steps", -1),
        },
    ),
    "minimize": Entry(
        lambda a, **o: m.minimize(_bowl_gradient, a["x0"], optimizer=m.momentum(0.1), **o),
        lambda r: {"x0": np.array([0.0, 1.0])},
        {
            Bad.NONFINITE: on("x0"),
            Bad.EMPTY: on("x0"),
            Bad.DTYPE: on("x0"),
            Bad.NONARRAY: on("x0"),
            Bad.OPTION: option("tol", -1.0),
        },
        convergence={"max_iter": 1},
    ),
    "sgd": Entry(
        _optimizer_call(m.sgd),
        lambda r: {"params": r.standard_normal(3), "grads": r.standard_normal(3)},
        {
            **_OPTIMIZER_STEP,
            # sgd keeps no state shaped like the parameters: the step they meet is
            # apply_updates, which names its own argument
            Bad.SHAPE: on("grads", _shorter, expect="updates"),
            Bad.MIXED: on("grads", expect="updates"),
            Bad.DEVICE: on("grads", expect="updates"),
            Bad.NONARRAY: on("grads", expect="updates"),
            Bad.OPTION: option("lr", -0.1),
        },
        dtype_of="params",
    ),
    "momentum": Entry(
        _optimizer_call(m.momentum),
        lambda r: {"params": r.standard_normal(3), "grads": r.standard_normal(3)},
        {**_OPTIMIZER_STEP, Bad.OPTION: option("beta", 1.0)},
        dtype_of="params",
    ),
    "adam": Entry(
        _optimizer_call(m.adam),
        lambda r: {"params": r.standard_normal(3), "grads": r.standard_normal(3)},
        {**_OPTIMIZER_STEP, Bad.OPTION: option("b1", -0.9)},
        dtype_of="params",
    ),
    "apply_updates": Entry(
        lambda a, **o: m.apply_updates(a["params"], a["updates"]),
        lambda r: {"params": [r.standard_normal(3)], "updates": [r.standard_normal(3)]},
        {
            Bad.SHAPE: on("updates", lambda u, ctx: [u[0][:-1]]),
            Bad.MIXED: on("updates", lambda u, ctx: [ctx.foreign(np.zeros(3))]),
            Bad.DEVICE: on("updates", lambda u, ctx: [ctx.elsewhere(np.zeros(3))]),
            Bad.NONARRAY: on("updates", lambda u, ctx: ["zero"]),
        },
    ),
    "init_mlp": Entry(
        lambda a, **o: m.init_mlp([1, 4, 2], xp=a["xp"], device=a["device"], **{"seed": 0, **o}),
        lambda r: {},
        {Bad.OPTION: option("init", "xavier")},
        seeded={},
        creates=True,
    ),
    "mlp_forward": Entry(lambda a, **o: m.mlp_forward(a["params"], a["X"], **o), _mlp_data, _MLP),
    "mlp_backprop": Entry(
        lambda a, **o: m.mlp_backprop(a["params"], a["X"], a["Y"], **o),
        _mlp_data,
        {**_MLP, Bad.SHAPE: on("Y", _fewer_rows), Bad.OPTION: option("loss", "hinge")},
    ),
    "train_mlp": Entry(
        _train_call,
        _mlp_data,
        {**_MLP, Bad.SHAPE: on("Y", _fewer_rows), Bad.OPTION: option("epochs", -1)},
        seeded={},
    ),
    "heart_curve": Entry(
        lambda a, **o: m.heart_curve(**{"n": 16, **o}, xp=a["xp"], device=a["device"]),
        lambda r: {},
        {Bad.OPTION: option("n", 0)},
        creates=True,
    ),
    "heights_data": Entry(
        lambda a, **o: m.heights_data(xp=a["xp"], device=a["device"], **o),
        lambda r: {},
        _CREATOR,
        creates=True,
    ),
    "linear_regression": Entry(
        lambda a, **o: m.linear_regression(a["X"], a["y"]),
        lambda r: {"X": r.standard_normal((8, 2)), "y": r.standard_normal(8)},
        {
            Bad.NDIM: on("X", lambda X, ctx: X[None, ...]),
            Bad.SHAPE: on("y", _fewer_rows),
            Bad.NONFINITE: on("y"),
            Bad.EMPTY: on("X", lambda X, ctx: X[:, :0]),
            Bad.DTYPE: on("y"),
            Bad.MIXED: on("y"),
            Bad.DEVICE: on("y"),
            Bad.NONARRAY: on("X"),
        },
    ),
    "levenberg_marquardt": Entry(
        lambda a, **o: m.levenberg_marquardt(_exp_decay(a), a["x0"], **o),
        _decay_data,
        {
            Bad.NDIM: on("x0", lambda v, ctx: v[None, ...]),
            Bad.NONFINITE: on("x0"),
            Bad.EMPTY: on("x0"),
            Bad.DTYPE: on("x0"),
            Bad.NONARRAY: on("x0"),
            Bad.OPTION: option("ftol", -1.0),
        },
        convergence={"max_nfev": 1},
    ),
    "levenberg_marquardt_batched": Entry(
        lambda a, **o: m.levenberg_marquardt_batched(
            _exp_decay_batched, a["x0_batch"], args=(a["t"], a["Y"]), **o
        ),
        lambda r: {
            "x0_batch": np.ones((3, 2)),
            "t": np.tile(np.linspace(0.0, 4.0, 12), (3, 1)),
            "Y": 3.0 * np.exp(-np.array([[0.5], [1.0], [2.0]]) * np.linspace(0.0, 4.0, 12)),
        },
        {
            Bad.NDIM: on("x0_batch", lambda v, ctx: v[0, ...]),
            Bad.NONFINITE: on("x0_batch"),
            Bad.EMPTY: on("x0_batch"),
            Bad.DTYPE: on("x0_batch"),
            Bad.MIXED: on("Y", expect="args"),
            Bad.DEVICE: on("t", expect="args"),
            Bad.NONARRAY: on("x0_batch"),
            Bad.OPTION: option("factor", 0.0),
        },
        convergence={"max_nfev": 1},
        converged=lambda result: result.converged[0],
        xfail_convergence={"dask.array": "lazy result: `converged` is read after computing"},
        dtype_of="x0_batch",
    ),
    "curve_fit": Entry(
        lambda a, **o: m.curve_fit(_curve, a["x"], a["y"], a["p0"], sigma=a["sigma"], **o),
        lambda r: {
            "x": np.linspace(0.0, 4.0, 12),
            "y": 3.0 * np.exp(-0.7 * np.linspace(0.0, 4.0, 12)) + 0.01 * r.standard_normal(12),
            "p0": np.array([1.0, 1.0]),
            "sigma": np.full(12, 0.01),
        },
        {
            Bad.NDIM: on("p0", lambda v, ctx: v[None, None, ...]),
            Bad.SHAPE: on("y", _shorter),
            Bad.NONFINITE: on("y"),
            Bad.EMPTY: on("y"),
            Bad.DTYPE: on("y"),
            Bad.MIXED: on("y"),
            Bad.DEVICE: on("sigma"),
            Bad.NONARRAY: on("x"),
            Bad.OPTION: option("xtol", -1.0),
        },
        convergence={"max_nfev": 1},
        converged=lambda fit: fit.result.converged,
    ),
    "load_nist_strd": Entry(  # Misra1a ships with the package: no data directory needed
        lambda a, **o: m.load_nist_strd("Misra1a", xp=a["xp"], device=a["device"], **o),
        lambda r: {},
        _CREATOR,
        creates=True,
    ),
    "load_mnist": Entry(
        lambda a, **o: m.load_mnist(**{"limit": 20, **o}, xp=a["xp"], device=a["device"]),
        lambda r: {},
        {Bad.OPTION: option("kind", "validation")},
        creates=True,
    ),
    # Course 3: PCA
    "pca": Entry(
        lambda a, **o: m.pca(a["X"], 2, **o),
        _pca_data,
        {**_DATA_MATRIX, Bad.OPTION: option("method", "nipals")},
        seeded={"method": "randomized"},
        xfail_seeded={"dask.array": "randomized PCA is in-memory; Dask takes covariance_eigh"},
    ),
    "PCA": Entry(
        _pca_class_call,
        lambda r: {**_pca_data(r), "Z": _pca_data(np.random.default_rng(9))["X"]},
        {
            **_DATA_MATRIX,
            Bad.SHAPE: on("Z", _shorter, expect="X"),  # transform(X)
            Bad.MIXED: on("Z", expect="X"),
            Bad.DEVICE: on("Z", expect="X"),
            Bad.OPTION: option("method", "nipals"),
        },
        seeded={"method": "randomized"},
        xfail_seeded={"dask.array": "randomized PCA is in-memory; Dask takes covariance_eigh"},
        dtype_of="X",
    ),
    "reconstruct": Entry(
        lambda a, **o: m.reconstruct(a["X"], _pca_result(a)),
        lambda r: {**_pca_data(r), "R": _pca_data(r)["X"]},
        {
            **_DATA_MATRIX,
            Bad.SHAPE: on("X", _shorter),
            Bad.MIXED: on("X"),
            Bad.DEVICE: on("X"),
        },
    ),
    "reconstruction_error": Entry(
        lambda a, **o: m.reconstruction_error(a["X"], _pca_result(a)),
        lambda r: {**_pca_data(r), "R": _pca_data(r)["X"]},
        {
            **_DATA_MATRIX,
            Bad.SHAPE: on("X", _shorter),
            Bad.MIXED: on("X"),
            Bad.DEVICE: on("X"),
        },
    ),
    "streaming_pca": Entry(
        _streaming_call,
        _pca_data,
        {
            Bad.NDIM: on("chunks", lambda v, ctx: [ctx.a["X"][None, ...]]),
            Bad.SHAPE: on("chunks", lambda v, ctx: [ctx.a["X"], ctx.a["X"][:, :-1]]),
            Bad.NONFINITE: on("chunks", lambda v, ctx: [ctx.with_nan(ctx.a["X"])]),
            Bad.EMPTY: on("chunks", lambda v, ctx: []),
            Bad.DTYPE: on("chunks", lambda v, ctx: [ctx.xp.astype(ctx.a["X"], ctx.xp.complex128)]),
            Bad.MASKED: on("chunks", lambda v, ctx: [ctx.a["X"], ctx.masked(ctx.a["X"])]),
            Bad.HALF: on("chunks", lambda v, ctx: [ctx.half(ctx.a["X"])]),
            Bad.NONARRAY: on("chunks", lambda v, ctx: ["rows"]),
            Bad.OPTION: option("checkpoint_every", 0),
        },
    ),
}


# Masked arrays and floats narrower than float32 are refused wherever a wrong
# dtype kind is: the same argument, changed generically.
for _entry in FUNCTIONS.values():
    _dtype = _entry.bad.get(Bad.DTYPE)
    if _dtype is not None and not _dtype.options:
        for _bad in (Bad.MASKED, Bad.HALF):
            _entry.bad.setdefault(_bad, on(_dtype.arg, expect=_dtype.expect))


def _raises_convergence_error(entry: str) -> Callable[[dict[str, Any]], Any]:
    return lambda a: FUNCTIONS[entry].call(a, **FUNCTIONS[entry].convergence, raise_on_failure=True)


@dataclass(frozen=True)
class TypeEntry:
    """A public class other than a function: the registry entry that produces it.

    `produced_by` names a ``FUNCTIONS`` entry; its valid call (or, with `how`
    ``"warns"`` / ``"raises"``, the call in `make`) returns, warns or raises it.
    """

    produced_by: str
    how: str = "returns"
    make: Callable[[dict[str, Any]], Any] | None = None


TYPES: dict[str, TypeEntry] = {
    "PCAResult": TypeEntry("pca"),
    "EigResult": TypeEntry("power_iteration"),
    "PageRankResult": TypeEntry("pagerank"),
    "RootResult": TypeEntry("newton_raphson"),
    "LagrangeResult": TypeEntry("lagrange_multipliers"),
    "OptimizeResult": TypeEntry("minimize"),
    "DescentPath": TypeEntry("gradient_descent"),
    "Optimizer": TypeEntry("sgd", make=lambda a: m.sgd(0.1)),
    "Backprop": TypeEntry("mlp_backprop"),
    "TrainResult": TypeEntry("train_mlp"),
    "LinearFit": TypeEntry("linear_regression"),
    "LMResult": TypeEntry("levenberg_marquardt"),
    "BatchedLMResult": TypeEntry("levenberg_marquardt_batched"),
    "CurveFit": TypeEntry("curve_fit"),
    "NISTProblem": TypeEntry("load_nist_strd"),
    "StreamingState": TypeEntry(
        "PCA",
        make=lambda a: m.StreamingState.from_state_dict(
            m.PCA(2).partial_fit(a["X"]).partial_fit(a["Z"]).state_dict()
        ),
    ),
    "ConvergenceWarning": TypeEntry(
        "power_iteration",
        how="warns",
        make=lambda a: FUNCTIONS["power_iteration"].call(a, max_iter=1),
    ),
    "ConvergenceError": TypeEntry(
        "power_iteration", how="raises", make=_raises_convergence_error("power_iteration")
    ),
    "RankWarning": TypeEntry(
        "linear_regression",
        how="warns",
        make=lambda a: m.linear_regression(_ns(a["X"]).concat([a["X"], a["X"]], axis=1), a["y"]),
    ),
}
