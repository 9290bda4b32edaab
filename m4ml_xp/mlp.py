"""Course 2 project — a multilayer perceptron: parameters, forward pass, backpropagation.

Layout (see COURSE.md): examples are *rows* — ``X`` is ``(N, n_in)``, targets
``Y`` are ``(N, n_out)`` — and a layer is ``a_out = act(a_in @ W + b)`` with
``W`` of shape ``(n_in, n_out)``.  The course keeps examples as columns, so its
weights and gradients are the transposes of these.  No automatic
differentiation is used: the gradients are the chain rule written out.
Training lives in :mod:`m4ml_xp.mlp_training`; :mod:`m4ml_xp.nn` gathers both.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

from m4ml_xp import _checks, _xp
from m4ml_xp._xp import Array, Namespace, device

Params = list[tuple[Array, Array]]

__all__ = ["Backprop", "init_mlp", "mlp_backprop", "mlp_forward"]


_ACTIVATIONS = ("sigmoid", "tanh", "relu")
_OUTPUTS = ("sigmoid", "softmax", "linear")
_LOSSES = ("squared_error", "cross_entropy")
_INITS = ("course", "glorot", "he")


class Backprop(NamedTuple):
    """Result of :func:`mlp_backprop`: ``(dW, db)`` per layer and the cost (0-d array)."""

    grads: Params
    cost: Array


# --------------------------------------------------------------------------- parameters
def init_mlp(
    layer_sizes: Sequence[int],
    *,
    seed: int | None = 0,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
    init: str = "course",
) -> Params:
    """Random parameters ``[(W1, b1), (W2, b2), ...]`` for the given layer sizes.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, hidden..., n_out]``, each ``>= 1``, at least two.
    seed : int or None
        Seed of the NumPy ``Generator`` the weights are drawn from (the same
        numbers on every backend).
    xp, device, dtype : optional
        Namespace (default NumPy), device and floating dtype (default: the
        device's default float).
    init : {"course", "glorot", "he"}
        ``"course"``: every weight and bias ``randn/2``, the course's start.
        ``"glorot"``: ``W ~ N(0, 2/(n_in+n_out))``, zero biases (sigmoid, tanh).
        ``"he"``: ``W ~ N(0, 2/n_in)``, zero biases (ReLU).

    Returns
    -------
    list of (W, b)
        ``W`` is ``(n_in, n_out)``, ``b`` is ``(n_out,)``.

    Examples
    --------
    >>> from m4ml_xp import init_mlp
    >>> params = init_mlp([1, 6, 7, 2], seed=0)
    >>> [(W.shape, b.shape) for W, b in params]
    [((1, 6), (6,)), ((6, 7), (7,)), ((7, 2), (2,))]
    """
    sizes = _layer_sizes(layer_sizes)
    _checks.check_choice(init, "init", _INITS)
    xp = _checks.creation_namespace(xp, device)
    dtype = _checks.check_float_dtype(dtype, xp=xp, device=device)
    rng = _xp.generator(_checks.check_seed(seed))
    params = []
    for n_in, n_out in itertools.pairwise(sizes):
        scale = {"course": 0.5, "glorot": math.sqrt(2 / (n_in + n_out)), "he": math.sqrt(2 / n_in)}
        W = xp.asarray(rng.standard_normal((n_in, n_out)) * scale[init], dtype=dtype, device=device)
        if init == "course":  # drawn right after its W, as the course's cells do
            b = xp.asarray(rng.standard_normal(n_out) / 2, dtype=dtype, device=device)
        else:
            b = xp.zeros(n_out, dtype=dtype, device=device)
        params.append((W, b))
    return params


def _layer_sizes(layer_sizes: Any) -> list[int]:
    if isinstance(layer_sizes, str | bytes) or not isinstance(layer_sizes, Sequence):
        msg = f"`layer_sizes` must be a sequence of integers; got {type(layer_sizes).__name__}"
        raise TypeError(msg)
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        msg = f"`layer_sizes` must list at least an input and an output size; got {sizes}"
        raise ValueError(msg)
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"`layer_sizes` must hold integers; got {size!r}")
        if size < 1:
            raise ValueError(f"`layer_sizes` must all be >= 1; got {sizes}")
    return [int(s) for s in sizes]


def _check_params(params: Any, *, finite: bool = False) -> tuple[Namespace, Params]:
    """Layers ``(W, b)`` chained consistently; returns their namespace and the list.

    With `finite`, NaN or infinite parameters are refused (on Dask when computed).
    """
    if isinstance(params, str | bytes) or not isinstance(params, Sequence) or not params:
        msg = f"`params` must be a non-empty list of (W, b) pairs from init_mlp; got {type(params).__name__}"
        raise TypeError(msg)
    arrays: dict[str, Any] = {}
    for i, layer in enumerate(params):
        if not isinstance(layer, Sequence) or len(layer) != 2:
            raise TypeError(f"`params[{i}]` must be a (W, b) pair; got {type(layer).__name__}")
        arrays[f"params[{i}][0]"], arrays[f"params[{i}][1]"] = layer
    xp = _checks.namespace(**arrays)
    for i, (W, b) in enumerate(params):
        if W.ndim != 2 or b.ndim != 1 or b.shape[0] != W.shape[1]:
            msg = (
                f"`params[{i}]` must be W (n_in, n_out) and b (n_out,); "
                f"got shapes {tuple(W.shape)} and {tuple(b.shape)}"
            )
            raise ValueError(msg)
        if i and W.shape[0] != (previous := params[i - 1][0].shape[1]):
            msg = f"`params[{i}]` takes {W.shape[0]} inputs but layer {i - 1} gives {previous}"
            raise ValueError(msg)
        if not (xp.isdtype(W.dtype, "real floating") and b.dtype == W.dtype):
            msg = f"`params[{i}]` must be real floating arrays of one dtype; got {W.dtype} and {b.dtype}"
            raise TypeError(msg)
        _checks.check_wide_float(W.dtype, f"params[{i}][0]", xp=xp)
    if not finite:
        return xp, [tuple(layer) for layer in params]
    message = "`params[{}][{}]` must contain only finite values; it has NaN or infinity"
    return xp, [
        tuple(
            _checks.check_values(a, _checks.all_finite, message.format(i, j))
            for j, a in enumerate(layer)
        )
        for i, layer in enumerate(params)
    ]


def _options(activation: str, output: str, loss: str | None = None) -> None:
    _checks.check_choice(activation, "activation", _ACTIVATIONS)
    _checks.check_choice(output, "output", _OUTPUTS)
    if loss is not None:
        _checks.check_choice(loss, "loss", _LOSSES)
        if loss == "cross_entropy" and output == "linear":
            msg = "`loss='cross_entropy'` needs probabilities: use output='softmax' or 'sigmoid'"
            raise ValueError(msg)


def _inputs(
    X: Array, params: Params, *, xp: Namespace, finite: bool = True, name: str = "X"
) -> Array:
    # same library and device as the parameters
    _checks.namespace(**{"params": params[0][0], name: X})
    X = _checks.check_real_array(X, name, xp=xp, ndim=2, finite=finite)
    n_in = params[0][0].shape[0]
    if X.shape[1] != n_in:
        msg = f"`{name}` must have {n_in} columns (the first layer's inputs); got shape {tuple(X.shape)}"
        raise ValueError(msg)
    dtype = params[0][0].dtype
    return X if X.dtype == dtype else xp.astype(X, dtype)


def _targets(
    Y: Array,
    X: Array,
    n_out: int,
    *,
    xp: Namespace,
    values: bool = True,
    names: tuple[str, str] = ("X", "Y"),
) -> Array:
    """Return validated targets: ``(N, n_out)`` floats, or integer class labels ``(N,)`` in range.

    Labels stay labels (one-hot rows are made per batch, inside the compiled step).
    ``values=False`` checks only shapes and dtypes (the caller checks the values).
    `names` are the caller's names for `X` and `Y`, for the messages.
    """
    y_name = names[1]
    if Y.ndim == 1 and xp.isdtype(Y.dtype, "integral"):
        _checks.check_same_rows(X, Y, names)
        if not values:
            return Y
        if Y.shape[0] and _xp.is_lazy(Y):  # Dask: checked chunk by chunk when computed
            msg = f"`{y_name}` labels must be in [0, {n_out}) for {n_out} outputs"
            Y = _checks.check_values(Y, lambda y: (y.min() >= 0) & (y.max() < n_out), msg)
        elif Y.shape[0]:
            low, high = _xp.to_host(xp.stack([xp.min(Y), xp.max(Y)]))
            if low < 0 or high >= n_out:
                msg = f"`{y_name}` labels must be in [0, {n_out}) for {n_out} outputs; got values in [{low}, {high}]"
                raise ValueError(msg)
        return Y
    Y = _checks.check_real_array(Y, y_name, xp=xp, ndim=2, allow_bool=True, finite=values)
    _checks.check_same_rows(X, Y, names)
    if Y.shape[1] != n_out:
        msg = f"`{y_name}` must have {n_out} columns (the last layer's outputs) or be integer labels; got shape {tuple(Y.shape)}"
        raise ValueError(msg)
    return Y if Y.dtype == X.dtype else xp.astype(Y, X.dtype)


# --------------------------------------------------------------------------- forward / backward
def _sigmoid(z: Array, xp: Namespace) -> Array:
    # σ(z) = (1 + tanh(z/2)) / 2: no overflow for large |z|, unlike 1/(1 + exp(−z))
    return 0.5 * xp.tanh(0.5 * z) + 0.5


def _hidden(z: Array, name: str, xp: Namespace) -> Array:
    if name == "sigmoid":
        return _sigmoid(z, xp)
    if name == "tanh":
        return xp.tanh(z)
    return xp.maximum(z, xp.zeros((), dtype=z.dtype, device=device(z)))


def _hidden_slope(a: Array, name: str, xp: Namespace) -> Array:
    """Return the activation's derivative, from its output: σ′ = a(1−a), tanh′ = 1−a², relu′ = [a>0]."""
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a * a
    return xp.astype(a > 0, a.dtype)


@_xp.fused("activation", "output")
def _forward(
    params: Params, X: Array, activation: str, output: str, *, xp: Namespace
) -> tuple[list[Array], Array]:
    """Activations ``[X, a1, ..., aL]`` and the last pre-activation ``zL``."""
    activations = [X]
    for W, b in params[:-1]:
        activations.append(_hidden(activations[-1] @ W + b, activation, xp))
    W, b = params[-1]
    z = activations[-1] @ W + b
    if output == "sigmoid":
        a = _sigmoid(z, xp)
    elif output == "softmax":
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        a = e / xp.sum(e, axis=1, keepdims=True)
    else:
        a = z
    activations.append(a)
    return activations, z


def _one_hot(Y: Array, like: Array, *, xp: Namespace) -> Array:
    """Integer labels ``(N,)`` as one-hot rows shaped like `like`; float targets unchanged."""
    if Y.ndim == 2:
        return Y
    classes = xp.arange(like.shape[1], dtype=Y.dtype, device=device(Y))
    return xp.astype(Y[:, None] == classes[None, :], like.dtype)


def _cost_and_delta(
    a: Array, z: Array, Y: Array, output: str, loss: str, *, xp: Namespace
) -> tuple[Array, Array]:
    """Return the cost (averaged over examples) and ∂C/∂zL; `Y` targets or integer labels."""
    n = a.shape[0]
    Y = _one_hot(Y, a, xp=xp)
    if loss == "squared_error":
        diff = a - Y
        cost = xp.sum(diff * diff) / n
        grad_a = (2 / n) * diff
        if output == "sigmoid":
            return cost, grad_a * (a * (1 - a))
        if output == "softmax":  # the softmax Jacobian applied to grad_a, row by row
            return cost, a * (grad_a - xp.sum(grad_a * a, axis=1, keepdims=True))
        return cost, grad_a
    if output == "softmax":
        shifted = z - xp.max(z, axis=1, keepdims=True)
        log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
        # ∂/∂z of −Σ y·log softmax(z) is a·Σy − y: a − y only for rows that sum to 1
        return -xp.sum(Y * log_p) / n, (a * xp.sum(Y, axis=1, keepdims=True) - Y) / n
    # sigmoid outputs, binary cross-entropy per output: log(1 + e^z) − y·z, written stably
    softplus = xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.sum(softplus - Y * z) / n, (a - Y) / n


@_xp.fused("activation", "output", "loss")
def _backprop(
    params: Params, X: Array, Y: Array, activation: str, output: str, loss: str, *, xp: Namespace
) -> tuple[Params, Array]:
    activations, z = _forward(params, X, activation, output, xp=xp)
    cost, delta = _cost_and_delta(activations[-1], z, Y, output, loss, xp=xp)
    grads: list[tuple[Array, Array]] = []
    for layer in range(len(params) - 1, -1, -1):
        a_in = activations[layer]
        grads.append((a_in.T @ delta, xp.sum(delta, axis=0)))
        if layer:
            delta = (delta @ params[layer][0].T) * _hidden_slope(a_in, activation, xp)
    return grads[::-1], cost


@_xp.full_precision
def mlp_forward(
    params: Params, X: Array, *, activation: str = "sigmoid", output: str = "sigmoid"
) -> list[Array]:
    """Feed `X` forward: the activations of every layer, input first.

    Parameters
    ----------
    params : list of (W, b)
        From :func:`init_mlp`.
    X : (N, n_in) array
        Examples as rows; cast to the parameters' dtype.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden layers' activation.
    output : {"sigmoid", "softmax", "linear"}
        Output layer's activation.

    Returns
    -------
    list of arrays
        ``[X, a1, ..., aL]`` — the course's ``a0, a1, a2, a3``; the last is the
        network's output ``(N, n_out)``.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import init_mlp, mlp_forward
    >>> params = init_mlp([1, 6, 7, 2], seed=0)
    >>> mlp_forward(params, np.linspace(0, 1, 5)[:, None])[-1].shape
    (5, 2)
    """
    xp, params = _check_params(params)
    _options(activation, output)
    X = _inputs(X, params, xp=xp)
    return _forward(params, X, activation, output, xp=xp)[0]


@_xp.full_precision
def mlp_backprop(
    params: Params,
    X: Array,
    Y: Array,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    loss: str = "squared_error",
) -> Backprop:
    """Gradients of the cost with respect to every parameter, by backpropagation.

    Parameters
    ----------
    params : list of (W, b)
        From :func:`init_mlp`.
    X : (N, n_in) array
        Examples as rows.
    Y : (N, n_out) array, or (N,) integer class labels (one-hot encoded)
        Targets.
    activation, output
        As for :func:`mlp_forward`.
    loss : {"squared_error", "cross_entropy"}
        ``"squared_error"``: ``C = ‖a_L − Y‖²_F / N``, summed over outputs and
        averaged over examples (the course's cost).  ``"cross_entropy"``:
        ``−Σ Y log a_L / N`` for softmax outputs, the binary cross-entropy
        summed over outputs for sigmoid outputs.

    Returns
    -------
    Backprop
        ``grads``: ``(dW, db)`` per layer, shaped like the parameters; ``cost``: 0-d.

    Examples
    --------
    >>> import numpy as np
    >>> from m4ml_xp import heart_curve, init_mlp, mlp_backprop
    >>> X, Y = heart_curve(100)
    >>> result = mlp_backprop(init_mlp([1, 6, 7, 2], seed=0), X, Y)
    >>> [dW.shape for dW, db in result.grads], result.cost.shape
    ([(1, 6), (6, 7), (7, 2)], ())
    """
    xp, params = _check_params(params)
    _options(activation, output, loss)
    X = _inputs(X, params, xp=xp)
    _checks.namespace(X=X, Y=Y)
    Y = _targets(Y, X, params[-1][0].shape[1], xp=xp)
    grads, cost = _backprop(params, X, Y, activation, output, loss, xp=xp)
    return Backprop(grads, cost)
