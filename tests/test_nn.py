"""The MLP on every backend: finite differences, jax.grad and torch.autograd as oracles."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from array_api_compat import device as device_of
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceWarning
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend, sizes

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

COMBOS = [
    (act, out, loss)
    for act, out, loss in itertools.product(
        ("sigmoid", "tanh", "relu"),
        ("sigmoid", "softmax", "linear"),
        ("squared_error", "cross_entropy"),
    )
    if not (out == "linear" and loss == "cross_entropy")
]


# --------------------------------------------------------------------------- NumPy oracle
def np_activation(z, name):
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    return np.maximum(z, 0)


def np_forward_course(params, X, act, out):
    """The course's column layout: a⁽ⁿ⁾ = σ(W⁽ⁿ⁾ a⁽ⁿ⁻¹⁾ + b⁽ⁿ⁾), W⁽ⁿ⁾ = our Wᵀ, examples as columns."""
    a = X.T
    for i, (W, b) in enumerate(params):
        z = W.T @ a + b[:, None]
        if i < len(params) - 1:
            a = np_activation(z, act)
        elif out == "softmax":
            e = np.exp(z - z.max(axis=0))
            a = e / e.sum(axis=0)
        elif out == "sigmoid":
            a = np_activation(z, "sigmoid")
        else:
            a = z
    return a.T


def np_cost(params, X, Y, act, out, loss):
    a = np_forward_course(params, X, act, out)
    n = X.shape[0]
    if loss == "squared_error":
        return np.sum((a - Y) ** 2) / n
    if out == "softmax":
        return -np.sum(Y * np.log(a)) / n
    return -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a)) / n


def _problem(seed, sizes, n, out, dtype="float64"):
    rng = np.random.default_rng(seed)
    params = [
        (rng.standard_normal((a, b)) / math.sqrt(a), rng.standard_normal(b) * 0.1)
        for a, b in itertools.pairwise(sizes)
    ]
    X = rng.standard_normal((n, sizes[0]))
    if out == "softmax":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    else:
        Y = rng.random((n, sizes[-1]))
    return [(W.astype(dtype), b.astype(dtype)) for W, b in params], X.astype(dtype), Y.astype(dtype)


def _to(xp, params, device=None):
    return [(asarray(xp, W, device), asarray(xp, b, device)) for W, b in params]


def fd_gradients(params, X, Y, act, out, loss, h=1e-6):
    """Central differences of the NumPy cost with respect to every parameter (float64)."""
    grads = []
    for i, layer in enumerate(params):
        pair = []
        for j, P in enumerate(layer):
            G = np.zeros_like(P)
            for idx in np.ndindex(P.shape):
                shifted = []
                for sign in (1, -1):
                    trial = [[q.copy() for q in lay] for lay in params]
                    trial[i][j][idx] += sign * h
                    shifted.append(np_cost(trial, X, Y, act, out, loss))
                G[idx] = (shifted[0] - shifted[1]) / (2 * h)
            pair.append(G)
        grads.append(pair)
    return grads


# --------------------------------------------------------------------------- init_mlp
class TestInitMlp:
    def test_course_start_is_randn_over_two_in_order(self, xp, device):
        params = mx.init_mlp([1, 6, 7, 2], seed=3, xp=xp, device=device, dtype=xp.float64)
        rng = np.random.default_rng(3)
        for (W, b), (n_in, n_out) in zip(params, [(1, 6), (6, 7), (7, 2)], strict=True):
            assert device_of(W) == device
            assert_close_to(W, rng.standard_normal((n_in, n_out)) / 2, rtol=0, xp=xp, device=device)
            assert_close_to(b, rng.standard_normal(n_out) / 2, rtol=0, xp=xp, device=device)

    @pytest.mark.parametrize("init", ["glorot", "he"])
    def test_scaled_starts(self, xp, init):
        (W, b), *_ = mx.init_mlp([400, 300, 2], seed=0, xp=xp, init=init)
        W_np = to_numpy(W)
        expected = 2 / 700 if init == "glorot" else 2 / 400
        assert W_np.var() == pytest.approx(expected, rel=0.02)
        np.testing.assert_array_equal(to_numpy(b), 0)

    def test_same_numbers_on_every_backend(self, xp):
        ours = mx.init_mlp([3, 4, 2], seed=7, xp=xp, dtype=xp.float64)
        reference = mx.init_mlp([3, 4, 2], seed=7)
        for (W, b), (W_ref, b_ref) in zip(ours, reference, strict=True):
            np.testing.assert_array_equal(to_numpy(W), W_ref)
            np.testing.assert_array_equal(to_numpy(b), b_ref)

    def test_bad_layer_sizes(self):
        with pytest.raises(ValueError, match="`layer_sizes` must all be >= 1"):
            mx.init_mlp([3, 0, 2])
        with pytest.raises(ValueError, match="at least an input and an output"):
            mx.init_mlp([3])
        with pytest.raises(TypeError, match="`layer_sizes` must hold integers"):
            mx.init_mlp([3, 2.5])
        with pytest.raises(TypeError, match="`layer_sizes` must be a sequence"):
            mx.init_mlp(3)
        with pytest.raises(ValueError, match="`init` must be one of"):
            mx.init_mlp([3, 2], init="xavier")


# --------------------------------------------------------------------------- forward
class TestMlpForward:
    @pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu"])
    @pytest.mark.parametrize("out", ["sigmoid", "softmax", "linear"])
    def test_matches_course_column_layout(self, xp, act, out):
        params, X, _ = _problem(0, [3, 5, 4, 2], 7, out)
        activations = mx.mlp_forward(_to(xp, params), asarray(xp, X), activation=act, output=out)
        assert len(activations) == 4
        assert [a.shape for a in activations] == [(7, 3), (7, 5), (7, 4), (7, 2)]
        assert_close_to(
            activations[-1], np_forward_course(params, X, act, out), rtol=1e-13, atol=1e-14, xp=xp
        )

    def test_sigmoid_saturates_without_overflow(self, xp):
        params = [(asarray(xp, np.array([[1e4]])), asarray(xp, np.array([0.0])))]
        out = mx.mlp_forward(params, asarray(xp, np.array([[-1.0], [1.0]])))[-1]
        assert_close_to(out, np.array([[0.0], [1.0]]), rtol=0, atol=0, xp=xp)

    def test_bad_inputs(self, xp):
        params = _to(xp, _problem(0, [3, 4, 2], 5, "sigmoid")[0])
        with pytest.raises(ValueError, match="`X` must have 3 columns"):
            mx.mlp_forward(params, asarray(xp, np.ones((5, 4))))
        wider_first = [(asarray(xp, np.ones((3, 5))), asarray(xp, np.ones(5))), params[1]]
        with pytest.raises(ValueError, match="`params\\[1\\]` takes 4 inputs but layer 0 gives 5"):
            mx.mlp_forward(wider_first, asarray(xp, np.ones((5, 3))))
        with pytest.raises(TypeError, match="`params` must be a non-empty list"):
            mx.mlp_forward([], asarray(xp, np.ones((5, 3))))
        with pytest.raises(ValueError, match="`activation` must be one of"):
            mx.mlp_forward(params, asarray(xp, np.ones((5, 3))), activation="gelu")
        with pytest.raises(ValueError, match="`X` must contain only finite"):  # Dask: when computed
            to_numpy(mx.mlp_forward(params, asarray(xp, np.full((5, 3), np.nan)))[-1])


# --------------------------------------------------------------------------- backprop
class TestMlpBackprop:
    @pytest.mark.parametrize(("act", "out", "loss"), COMBOS)
    def test_matches_finite_differences(self, xp, act, out, loss):
        params, X, Y = _problem(1, [3, 4, 3], 5, out)
        result = mx.mlp_backprop(
            _to(xp, params), asarray(xp, X), asarray(xp, Y), activation=act, output=out, loss=loss
        )
        assert_close_to(
            result.cost, np.asarray(np_cost(params, X, Y, act, out, loss)), rtol=1e-12, xp=xp
        )
        expected = fd_gradients(params, X, Y, act, out, loss)
        for (dW, db), (eW, eb) in zip(result.grads, expected, strict=True):
            assert_close_to(dW, eW, rtol=1e-6, atol=1e-8, xp=xp)
            assert_close_to(db, eb, rtol=1e-6, atol=1e-8, xp=xp)

    @given(
        seed=st.integers(0, 2**32 - 1),
        layers=st.lists(sizes(1, 5), min_size=2, max_size=4),
        n=sizes(1, 6),
    )
    def test_shapes_and_gradients_for_any_architecture(self, xp, seed, layers, n):
        params, X, Y = _problem(seed, layers, n, "sigmoid")
        result = mx.mlp_backprop(_to(xp, params), asarray(xp, X), asarray(xp, Y), activation="tanh")
        expected = fd_gradients(params, X, Y, "tanh", "sigmoid", "squared_error")
        for (dW, db), (W, b), (eW, eb) in zip(result.grads, params, expected, strict=True):
            assert dW.shape == W.shape
            assert db.shape == b.shape
            assert_close_to(dW, eW, rtol=1e-6, atol=1e-8, xp=xp)
            assert_close_to(db, eb, rtol=1e-6, atol=1e-8, xp=xp)

    @pytest.mark.parametrize(("act", "out", "loss"), COMBOS)
    def test_float32_agrees_with_float64(self, xp, act, out, loss):
        params, X, Y = _problem(2, [4, 6, 3], 8, out)
        p32, X32, Y32 = _problem(2, [4, 6, 3], 8, out, dtype="float32")
        r64 = mx.mlp_backprop(
            _to(xp, params), asarray(xp, X), asarray(xp, Y), activation=act, output=out, loss=loss
        )
        r32 = mx.mlp_backprop(
            _to(xp, p32), asarray(xp, X32), asarray(xp, Y32), activation=act, output=out, loss=loss
        )
        assert r32.cost.dtype == xp.float32
        tol = 200 * eps(r32.cost.dtype)
        for (dW32, db32), (dW64, db64) in zip(r32.grads, r64.grads, strict=True):
            scale = float(np.abs(to_numpy(dW64)).max()) + 1e-3
            assert_close_to(
                dW32, to_numpy(dW64), rtol=tol, atol=tol * scale, xp=xp, dtype=xp.float32
            )
            assert_close_to(
                db32, to_numpy(db64), rtol=tol, atol=tol * scale, xp=xp, dtype=xp.float32
            )

    @pytest.mark.parametrize(("act", "out", "loss"), COMBOS)
    def test_matches_backend_autodiff(self, xp, backend, act, out, loss):
        if backend is Backend.JAX:
            import jax

            def cost(flat, X, Y):
                params = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
                return _autodiff_cost(xp, params, X, Y, act, out, loss)

            params, X, Y = _problem(4, [3, 5, 2], 6, out)
            flat = [asarray(xp, a) for layer in params for a in layer]
            expected = jax.grad(cost)(flat, asarray(xp, X), asarray(xp, Y))
        elif backend is Backend.TORCH:
            import torch

            params, X, Y = _problem(4, [3, 5, 2], 6, out)
            flat = [torch.tensor(a, requires_grad=True) for layer in params for a in layer]
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            _autodiff_cost(xp, pairs, torch.tensor(X), torch.tensor(Y), act, out, loss).backward()
            expected = [leaf.grad for leaf in flat]
        else:
            pytest.skip("the autodiff oracle is JAX's or PyTorch's")
        result = mx.mlp_backprop(
            _to(xp, params), asarray(xp, X), asarray(xp, Y), activation=act, output=out, loss=loss
        )
        ours = [g for pair in result.grads for g in pair]
        for got, want in zip(ours, expected, strict=True):
            assert_close_to(got, to_numpy(want), rtol=1e-12, atol=1e-14, xp=xp)

    def test_softmax_cross_entropy_targets_need_not_sum_to_one(self, xp):
        # soft targets (label smoothing, unnormalised weights, an all-zero row): the gradient
        # of -Σ y·log softmax(z) is a·Σy - y, which `a - y` is only for rows summing to 1
        params, X, _ = _problem(7, [3, 4, 3], 4, "softmax")
        Y = np.array([[0.9, 0.05, 0.05], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [0.2, 0.3, 0.0]])
        result = mx.mlp_backprop(
            _to(xp, params), asarray(xp, X), asarray(xp, Y), output="softmax", loss="cross_entropy"
        )
        expected = fd_gradients(params, X, Y, "sigmoid", "softmax", "cross_entropy")
        for (dW, db), (eW, eb) in zip(result.grads, expected, strict=True):
            assert_close_to(dW, eW, rtol=1e-6, atol=1e-8, xp=xp)
            assert_close_to(db, eb, rtol=1e-6, atol=1e-8, xp=xp)

    def test_integer_labels_equal_one_hot_targets(self, xp):
        params, X, Y = _problem(5, [3, 4, 3], 6, "softmax")
        labels = Y.argmax(axis=1)
        a = mx.mlp_backprop(
            _to(xp, params), asarray(xp, X), asarray(xp, Y), output="softmax", loss="cross_entropy"
        )
        b = mx.mlp_backprop(
            _to(xp, params),
            asarray(xp, X),
            asarray(xp, labels),
            output="softmax",
            loss="cross_entropy",
        )
        for (dW, db), (eW, eb) in zip(a.grads, b.grads, strict=True):
            assert_close_to(eW, to_numpy(dW), rtol=0, xp=xp)
            assert_close_to(eb, to_numpy(db), rtol=0, xp=xp)

    def test_course_cost_is_squared_error_over_n(self, xp):
        X, Y = mx.heart_curve(50, xp=xp, dtype=xp.float64)
        params = mx.init_mlp([1, 6, 7, 2], seed=0, xp=xp, dtype=xp.float64)
        a3 = mx.mlp_forward(params, X)[-1]
        result = mx.mlp_backprop(params, X, Y)
        expected = np.sum((to_numpy(a3) - to_numpy(Y)) ** 2) / 50
        assert_close_to(result.cost, np.asarray(expected), rtol=1e-14, xp=xp)

    def test_bad_inputs(self, xp, backend):
        params = _to(xp, _problem(0, [3, 4, 2], 5, "sigmoid")[0])
        X = asarray(xp, np.ones((5, 3)))
        with pytest.raises(ValueError, match="`X` and `Y` must have the same number of rows"):
            mx.mlp_backprop(params, X, asarray(xp, np.ones((4, 2))))
        labels = asarray(xp, np.array([0, 1, 2, 0, 1]))
        with pytest.raises(ValueError, match="`Y` labels must be in \\[0, 2\\)"):  # Dask: computed
            to_numpy(
                mx.mlp_backprop(params, X, labels, output="softmax", loss="cross_entropy").cost
            )
        with pytest.raises(ValueError, match="`Y` must have 2 columns"):
            mx.mlp_backprop(params, X, asarray(xp, np.ones((5, 3))))
        with pytest.raises(ValueError, match="needs probabilities"):
            mx.mlp_backprop(
                params, X, asarray(xp, np.ones((5, 2))), output="linear", loss="cross_entropy"
            )
        with pytest.raises(ValueError, match="`loss` must be one of"):
            mx.mlp_backprop(params, X, asarray(xp, np.ones((5, 2))), loss="hinge")
        if backend not in (Backend.NUMPY, Backend.NUMPY_READONLY):
            with pytest.raises(TypeError, match="different libraries"):
                mx.mlp_backprop(params, X, np.ones((5, 2)))

    def test_results_on_the_inputs_device(self, xp, device):
        params_np, X_np, Y_np = _problem(0, [3, 4, 2], 5, "sigmoid")
        params = _to(xp, params_np, device)
        result = mx.mlp_backprop(params, asarray(xp, X_np, device), asarray(xp, Y_np, device))
        assert all(device_of(g) == device for pair in result.grads for g in pair)
        assert device_of(result.cost) == device
        trained = mx.train_mlp(
            params,
            asarray(xp, X_np, device),
            asarray(xp, Y_np, device),
            optimizer=mx.adam(0.1),
            epochs=2,
        )
        assert all(device_of(a) == device for pair in trained.params for a in pair)

    def test_mismatched_devices(self, xp, backend):
        if backend is not Backend.ARRAY_API_STRICT:
            pytest.skip("a second device without a GPU exists only in array-api-strict")
        import array_api_strict

        params_np, X_np, Y_np = _problem(0, [3, 4, 2], 5, "sigmoid")
        params = _to(xp, params_np, array_api_strict.Device("device1"))
        with pytest.raises(ValueError, match="`params` and `X` are on different devices"):
            mx.mlp_backprop(params, asarray(xp, X_np), asarray(xp, Y_np))

    def test_inputs_not_modified(self, xp):
        params_np, X_np, Y_np = _problem(0, [3, 4, 2], 5, "sigmoid")
        params, X, Y = _to(xp, params_np), asarray(xp, X_np), asarray(xp, Y_np)
        mx.mlp_backprop(params, X, Y)
        np.testing.assert_array_equal(to_numpy(X), X_np)
        np.testing.assert_array_equal(to_numpy(params[0][0]), params_np[0][0])


def _autodiff_cost(xp, params, X, Y, act, out, loss):
    """An independent cost in the backend's own namespace, for jax.grad / torch.autograd."""
    a = X
    for i, (W, b) in enumerate(params):
        z = a @ W + b
        if i < len(params) - 1:
            a = {
                "sigmoid": lambda t: 1 / (1 + xp.exp(-t)),
                "tanh": xp.tanh,
                "relu": lambda t: xp.maximum(t, 0 * t),
            }[act](z)
    n = X.shape[0]
    if out == "softmax":
        log_p = z - xp.max(z, axis=1, keepdims=True)
        log_p = log_p - xp.log(xp.sum(xp.exp(log_p), axis=1, keepdims=True))
        p = xp.exp(log_p)
        return -xp.sum(Y * log_p) / n if loss == "cross_entropy" else xp.sum((p - Y) ** 2) / n
    if out == "sigmoid":
        p = 1 / (1 + xp.exp(-z))
        if loss == "cross_entropy":
            return -xp.sum(Y * xp.log(p) + (1 - Y) * xp.log(1 - p)) / n
        return xp.sum((p - Y) ** 2) / n
    return xp.sum((z - Y) ** 2) / n


# --------------------------------------------------------------------------- training
class TestTrainMlp:
    def test_one_full_batch_sgd_step_is_the_course_update(self, xp):
        X, Y = mx.heart_curve(40, xp=xp, dtype=xp.float64)
        params = mx.init_mlp([1, 6, 7, 2], seed=0, xp=xp, dtype=xp.float64)
        grads = mx.mlp_backprop(params, X, Y).grads
        result = mx.train_mlp(params, X, Y, optimizer=mx.sgd(7.0), epochs=1)
        for (W, b), (dW, db), (W0, b0) in zip(result.params, grads, params, strict=True):
            assert_close_to(W, to_numpy(W0) - 7 * to_numpy(dW), rtol=1e-13, atol=1e-14, xp=xp)
            assert_close_to(b, to_numpy(b0) - 7 * to_numpy(db), rtol=1e-13, atol=1e-14, xp=xp)

    @pytest.mark.skip_xp_backend(
        Backend.DASK, reason="2000 host-driven full-batch steps; Dask is covered by the short runs"
    )
    def test_course_heart_network_learns_the_curve(self, xp):
        X, Y = mx.heart_curve(100, xp=xp, dtype=xp.float64)
        params = mx.init_mlp([1, 6, 7, 2], seed=0, xp=xp, dtype=xp.float64)
        result = mx.train_mlp(params, X, Y, optimizer=mx.sgd(7.0), epochs=2000)
        assert (result.status, result.message) == (0, "completed all 2000 epochs")
        assert result.n_epochs == 2000
        assert result.losses[0] > 0.2
        assert result.losses[-1] < 0.01
        # aggression 7 makes the late epochs oscillate a little (as in the course); the trend falls
        assert np.mean(result.losses[-100:]) < np.mean(result.losses[:100]) / 10

    def test_reproducible_and_backend_independent(self, xp):
        params_np, X_np, Y_np = _problem(3, [4, 8, 3], 64, "softmax")
        labels = Y_np.argmax(axis=1)

        def train(ns, params, X, y):
            return mx.train_mlp(
                params,
                X,
                y,
                optimizer=mx.adam(0.01),
                epochs=3,
                batch_size=10,
                seed=11,
                activation="relu",
                output="softmax",
                loss="cross_entropy",
            )

        first = train(xp, _to(xp, params_np), asarray(xp, X_np), asarray(xp, labels))
        second = train(xp, _to(xp, params_np), asarray(xp, X_np), asarray(xp, labels))
        reference = train(np, params_np, X_np, labels)
        for (W1, _), (W2, _), (W_ref, _) in zip(
            first.params, second.params, reference.params, strict=True
        ):
            np.testing.assert_array_equal(to_numpy(W1), to_numpy(W2))
            assert_close_to(W1, W_ref, rtol=1e-10, atol=1e-12, xp=xp)
        np.testing.assert_allclose(first.losses, reference.losses, rtol=1e-10)

    @pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow on the way up
    def test_divergence_stops_with_last_finite_params(self, xp):
        # one linear layer, a step 10x too long: the cost grows ~1e7-fold per epoch to inf
        params_np, X_np, Y_np = _problem(3, [3, 2], 20, "linear")
        params = _to(xp, params_np)
        with pytest.warns(ConvergenceWarning, match="diverged in epoch"):
            result = mx.train_mlp(
                params,
                asarray(xp, X_np * 10),
                asarray(xp, Y_np),
                optimizer=mx.sgd(10.0),
                epochs=500,
                output="linear",
            )
        assert result.status == 2
        assert all(bool(xp.all(xp.isfinite(W))) for W, _ in result.params)
        # the parameters of the last epoch that ended finite: those of training that long
        redo = mx.train_mlp(
            params, asarray(xp, X_np * 10), asarray(xp, Y_np), optimizer=mx.sgd(10.0),
            epochs=result.n_epochs, output="linear",
        )  # fmt: skip
        assert redo.status == 0
        for (W, b), (W_ref, b_ref) in zip(result.params, redo.params, strict=True):
            assert_close_to(W, to_numpy(W_ref), rtol=0, xp=xp)
            assert_close_to(b, to_numpy(b_ref), rtol=0, xp=xp)

    def test_early_stopping_returns_best_params(self, xp):
        X, Y = mx.heart_curve(40, xp=xp, dtype=xp.float64)
        params = mx.init_mlp([1, 6, 7, 2], seed=0, xp=xp, dtype=xp.float64)
        # a validation set that fitting the training set makes worse: the flipped curve
        result = mx.train_mlp(
            params, X, Y, optimizer=mx.sgd(7.0), epochs=500, validation=(X, 1 - Y), patience=3
        )
        assert result.status == 1
        assert result.message.startswith("early stopped")
        assert result.n_epochs < 500
        best = int(np.argmin(result.val_losses))
        assert best == len(result.val_losses) - 4
        redo = mx.train_mlp(params, X, Y, optimizer=mx.sgd(7.0), epochs=best + 1)
        for (W, _), (W_ref, _) in zip(result.params, redo.params, strict=True):
            assert_close_to(W, to_numpy(W_ref), rtol=0, xp=xp)

    def test_progress_bar(self, xp, capsys):
        X, Y = mx.heart_curve(10, xp=xp)
        mx.train_mlp(
            mx.init_mlp([1, 3, 2], xp=xp), X, Y, optimizer=mx.sgd(1.0), epochs=2, progress=True
        )
        assert "step" in capsys.readouterr().err

    def test_bad_inputs(self, xp):
        X, Y = mx.heart_curve(10, xp=xp)
        params = mx.init_mlp([1, 3, 2], xp=xp)
        with pytest.raises(TypeError, match="`optimizer` must be an Optimizer"):
            mx.train_mlp(params, X, Y, optimizer=0.1)
        with pytest.raises(ValueError, match="`epochs` must be >= 1"):
            mx.train_mlp(params, X, Y, optimizer=mx.sgd(0.1), epochs=0)
        with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
            mx.train_mlp(params, X, Y, optimizer=mx.sgd(0.1), batch_size=0)
        with pytest.raises(ValueError, match="`patience` needs a `validation` set"):
            mx.train_mlp(params, X, Y, optimizer=mx.sgd(0.1), patience=2)

    @pytest.mark.parametrize(("layer", "which", "value"), [(0, 0, np.nan), (1, 1, np.inf)])
    def test_non_finite_parameters_are_refused(self, xp, layer, which, value):
        X, Y = mx.heart_curve(10, xp=xp, dtype=xp.float64)
        params = [[to_numpy(a).copy() for a in pair] for pair in mx.init_mlp([1, 3, 2], seed=0)]
        params[layer][which].flat[0] = value
        params = [tuple(asarray(xp, a) for a in pair) for pair in params]
        name = re.escape(f"`params[{layer}][{which}]` must contain only finite values")
        with pytest.raises(ValueError, match=name):
            mx.train_mlp(params, X, Y, optimizer=mx.sgd(1.0), epochs=2)

    def test_validation_errors_name_the_validation_set(self, xp):
        X, Y = mx.heart_curve(10, xp=xp, dtype=xp.float64)
        params = mx.init_mlp([1, 3, 2], xp=xp, dtype=xp.float64)
        X_np, Y_np = to_numpy(X), to_numpy(Y)
        X_nan = X_np.copy()
        X_nan[0, 0] = np.nan
        cases = [
            ((asarray(xp, X_nan), Y), ValueError, r"`validation\[0\]` must contain only finite"),
            ((asarray(xp, X_np[:, [0, 0]]), Y), ValueError, r"`validation\[0\]` must have 1"),
            ((X, asarray(xp, Y_np[:-1])), ValueError, r"`validation\[0\]` and `validation\[1\]`"),
            ((X, asarray(xp, Y_np[:, :1])), ValueError, r"`validation\[1\]` must have 2 columns"),
            ((X_np.tolist(), Y), TypeError, r"`validation\[0\]` must be an array"),
        ]
        for validation, error, message in cases:
            with pytest.raises(error, match=message):
                mx.train_mlp(params, X, Y, optimizer=mx.sgd(1.0), validation=validation)

    @pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy, on the NaN inputs
    def test_bad_values_found_while_training_are_clear_errors(self, xp):
        X_np, Y_np = (to_numpy(a) for a in mx.heart_curve(10))
        params = mx.init_mlp([1, 3, 2], xp=xp, dtype=xp.float64)
        X_nan = X_np.copy()
        X_nan[7, 0] = np.nan
        with pytest.raises(ValueError, match="`X` must contain only finite"):
            mx.train_mlp(
                params, asarray(xp, X_nan), asarray(xp, Y_np), optimizer=mx.sgd(1.0), batch_size=3
            )
        Y_inf = Y_np.copy()
        Y_inf[2, 1] = np.inf
        with pytest.raises(ValueError, match="`Y` must contain only finite"):
            mx.train_mlp(params, asarray(xp, X_np), asarray(xp, Y_inf), optimizer=mx.sgd(1.0))
        labels = asarray(xp, np.array([0, 1, 0, 1, 2, 0, 1, 0, 1, 0]))
        with pytest.raises(ValueError, match="`Y` labels must be in \\[0, 2\\)"):
            mx.train_mlp(
                params,
                asarray(xp, X_np),
                labels,
                optimizer=mx.sgd(1.0),
                batch_size=4,
                output="softmax",
                loss="cross_entropy",
            )
        with pytest.raises(ValueError, match="`lr` must be in"):
            mx.sgd(0.0)


@pytest.mark.skip_xp_backend(
    Backend.DASK, reason="800 host-driven steps; Dask is covered by the small runs"
)
@pytest.mark.skip_xp_backend(Backend.NUMPY_READONLY, reason="same arithmetic as numpy")
def test_mnist_classifier_reaches_92_percent(xp):
    """784-128-10 trained on the first 8,000 test images, scored on the last 2,000."""
    if not MNIST.is_dir():
        pytest.skip(f"MNIST not found at {MNIST}")
    images, labels = mx.load_mnist(MNIST, xp=xp, dtype=xp.float32)
    params = mx.init_mlp([784, 128, 10], seed=0, xp=xp, dtype=xp.float32, init="he")
    result = mx.train_mlp(
        params,
        images[:8000, :],
        labels[:8000],
        optimizer=mx.adam(1e-3),
        epochs=10,
        batch_size=100,
        seed=0,
        activation="relu",
        output="softmax",
        loss="cross_entropy",
    )
    scores = mx.mlp_forward(result.params, images[8000:, :], activation="relu", output="softmax")[
        -1
    ]
    accuracy = float(np.mean(to_numpy(scores).argmax(axis=1) == to_numpy(labels[8000:])))
    assert accuracy >= 0.92
