"""Course 2 project — training the multilayer perceptron of :mod:`m4ml_xp.mlp`.

Mini-batch training with an optimiser of :mod:`m4ml_xp.optimize`, validation and
early stopping; the gradients are :mod:`m4ml_xp.mlp`'s hand-written backpropagation.
:mod:`m4ml_xp.nn` gathers both.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

from m4ml_xp import _checks, _xp
from m4ml_xp._xp import Array, Namespace, device
from m4ml_xp.errors import ConvergenceWarning, warn
from m4ml_xp.mlp import (
    Params,
    _backprop,
    _check_params,
    _cost_and_delta,
    _forward,
    _inputs,
    _options,
    _targets,
)
from m4ml_xp.optimize import Optimizer, apply_updates, check_optimizer

__all__ = ["TrainResult", "train_mlp"]


class TrainResult(NamedTuple):
    """Result of :func:`train_mlp`.

    `losses` is the mean training cost of each epoch run; `val_losses` the cost
    on the validation set after each epoch (empty without one).  `status`: 0
    completed, 1 early stopped (validation cost stopped improving; the best
    parameters are returned), 2 diverged (the cost became NaN or infinite; the
    parameters from before that epoch are returned); `message` says which.
    """

    params: Params
    losses: list[float]
    val_losses: list[float]
    n_epochs: int
    status: int
    message: str


# --------------------------------------------------------------------------- training
@_xp.full_precision
def train_mlp(
    params: Params,
    X: Array,
    Y: Array,
    *,
    optimizer: Optimizer,
    epochs: int = 10,
    batch_size: int | None = None,
    seed: int | None = 0,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    loss: str = "squared_error",
    validation: tuple[Array, Array] | None = None,
    patience: int | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train an MLP by mini-batch gradient descent with backpropagated gradients.

    Each epoch shuffles the examples with NumPy's ``Generator(seed)`` (the same
    order on every backend) and takes one optimiser step per batch.  On JAX the
    whole step — batch gather, backprop, optimiser update — is compiled once
    with ``jax.jit``.  The cost is summed on the device and read once per epoch.

    Parameters
    ----------
    params : list of (W, b)
        Starting parameters (:func:`init_mlp`); not modified.
    X : (N, n_in) array
        Training examples as rows.
    Y : (N, n_out) array or (N,) integer labels
        Targets.
    optimizer : Optimizer
        :func:`~m4ml_xp.sgd` (the course's fixed "aggression"), momentum, adam, ...
    epochs : int
        Passes over the data.
    batch_size : int, optional
        Examples per step; default all of them (full-batch, as in the course).
    seed : int or None
        Shuffling seed.
    activation, output, loss
        As for :func:`mlp_backprop`.
    validation : (X_val, Y_val), optional
        Evaluated after every epoch (``val_losses``).
    patience : int, optional
        With `validation`: stop when its cost has not improved for `patience`
        epochs, returning the best parameters.
    progress : bool or None
        Show a progress bar (tqdm); ``None`` shows it only on a terminal.

    Returns
    -------
    TrainResult
        ``params``, ``losses`` (mean cost per epoch), ``val_losses``,
        ``n_epochs``, ``status`` (0 completed, 1 early stopped, 2 diverged), ``message``.

    Warns
    -----
    ConvergenceWarning
        If the cost becomes NaN or infinite (``status=2``, diverged): training
        stops and the parameters from before that epoch are returned.

    Examples
    --------
    >>> from m4ml_xp import heart_curve, init_mlp, sgd, train_mlp
    >>> X, Y = heart_curve(100)
    >>> result = train_mlp(init_mlp([1, 6, 7, 2], seed=0), X, Y, optimizer=sgd(7.0), epochs=200)
    >>> result.losses[-1] < result.losses[0], result.status, result.message
    (True, 0, 'completed all 200 epochs')
    """
    xp, params = _check_params(params, finite=True)
    _options(activation, output, loss)
    check_optimizer(optimizer)
    X = _inputs(X, params, xp=xp, finite=False)
    _checks.namespace(X=X, Y=Y)  # `X` against the parameters: in _inputs
    n_out = params[-1][0].shape[1]
    Y = _targets(Y, X, n_out, xp=xp, values=False)
    # The value checks (finite X, labels in range) are queued with the first epoch and
    # read with its cost: one device synchronisation instead of three.
    pending_checks = _value_checks(X, Y, xp=xp)
    epochs = _checks.check_int(epochs, "epochs", low=1)
    n = X.shape[0]
    batch_size = n if batch_size is None else _checks.check_int(batch_size, "batch_size", low=1)
    batch_size = min(batch_size, n)
    if patience is not None:
        patience = _checks.check_int(patience, "patience", low=1)
        if validation is None:
            raise ValueError("`patience` needs a `validation` set to watch")
    X_val = Y_val = None
    if validation is not None:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise TypeError("`validation` must be a pair (X_val, Y_val)")
        names = ("validation[0]", "validation[1]")  # (X_val, Y_val)
        _checks.namespace(**{"X": X, names[0]: validation[0], names[1]: validation[1]})
        X_val = _inputs(validation[0], params, xp=xp, name=names[0])
        Y_val = _targets(validation[1], X_val, n_out, xp=xp, names=names)

    run, run_epoch, score = _compiled(activation, output, loss, optimizer, xp)
    state = optimizer.init(params)
    rng = _xp.generator(_checks.check_seed(seed))
    dev = device(X)
    losses: list[float] = []
    val_losses: list[float] = []
    status, best, best_params, since_best = 0, math.inf, params, 0
    starts = list(range(0, n, batch_size))
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    with tqdm(total=epochs * len(starts), disable=disable, unit="step", leave=False) as bar:
        for epoch in range(epochs):
            order = xp.asarray(rng.permutation(n), device=dev)
            before = params
            carry = (params, state, xp.zeros((), dtype=X.dtype, device=dev))
            n_full = n // batch_size
            if run_epoch is not None and n_full > 1:  # JAX: the full batches in one dispatch
                batches = xp.reshape(order[: n_full * batch_size], (n_full, batch_size))
                carry = run_epoch(carry, batches, X, Y)
                bar.update(n_full)
            else:
                n_full = 0
            for start in starts[n_full:]:
                batch = order[start : min(start + batch_size, n)]
                # Dask: computed every step, so that the graph does not span the epoch
                carry = _xp.evaluate_tree(run(carry, batch, X, Y))
                bar.update(1)
            params, state, total = carry
            if pending_checks is not None:
                total, *checks = _xp.to_host(xp.concat([xp.reshape(total, (1,)), pending_checks]))
                _raise_on_bad_values(checks, X, Y, n_out, xp=xp)
                pending_checks = None
            else:
                total = _xp.to_host(total)
            epoch_loss = float(total) / n
            if not math.isfinite(epoch_loss):
                status, params = 2, before
                message = (
                    f"train_mlp diverged in epoch {epoch + 1}: the cost became {epoch_loss}; "
                    "returning the parameters from before that epoch (lower the learning rate)"
                )
                warn(message, ConvergenceWarning)
                break
            losses.append(epoch_loss)
            postfix = {"loss": f"{epoch_loss:.4g}"}
            if X_val is not None:
                val_loss = float(_xp.to_host(score(params, X_val, Y_val)))
                val_losses.append(val_loss)
                postfix["val"] = f"{val_loss:.4g}"
                if val_loss < best:
                    best, best_params, since_best = val_loss, params, 0
                else:
                    since_best += 1
                if patience is not None and since_best >= patience:
                    status, params = 1, best_params
                    message = (
                        f"early stopped after epoch {epoch + 1}: no better validation cost "
                        f"in {patience} epochs; the best parameters are returned"
                    )
                    break
            bar.set_postfix(postfix, refresh=False)
    if status == 0:
        message = f"completed all {len(losses)} epochs"
    return TrainResult(params, losses, val_losses, len(losses), status, message)


@functools.lru_cache(maxsize=64)
def _compiled(
    activation: str, output: str, loss: str, optimizer: Optimizer, xp: Namespace
) -> tuple[Any, Any, Any]:
    """Return the training step and validation cost, compiled once per configuration (JAX).

    Cached so that repeated ``train_mlp`` calls with the same optimiser reuse
    the compiled step instead of tracing it again.
    """

    def step(carry: tuple[Params, Any, Array], batch: Array, X: Array, Y: Array) -> Any:
        params, state, total = carry
        Xb, Yb = xp.take(X, batch, axis=0), xp.take(Y, batch, axis=0)
        grads, cost = _backprop(params, Xb, Yb, activation, output, loss, xp=xp)
        updates, state = optimizer.update(grads, state)
        return apply_updates(params, updates), state, total + cost * Xb.shape[0]

    def validation_cost(params: Params, X: Array, Y: Array) -> Array:
        activations, z = _forward(params, X, activation, output, xp=xp)
        return _cost_and_delta(activations[-1], z, Y, output, loss, xp=xp)[0]

    return (
        _xp.compile_step(step, xp),
        _xp.compile_scan(step, xp),
        _xp.compile_step(validation_cost, xp),
    )


def _value_checks(X: Array, Y: Array, *, xp: Namespace) -> Array:
    """Queued (not yet read) value checks: [sum(X) finite, min(Y), max(Y)] or [.., Y finite]."""
    dtype = X.dtype
    x_ok = xp.astype(xp.isfinite(xp.sum(X)), dtype)  # NaN/inf anywhere make the sum non-finite
    if Y.ndim == 1:
        return xp.stack([x_ok, xp.astype(xp.min(Y), dtype), xp.astype(xp.max(Y), dtype)])
    y_ok = xp.astype(xp.isfinite(xp.sum(Y)), dtype)
    return xp.stack([x_ok, y_ok, y_ok * 0])


def _raise_on_bad_values(
    checks: list[float], X: Array, Y: Array, n_out: int, *, xp: Namespace
) -> None:
    """Raise the clear error for what :func:`_value_checks` found, if anything."""
    x_ok, first, second = checks
    # a sum of finite values can overflow: confirm element by element before blaming `X`
    if not x_ok and not bool(_checks.all_finite(X)):
        raise ValueError("`X` must contain only finite values; it has NaN or infinity")
    if Y.ndim == 1:
        if first < 0 or second >= n_out:
            msg = f"`Y` labels must be in [0, {n_out}) for {n_out} outputs; got values in [{int(first)}, {int(second)}]"
            raise ValueError(msg)
    elif not first and not bool(_checks.all_finite(Y)):
        raise ValueError("`Y` must contain only finite values; it has NaN or infinity")
