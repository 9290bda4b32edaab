"""Optimisers on every backend: reference implementations from the papers, closed-form minima."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceError, ConvergenceWarning
from m4ml_xp.optimize import AdamState, tree_leaves, tree_map
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend


def reference_adam(grads, lr, b1, b2, epsilon):
    """Kingma & Ba (2015), Algorithm 1, in NumPy: the updates for a sequence of gradients."""
    m = np.zeros_like(grads[0])
    v = np.zeros_like(grads[0])
    updates = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        updates.append(-lr * m_hat / (np.sqrt(v_hat) + epsilon))
    return updates


def reference_momentum(grads, lr, beta):
    """``torch.optim.SGD(momentum=beta, dampening=0)``: v ← βv + g, step −lr·v."""
    v = np.zeros_like(grads[0])
    updates = []
    for g in grads:
        v = beta * v + g
        updates.append(-lr * v)
    return updates


def _run(opt, xp, grads_np, dtype="float64"):
    params = asarray(xp, np.zeros_like(grads_np[0]).astype(dtype))
    state = opt.init(params)
    out = []
    for g in grads_np:
        updates, state = opt.update(asarray(xp, g.astype(dtype)), state)
        out.append(updates)
    return out, state


def _jit(xp, fn):
    if xp.__name__.startswith("jax"):
        import jax

        return jax.jit(fn)
    return fn


class TestAdam:
    @pytest.mark.parametrize("dtype", ["float64", "float32"])
    @given(seed=st.integers(0, 2**32 - 1))
    def test_matches_paper_reference(self, xp, dtype, seed):
        rng = np.random.default_rng(seed)
        grads = [rng.standard_normal((3, 2)) * 10.0 ** rng.integers(-3, 3) for _ in range(6)]
        lr, b1, b2, epsilon = 0.01, 0.8, 0.99, 1e-7
        updates, state = _run(mx.adam(lr, b1, b2, epsilon), xp, grads, dtype)
        expected = reference_adam(grads, lr, b1, b2, epsilon)
        for got, want in zip(updates, expected, strict=True):
            assert_close_to(
                got,
                want,
                rtol=64 * eps(got.dtype),
                atol=64 * eps(got.dtype) * lr,
                xp=xp,
                dtype=dtype,
            )
        assert float(to_numpy(state.count)) == 6

    def test_update_runs_under_jax_jit(self, xp, backend):
        if backend is not Backend.JAX:
            pytest.skip("jit is JAX's")
        opt = mx.adam(0.1)
        params = [asarray(xp, np.ones(3)), asarray(xp, np.ones((2, 2)))]
        grads = [asarray(xp, np.arange(3.0)), asarray(xp, -np.ones((2, 2)))]
        state = opt.init(params)
        eager = opt.update(grads, state)
        jitted = _jit(xp, opt.update)(grads, state)
        for a, b in zip(tree_leaves(eager), tree_leaves(jitted), strict=True):
            assert_close_to(a, to_numpy(b), rtol=4 * eps(a.dtype), xp=xp)

    def test_state_on_the_parameters_device(self, xp, device):
        params = asarray(xp, np.ones(3), device)
        state = mx.adam(0.1).init(params)
        from array_api_compat import device as device_of

        assert isinstance(state, AdamState)
        assert all(device_of(leaf) == device for leaf in tree_leaves(state))

    def test_bad_options(self):
        with pytest.raises(ValueError, match="`lr` must be in"):
            mx.adam(0.0)
        with pytest.raises(ValueError, match="`b1` must be in"):
            mx.adam(0.1, b1=1.0)
        with pytest.raises(ValueError, match="`b2` must be in"):
            mx.adam(0.1, b2=-0.1)
        with pytest.raises(ValueError, match="`eps` must be in"):
            mx.adam(0.1, eps=-1e-8)
        with pytest.raises(TypeError, match="`lr` must be a real number"):
            mx.adam("0.1")


class TestMomentum:
    @given(seed=st.integers(0, 2**32 - 1), beta=st.floats(0.0, 0.99))
    def test_matches_reference(self, xp, seed, beta):
        rng = np.random.default_rng(seed)
        grads = [rng.standard_normal(4) for _ in range(5)]
        updates, _ = _run(mx.momentum(0.05, beta), xp, grads)
        for got, want in zip(updates, reference_momentum(grads, 0.05, beta), strict=True):
            assert_close_to(got, want, rtol=16 * eps(got.dtype), atol=16 * eps(got.dtype), xp=xp)

    def test_mismatched_gradient_shapes(self, xp):
        opt = mx.momentum(0.1)
        state = opt.init([asarray(xp, np.zeros(3)), asarray(xp, np.zeros(2))])
        with pytest.raises(ValueError, match="`grads` must match `params`"):
            opt.update([asarray(xp, np.zeros(3)), asarray(xp, np.zeros(4))], state)
        with pytest.raises(ValueError, match="`beta` must be in"):
            mx.momentum(0.1, beta=1.0)


@pytest.mark.xp_backend_only(Backend.TORCH)
def test_momentum_and_adam_match_torch_optim():
    """The same trajectories as torch.optim.SGD(momentum) and torch.optim.Adam."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    A = A @ A.T + np.eye(4)
    x0 = rng.standard_normal(4)
    for ours, theirs in (
        (mx.momentum(0.01, 0.9), lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)),
        (mx.adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    ):
        p = torch.tensor(x0, requires_grad=True)
        torch_opt = theirs([p])
        x = x0.copy()
        state = ours.init(x)
        for _ in range(20):
            torch_opt.zero_grad()
            (0.5 * p @ torch.tensor(A) @ p).backward()
            torch_opt.step()
            updates, state = ours.update(A @ x, state)
            x = mx.apply_updates(x, updates)
        np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-12, atol=1e-14)


class TestSgdAndApplyUpdates:
    def test_pytrees_of_layers(self, xp):
        params = [
            (asarray(xp, np.ones((2, 3))), asarray(xp, np.zeros(3))),
            (asarray(xp, np.ones((3, 1))), asarray(xp, np.zeros(1))),
        ]
        grads = tree_map(lambda p: p * 0 + 2.0, params)
        opt = mx.sgd(0.25)
        updates, _ = opt.update(grads, opt.init(params))
        new = mx.apply_updates(params, updates)
        assert_close_to(new[0][0], np.full((2, 3), 0.5), rtol=0, xp=xp)
        assert_close_to(new[1][1], np.full(1, -0.5), rtol=0, xp=xp)
        with pytest.raises(ValueError, match="`updates` must match `params`"):
            mx.apply_updates(params, updates[:1])

    def test_dicts(self, xp):
        params = {"w": asarray(xp, np.ones(2)), "b": asarray(xp, np.ones(()))}
        updates, _ = mx.sgd(1.0).update(params, mx.sgd(1.0).init(params))
        new = mx.apply_updates(params, updates)
        assert_close_to(new["w"], np.zeros(2), rtol=0, xp=xp)

    def test_empty_params_rejected(self):
        with pytest.raises(ValueError, match="`params` must hold at least one array"):
            mx.sgd(0.1).init([])

    def test_mixed_libraries_rejected(self, xp, backend):
        if backend in (Backend.NUMPY, Backend.NUMPY_READONLY):
            pytest.skip("needs a second library")
        with pytest.raises(TypeError, match="different libraries"):
            mx.adam(0.1).init([asarray(xp, np.ones(2)), np.ones(2)])


# --------------------------------------------------------------------------- loops
class TestGradientDescent:
    def test_path_is_geometric_on_a_quadratic(self, xp):
        x0 = np.array([1.0, -2.0])
        result = mx.gradient_descent(lambda x: 2 * x, asarray(xp, x0), lr=0.1, n_steps=5)
        expected = np.array([0.8**k * x0 for k in range(6)])
        assert result.path.shape == (6, 2)
        assert_close_to(result.path, expected, rtol=16 * eps(result.x.dtype), xp=xp)
        assert_close_to(result.x, expected[-1], rtol=16 * eps(result.x.dtype), xp=xp)

    def test_bad_inputs(self, xp):
        x0 = asarray(xp, np.ones(2))
        with pytest.raises(ValueError, match="`lr` must be in"):
            mx.gradient_descent(lambda x: x, x0, lr=-0.1, n_steps=2)
        with pytest.raises(ValueError, match="`grad` must return an array shaped like `x0`"):
            mx.gradient_descent(lambda x: x[:1], x0, lr=0.1, n_steps=2)
        with pytest.raises(TypeError, match="`grad` must be a callable"):
            mx.gradient_descent(None, x0, lr=0.1, n_steps=2)
        with pytest.raises(ValueError, match="`x0` must contain only finite"):
            mx.gradient_descent(lambda x: x, asarray(xp, np.array([np.nan])), lr=0.1, n_steps=2)

    def test_divergence_is_reported_and_the_path_kept(self, xp):
        x0 = asarray(xp, np.array([1.0, -2.0]))
        # x ← x − 1e200·x: ±1e200 after one step, beyond the range after two
        with pytest.warns(ConvergenceWarning, match="not finite from step 2"):
            result = mx.gradient_descent(lambda x: x, x0, lr=1e200, n_steps=4)
        path = to_numpy(result.path)
        assert path.shape == (5, 2)
        assert np.isfinite(path[:2]).all()
        assert not np.isfinite(path[2:]).any()

    def test_the_gradients_own_warnings_are_kept(self, xp):
        def grad(x):
            warnings.warn("grad's own warning", RuntimeWarning, stacklevel=2)
            return 2 * x

        with pytest.warns(RuntimeWarning, match="grad's own warning"):
            mx.gradient_descent(grad, asarray(xp, np.ones(2)), lr=0.1, n_steps=2)

    def test_runs_under_jax_jit(self, xp, backend):
        if backend is not Backend.JAX:
            pytest.skip("jit is JAX's")
        import jax

        path = jax.jit(lambda x0: mx.gradient_descent(lambda x: 2 * x, x0, lr=0.25, n_steps=2).path)
        np.testing.assert_allclose(to_numpy(path(xp.ones(1))), [[1.0], [0.5], [0.25]])


class TestMinimize:
    @pytest.mark.parametrize(
        "optimizer",
        [mx.sgd(0.1), mx.momentum(0.05, 0.9), mx.adam(0.05)],
        ids=["sgd", "momentum", "adam"],
    )
    def test_quadratic_closed_form(self, xp, optimizer):
        rng = np.random.default_rng(1)
        B = rng.standard_normal((3, 3))
        A_np = B @ B.T / 3 + np.eye(3)
        b_np = rng.standard_normal(3)
        A, b = asarray(xp, A_np), asarray(xp, b_np)
        result = mx.minimize(
            lambda x: A @ x - b,
            asarray(xp, np.zeros(3)),
            optimizer=optimizer,
            max_iter=20000,
            tol=1e-10,
        )
        assert result.converged
        assert result.status == 0
        assert result.message.startswith("converged")
        assert result.grad_norm <= 1e-10
        # |x − x*| ≤ |A⁻¹| · |grad| ≤ 1e-10 (A's smallest eigenvalue is ≥ 1)
        assert_close_to(result.x, np.linalg.solve(A_np, b_np), rtol=0, atol=3e-10, xp=xp)

    @pytest.mark.skip_xp_backend(
        Backend.DASK,
        reason="thousands of host-driven steps on a 2-vector cost Dask ~10 ms each; "
        "the quadratic cases cover minimize on Dask",
    )
    def test_rosenbrock(self, xp):
        def grad(v):
            x, y = v[0], v[1]
            ns = mx._xp.array_namespace(v)
            return ns.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])

        result = mx.minimize(
            grad,
            asarray(xp, np.array([-1.2, 1.0])),
            optimizer=mx.adam(0.02),
            max_iter=20000,
            tol=1e-8,
        )
        assert result.converged
        assert_close_to(result.x, np.array([1.0, 1.0]), rtol=1e-7, xp=xp)

    def test_max_iter_warns_and_raises(self, xp):
        x0 = asarray(xp, np.array([5.0]))
        with pytest.warns(ConvergenceWarning, match="max_iter"):
            result = mx.minimize(lambda x: 2 * x, x0, optimizer=mx.sgd(0.01), max_iter=3)
        assert not result.converged
        assert result.n_iter == 3
        assert_close_to(result.x, np.array([5.0 * 0.98**3]), rtol=8 * eps(result.x.dtype), xp=xp)
        with pytest.raises(ConvergenceError):
            mx.minimize(
                lambda x: 2 * x, x0, optimizer=mx.sgd(0.01), max_iter=3, raise_on_failure=True
            )

    @pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow, on the way up
    def test_divergence_keeps_last_finite_point(self, xp):
        with pytest.warns(ConvergenceWarning, match="non-finite"):
            result = mx.minimize(
                lambda x: 2 * x * x * x,
                asarray(xp, np.array([3.0])),
                optimizer=mx.sgd(1.0),
                max_iter=50,
            )
        assert result.status == 2
        assert "non-finite" in result.message
        assert bool(xp.all(xp.isfinite(result.x)))

    def test_bad_inputs(self, xp):
        x0 = asarray(xp, np.ones(2))
        with pytest.raises(TypeError, match="`optimizer` must be an Optimizer"):
            mx.minimize(lambda x: x, x0, optimizer="adam")
        with pytest.raises(ValueError, match="`tol` must be in"):
            mx.minimize(lambda x: x, x0, tol=-1.0)
        with pytest.raises(ValueError, match="`max_iter` must be >= 1"):
            mx.minimize(lambda x: x, x0, max_iter=0)
        with pytest.raises(TypeError, match="`grad` must return an array"):
            mx.minimize(lambda x: 1.0, x0)
