"""Course 2 calculus on every backend: analytic derivatives, SciPy's roots as oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from array_api_compat import array_namespace
from hypothesis import given
from hypothesis import strategies as st

import m4ml_xp as mx
from m4ml_xp.errors import ConvergenceError, ConvergenceWarning
from tests._helpers import asarray, assert_close_to, default_float, eps, to_numpy
from tests.conftest import Backend, sizes

AUTODIFF = {Backend.JAX, Backend.TORCH}


def _fd_rtol(dtype) -> float:
    """Central differences: truncation and rounding both ~ eps**(2/3)."""
    return 50 * eps(dtype) ** (2 / 3)


def _fd2_rtol(dtype) -> float:
    """Second differences: ~ eps**(1/2)."""
    return 20 * eps(dtype) ** 0.5


def _jit(xp, fn):
    if xp.__name__.startswith("jax"):
        import jax

        return jax.jit(fn)
    return fn


# Test functions written once with the namespace of their argument, with analytic derivatives.
def vector_f(v):
    xp = array_namespace(v)
    return xp.stack([v[0] ** 2 * v[1], xp.sin(v[1]) * v[0], xp.exp(v[0] / 4) + v[2] ** 3])


def vector_f_jacobian(v):
    x, y, z = v
    return np.array(
        [
            [2 * x * y, x**2, 0.0],
            [math.sin(y), x * math.cos(y), 0.0],
            [math.exp(x / 4) / 4, 0.0, 3 * z**2],
        ]
    )


def rosenbrock(v):
    return (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2


def rosenbrock_gradient(v):
    x, y = v
    return np.array([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)])


def rosenbrock_hessian(v):
    x, y = v
    return np.array([[2 - 400 * y + 1200 * x**2, -400 * x], [-400 * x, 200.0]])


def _exact(method, backend) -> bool:
    """Whether `method` differentiates exactly on `backend` (autodiff, or auto where it has it)."""
    return method == "autodiff" or (method == "auto" and backend in AUTODIFF)


def _methods(backend):
    return ["fd", "auto"] + (["autodiff"] if backend in AUTODIFF else [])


# --------------------------------------------------------------------------- jacobian
class TestJacobian:
    @pytest.mark.parametrize("dtype_name", ["float64", "float32"])
    def test_vector_function_matches_analytic(self, xp, backend, dtype_name):
        point = np.array([0.7, -1.3, 0.4])
        x = asarray(xp, point.astype(dtype_name))
        for method in _methods(backend):
            J = mx.jacobian(vector_f, x, method=method)
            rtol = 4 * eps(x.dtype) if _exact(method, backend) else _fd_rtol(x.dtype)
            assert_close_to(J, vector_f_jacobian(point), rtol=rtol, atol=rtol, xp=xp, dtype=x.dtype)

    def test_scalar_function_gives_row_matching_scipy(self, xp, backend):
        point = np.array([-1.2, 1.0])
        x = asarray(xp, point)
        expected = scipy.optimize.approx_fprime(point, lambda v: rosenbrock(v), 1e-7)
        np.testing.assert_allclose(expected, rosenbrock_gradient(point), rtol=1e-5)
        for method in _methods(backend):
            g = mx.jacobian(rosenbrock, x, method=method)
            assert g.shape == (2,)
            assert_close_to(g, rosenbrock_gradient(point), rtol=_fd_rtol(g.dtype), xp=xp)

    @given(seed=st.integers(0, 2**32 - 1), m=sizes(1, 4), n=sizes(1, 4))
    def test_linear_map_gives_its_matrix(self, xp, seed, m, n):
        rng = np.random.default_rng(seed)
        A_np = rng.standard_normal((m, n))
        A = asarray(xp, A_np)
        x = asarray(xp, rng.standard_normal(n) * 10)
        J = mx.jacobian(lambda v: A @ v, x, method="fd")
        assert J.shape == (m, n)
        assert_close_to(J, A_np, rtol=_fd_rtol(J.dtype), atol=_fd_rtol(J.dtype), xp=xp)

    def test_integer_point_is_promoted(self, xp):
        J = mx.jacobian(lambda v: v * v, asarray(xp, np.array([1, 2])), method="fd")
        assert xp.isdtype(J.dtype, "real floating")
        assert_close_to(
            J,
            np.diag([2.0, 4.0]),
            rtol=_fd_rtol(J.dtype),
            atol=_fd_rtol(J.dtype),
            xp=xp,
            dtype=default_float(xp),
        )

    def test_device_propagates(self, xp, device):
        x = asarray(xp, np.array([0.5, 1.0, -0.5]), device)
        J = mx.jacobian(vector_f, x)
        from array_api_compat import device as device_of

        assert device_of(J) == device
        assert_close_to(
            J, vector_f_jacobian([0.5, 1.0, -0.5]), rtol=_fd_rtol(J.dtype), xp=xp, device=device
        )

    def test_runs_under_jax_jit(self, xp, backend):
        if backend is not Backend.JAX:
            pytest.skip("jit is JAX's")
        for method in ("fd", "autodiff"):
            J = _jit(xp, lambda v, m=method: mx.jacobian(vector_f, v, method=m))(
                asarray(xp, np.array([0.7, -1.3, 0.4]))
            )
            rtol = _fd_rtol(J.dtype)
            assert_close_to(J, vector_f_jacobian([0.7, -1.3, 0.4]), rtol=rtol, atol=rtol, xp=xp)

    def test_auto_falls_back_when_f_is_not_traceable(self, xp):
        def reads_values(v):
            ns = array_namespace(v)
            return v * 2.0 if float(to_numpy(v)[0]) > 0 else v * ns.asarray(3.0)  # host read

        J = mx.jacobian(reads_values, asarray(xp, np.array([1.0, 2.0])))
        assert_close_to(J, 2 * np.eye(2), rtol=_fd_rtol(J.dtype), atol=_fd_rtol(J.dtype), xp=xp)

    def test_bad_inputs(self, xp, backend):
        x = asarray(xp, np.array([1.0, 2.0]))
        with pytest.raises(TypeError, match="`f` must be a callable"):
            mx.jacobian("f", x)
        with pytest.raises(TypeError, match="`f` must return an array"):
            mx.jacobian(lambda v: [1.0, 2.0], x, method="fd")
        with pytest.raises(ValueError, match="`f` must return a scalar or a 1-D"):
            mx.jacobian(lambda v: v[:, None] * v[None, :], x, method="fd")
        with pytest.raises(ValueError, match="`x` must be a 1-D"):
            mx.jacobian(vector_f, asarray(xp, np.ones((2, 2))))
        with pytest.raises(ValueError, match="`x` must contain only finite"):
            mx.jacobian(vector_f, asarray(xp, np.array([1.0, np.nan, 0.0])))
        with pytest.raises(ValueError, match="`method` must be one of"):
            mx.jacobian(vector_f, x, method="complex-step")
        with pytest.raises(TypeError, match="`x` must be an array"):
            mx.jacobian(vector_f, [1.0, 2.0, 3.0])
        if backend not in AUTODIFF:
            with pytest.raises(ValueError, match="autodiff"):
                mx.jacobian(vector_f, x, method="autodiff")
        if backend not in (Backend.NUMPY, Backend.NUMPY_READONLY):
            with pytest.raises(TypeError, match="`f` returned a numpy array"):
                mx.jacobian(lambda v: np.ones(2), x, method="fd")

    def test_input_not_modified(self, xp):
        point = np.array([0.7, -1.3, 0.4])
        x = asarray(xp, point)
        mx.jacobian(vector_f, x)
        np.testing.assert_array_equal(to_numpy(x), point)


# --------------------------------------------------------------------------- hessian
class TestHessian:
    @pytest.mark.parametrize("dtype_name", ["float64", "float32"])
    def test_rosenbrock_matches_analytic(self, xp, backend, dtype_name):
        point = np.array([-1.2, 1.0])
        x = asarray(xp, point.astype(dtype_name))
        expected = rosenbrock_hessian(point)
        for method in _methods(backend):
            H = mx.hessian(rosenbrock, x, method=method)
            rtol = 8 * eps(x.dtype) if _exact(method, backend) else _fd2_rtol(x.dtype)
            atol = rtol * np.abs(expected).max()
            assert_close_to(H, expected, rtol=rtol, atol=atol, xp=xp, dtype=x.dtype)

    @given(seed=st.integers(0, 2**32 - 1), n=sizes(1, 4))
    def test_symmetric_and_exact_for_quadratics(self, xp, seed, n):
        rng = np.random.default_rng(seed)
        A_np = rng.standard_normal((n, n))
        A = asarray(xp, A_np)
        H = mx.hessian(lambda v: v @ (A @ v), asarray(xp, rng.standard_normal(n)), method="fd")
        H_np = to_numpy(H)
        np.testing.assert_array_equal(H_np, H_np.T)
        np.testing.assert_allclose(H_np, A_np + A_np.T, atol=_fd2_rtol(H.dtype) * 10)

    def test_vector_function_rejected(self, xp):
        with pytest.raises(ValueError, match="`f` must return a scalar"):
            mx.hessian(vector_f, asarray(xp, np.array([1.0, 2.0, 3.0])), method="fd")


# --------------------------------------------------------------------------- non-finite derivatives
class TestNonFiniteDerivatives:
    @pytest.mark.parametrize("order", [1, 2])
    def test_a_function_not_finite_at_x_is_refused(self, xp, backend, order):
        derivative = mx.jacobian if order == 1 else mx.hessian
        x = asarray(xp, np.array([1.0, 2.0]))
        for method in _methods(backend):
            with pytest.raises(ValueError, match="`f` is not finite"):  # Dask: when computed
                to_numpy(
                    derivative(lambda v: array_namespace(v).sum(v * v) * math.nan, x, method=method)
                )

    def test_an_infinite_derivative_of_a_finite_function_is_returned_with_a_warning(
        self, xp, backend
    ):
        # a jump of 2e308 at 0: f is finite there, the difference quotient overflows to inf
        if backend is Backend.DASK:
            pytest.skip("Dask's derivative is lazy: a non-finite one raises when computed")
        x = asarray(xp, np.array([0.0, 1.0]))

        def jump(v):
            ns = array_namespace(v)
            return ns.where(v > 0, ns.full_like(v, 1e308), ns.full_like(v, -1e308))

        with pytest.warns(RuntimeWarning, match="Jacobian of `f` at `x` has non-finite"):
            J = mx.jacobian(jump, x, method="fd")
        assert np.isinf(to_numpy(J)[0, 0])


# --------------------------------------------------------------------------- Newton–Raphson
class TestNewtonRaphson:
    @pytest.mark.parametrize("start", [2.0, -3.0, 0.3])
    def test_one_dimension_matches_scipy(self, xp, start):
        def f(x):
            return x**3 - 2 * x - 5 + 0 * x

        def df(x):
            return 3 * x**2 - 2 + 0 * x

        expected = scipy.optimize.newton(
            lambda t: t**3 - 2 * t - 5, start, fprime=lambda t: 3 * t**2 - 2
        )
        x0 = asarray(xp, np.asarray(start))
        for derivative in (df, None):
            result = mx.newton_raphson(f, derivative, x0, max_iter=100)
            assert result.converged
            assert (result.status, result.message) == (0, "converged: the Newton step is below tol")
            assert result.root.shape == ()
            assert_close_to(
                result.root, np.asarray(expected), rtol=8 * eps(result.root.dtype), xp=xp
            )
            assert result.iterates.shape == (result.n_iter + 1,)
            assert float(to_numpy(result.iterates)[0]) == start

    def test_course_iteration_is_x_minus_f_over_df(self, xp):
        result = mx.newton_raphson(lambda x: x**2 - 2.0, lambda x: 2 * x, asarray(xp, 1.0))
        path = to_numpy(result.iterates)
        np.testing.assert_allclose(path[1:4], [1.5, 1.5 - 0.25 / 3, 1.4142156862745099], rtol=1e-15)

    def test_n_dimensions_matches_scipy_root(self, xp):
        def f(v):
            ns = array_namespace(v)
            return ns.stack([v[0] ** 2 + v[1] ** 2 - 4.0, ns.exp(v[0]) + v[1] - 1.0])

        def f_np(v):
            return np.array([v[0] ** 2 + v[1] ** 2 - 4.0, np.exp(v[0]) + v[1] - 1.0])

        start = np.array([1.0, -1.0])
        expected = scipy.optimize.root(f_np, start, tol=1e-14).x
        result = mx.newton_raphson(f, None, asarray(xp, start))
        assert result.converged
        assert result.iterates.shape == (result.n_iter + 1, 2)
        assert_close_to(result.root, expected, rtol=16 * eps(result.root.dtype), xp=xp)

    def test_zero_derivative_is_reported(self, xp):
        with pytest.warns(ConvergenceWarning, match="zero derivative"):
            result = mx.newton_raphson(
                lambda x: x**2 + 1.0, lambda x: 2 * x, asarray(xp, np.asarray(0.0))
            )
        assert not result.converged
        assert result.status == 3
        assert "zero derivative" in result.message
        assert result.n_iter == 0
        assert bool(xp.isfinite(result.root))
        with pytest.raises(ConvergenceError):
            mx.newton_raphson(
                lambda x: x**2 + 1.0,
                lambda x: 2 * x,
                asarray(xp, np.asarray(0.0)),
                raise_on_failure=True,
            )

    def test_exact_root_at_a_stationary_point_converges(self, xp):
        result = mx.newton_raphson(lambda x: x**2, lambda x: 2 * x, asarray(xp, np.asarray(0.0)))
        assert result.converged
        assert result.n_iter == 0

    def test_singular_jacobian_is_reported(self, xp):
        def f(v):
            return v[0] + v[1] + 0 * v - 1.0  # both equations the same line

        with pytest.warns(ConvergenceWarning, match="singular jacobian"):
            result = mx.newton_raphson(f, None, asarray(xp, np.array([3.0, 4.0])), method="fd")
        assert result.status == 3
        assert "singular Jacobian" in result.message
        assert not result.converged
        assert bool(xp.all(xp.isfinite(result.root)))

    def test_max_iter_reported(self, xp):
        with pytest.warns(ConvergenceWarning, match="max_iter"):
            result = mx.newton_raphson(
                lambda x: x**3 - 2 * x - 5, None, asarray(xp, np.asarray(2.0)), max_iter=1
            )
        assert result.n_iter == 1
        assert not result.converged
        assert (result.status, result.message) == (
            1,
            "max_iter reached: the Newton step is still above tol",
        )

    def test_non_finite_iterate_reported(self, xp):
        # a step f/f' = big / (4 / big) beyond the dtype's range: the next iterate is -inf
        x0 = asarray(xp, np.asarray(1.0))
        big = float(np.finfo(str(x0.dtype).rsplit(".", 1)[-1]).max) / 4
        with pytest.warns(ConvergenceWarning, match="non-finite"):
            result = mx.newton_raphson(lambda x: big * x, lambda x: 4 / big + 0 * x, x0)
        assert not result.converged
        assert (result.status, result.message) == (2, "stopped: the next iterate is not finite")

    def test_bad_inputs(self, xp):
        x0 = asarray(xp, np.array([1.0, 2.0]))
        with pytest.raises(ValueError, match="`x0` must contain only finite"):
            mx.newton_raphson(lambda v: v, None, asarray(xp, np.array([np.inf, 1.0])))
        with pytest.raises(ValueError, match="`f` must return an array shaped like `x0`"):
            mx.newton_raphson(lambda v: v[:1], None, x0)
        with pytest.raises(ValueError, match="`df` must return the Jacobian"):
            mx.newton_raphson(lambda v: v, lambda v: v, x0)
        with pytest.raises(ValueError, match="`x0` must be a 0-D or 1-D"):
            mx.newton_raphson(lambda v: v, None, asarray(xp, np.ones((2, 2))))
        with pytest.raises(ValueError, match="`max_iter` must be >= 1"):
            mx.newton_raphson(lambda v: v, None, x0, max_iter=0)
        with pytest.raises(ValueError, match="`tol` must be in"):
            mx.newton_raphson(lambda v: v, None, x0, tol=-1.0)
        with pytest.raises(TypeError, match="`df` must be a callable"):
            mx.newton_raphson(lambda v: v, 3.0, x0)

    def test_results_on_the_starts_device(self, xp, device):
        from array_api_compat import device as device_of

        def f(v):
            ns = array_namespace(v)
            return ns.stack([v[0] ** 2 + v[1] ** 2 - 4.0, ns.exp(v[0]) + v[1] - 1.0])

        result = mx.newton_raphson(f, None, asarray(xp, np.array([1.0, -1.0]), device))
        assert device_of(result.root) == device
        assert device_of(result.iterates) == device
        lagrange = mx.lagrange_multipliers(course_f, course_g, asarray(xp, np.zeros(2), device))
        assert device_of(lagrange.x) == device
        assert device_of(lagrange.lam) == device

    def test_python_float_start_uses_numpy(self):
        result = mx.newton_raphson(lambda x: x**2 - 2.0, lambda x: 2 * x, 1.0)
        assert isinstance(result.root, np.ndarray)
        assert float(result.root) == pytest.approx(math.sqrt(2), rel=1e-15)


# --------------------------------------------------------------------------- sandpit steps
class TestNewtonStep:
    @given(seed=st.integers(0, 2**32 - 1), n=sizes(1, 5))
    def test_solves_hessian_system(self, xp, seed, n):
        rng = np.random.default_rng(seed)
        B = rng.standard_normal((n, n))
        H_np = B @ B.T + n * np.eye(n)
        J_np = rng.standard_normal(n)
        step = mx.newton_step(asarray(xp, J_np), asarray(xp, H_np))
        assert_close_to(
            step,
            -np.linalg.solve(H_np, J_np),
            rtol=1e3 * eps(step.dtype),
            atol=1e3 * eps(step.dtype),
            xp=xp,
        )

    def test_shape_mismatch(self, xp):
        with pytest.raises(ValueError, match="`H` must be"):
            mx.newton_step(asarray(xp, np.ones(2)), asarray(xp, np.eye(3)))

    def test_ill_conditioned_but_invertible_hessian_keeps_its_step(self, xp):
        H = np.diag([1.0, 1e-16])
        step = mx.newton_step(asarray(xp, np.array([1.0, 1e-16])), asarray(xp, H))
        assert_close_to(step, np.array([-1.0, -1.0]), rtol=4 * eps(step.dtype), xp=xp)

    @pytest.mark.parametrize("H", [[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    def test_singular_hessian_is_refused(self, xp, backend, H):
        # NumPy and torch raised their own LinAlgError; JAX returned [inf, -inf] or NaN
        if backend is Backend.DASK:
            pytest.skip("Dask's step is lazy: its solve fails when computed")
        with pytest.raises(ValueError, match="`H` is singular"):
            mx.newton_step(asarray(xp, np.array([1.0, 2.0])), asarray(xp, np.array(H)))


class TestSandpitStep:
    def test_newton_when_downhill_and_short(self, xp):
        J, H = np.array([1.0, -2.0]), np.array([[2.0, 0.0], [0.0, 4.0]])
        step = mx.sandpit_step(asarray(xp, J), asarray(xp, H))
        assert_close_to(step, -np.linalg.solve(H, J), rtol=4 * eps(step.dtype), xp=xp)

    def test_gradient_step_when_uphill(self, xp):
        J, H = np.array([1.0, 0.5]), np.array([[-1.0, 0.0], [0.0, -2.0]])
        step = mx.sandpit_step(asarray(xp, J), asarray(xp, H), gamma=0.3)
        assert_close_to(step, -0.3 * J, rtol=4 * eps(step.dtype), xp=xp)

    def test_gradient_step_when_newton_too_long(self, xp):
        J, H = np.array([3.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0]])  # Newton step length 3
        step = mx.sandpit_step(asarray(xp, J), asarray(xp, H))
        assert_close_to(step, -0.5 * J, rtol=4 * eps(step.dtype), xp=xp)
        step = mx.sandpit_step(asarray(xp, J), asarray(xp, H), max_newton_norm=3.5)
        assert_close_to(step, -J, rtol=4 * eps(step.dtype), xp=xp)

    def test_singular_hessian_takes_gradient_step(self, xp):
        J, H = np.array([1.0, 1.0]), np.zeros((2, 2))
        step = mx.sandpit_step(asarray(xp, J), asarray(xp, H))
        assert_close_to(step, -0.5 * J, rtol=4 * eps(step.dtype), xp=xp)

    def test_runs_under_jax_jit(self, xp, backend):
        if backend is not Backend.JAX:
            pytest.skip("jit is JAX's")
        J, H = np.array([1.0, 0.5]), np.array([[-1.0, 0.0], [0.0, -2.0]])
        step = _jit(xp, mx.sandpit_step)(asarray(xp, J), asarray(xp, H))
        assert_close_to(step, -0.5 * J, rtol=4 * eps(step.dtype), xp=xp)

    def test_bad_options(self, xp):
        J, H = asarray(xp, np.ones(2)), asarray(xp, np.eye(2))
        with pytest.raises(ValueError, match="`gamma` must be in"):
            mx.sandpit_step(J, H, gamma=0.0)
        with pytest.raises(ValueError, match="`max_newton_norm` must be in"):
            mx.sandpit_step(J, H, max_newton_norm=-1.0)
        with pytest.raises(ValueError, match="`H` must be a square"):
            mx.sandpit_step(J, asarray(xp, np.ones((2, 3))))


# --------------------------------------------------------------------------- Lagrange
def course_f(v):
    xp = array_namespace(v)
    return -xp.exp(v[0] - v[1] ** 2 + v[0] * v[1])


def course_g(v):
    xp = array_namespace(v)
    return xp.cosh(v[1]) + v[0] - 2.0


def course_grad_l(z):
    x, y, lam = z
    e = np.exp(x - y**2 + x * y)
    return np.array(
        [-e * (1 + y) - lam, -e * (x - 2 * y) - lam * np.sinh(y), -(np.cosh(y) + x - 2)]
    )


def _linear(v):
    return v[0] + v[1]


def _circle(v):
    return v[0] ** 2 + v[1] ** 2 - 1.0


class TestLagrangeMultipliers:
    def test_default_start_is_the_least_squares_multiplier(self, xp, backend):
        """A linear objective on the unit circle: λ = 0 leaves the bordered Hessian singular.

        The least-squares multiplier at x0, ∇f(x0)·∇g(x0)/‖∇g(x0)‖², does not: the
        default start reaches the maximum (1/√2, 1/√2) with λ = 1/√2, where the
        analytic condition ∇f = λ∇g gives 1 = 2λx.
        """
        x0 = asarray(xp, np.array([1.0, 0.5]))
        with pytest.warns(ConvergenceWarning, match="singular"):
            stuck = mx.lagrange_multipliers(_linear, _circle, x0, lam0=0.0)
        assert not stuck.converged
        for method in _methods(backend):
            result = mx.lagrange_multipliers(_linear, _circle, x0, method=method)
            assert result.converged
            rtol = 64 * eps(result.x.dtype) if _exact(method, backend) else 1e-7
            half = np.sqrt(0.5)
            assert_close_to(result.x, np.array([half, half]), rtol=rtol, xp=xp)
            assert_close_to(result.lam, np.asarray(half), rtol=rtol, xp=xp)

    @pytest.mark.parametrize("start", [(0.0, 0.0), (0.0, -1.0)])
    def test_course_problem_matches_scipy_root(self, xp, backend, start):
        start = np.array(start)
        expected = scipy.optimize.root(course_grad_l, np.append(start, 0.0), tol=1e-14).x
        np.testing.assert_allclose(course_grad_l(expected), 0, atol=1e-12)
        for method in _methods(backend):
            result = mx.lagrange_multipliers(course_f, course_g, asarray(xp, start), method=method)
            assert result.converged
            assert result.lam.shape == ()
            rtol = 64 * eps(result.x.dtype) if _exact(method, backend) else 1e-7
            assert_close_to(result.x, expected[:2], rtol=rtol, atol=rtol, xp=xp)
            assert_close_to(result.lam, expected[2], rtol=rtol, xp=xp)

    def test_vector_constraints(self, xp):
        # minimise |x|² on the intersection of two planes: the closed-form minimum-norm point
        A = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, 2.0]])
        b = np.array([1.0, 2.0])
        A_x, b_x = asarray(xp, A), asarray(xp, b)
        result = mx.lagrange_multipliers(
            lambda v: v @ v, lambda v: A_x @ v - b_x, asarray(xp, np.zeros(3)), lam0=0.0
        )
        x_star = A.T @ np.linalg.solve(A @ A.T, b)
        assert result.converged
        assert result.lam.shape == (2,)
        assert_close_to(result.x, x_star, rtol=1e-7, atol=1e-7, xp=xp)
        assert_close_to(result.lam, 2 * np.linalg.solve(A @ A.T, b), rtol=1e-6, xp=xp)

    def test_bad_inputs(self, xp):
        x0 = asarray(xp, np.zeros(3))
        with pytest.raises(ValueError, match="`lam0` must be a scalar or have one entry"):
            mx.lagrange_multipliers(
                lambda v: v @ v, lambda v: v[:2], x0, lam0=asarray(xp, np.zeros(3))
            )
        with pytest.raises(ValueError, match="`lam0` must be finite"):
            mx.lagrange_multipliers(lambda v: v @ v, lambda v: v[0], x0, lam0=math.nan)
        with pytest.raises(TypeError, match="`g` must be a callable"):
            mx.lagrange_multipliers(lambda v: v @ v, None, x0)
        with pytest.raises(ValueError, match="`g` must return a scalar or a 1-D"):
            mx.lagrange_multipliers(lambda v: v @ v, lambda v: v[:, None] * v, x0)
