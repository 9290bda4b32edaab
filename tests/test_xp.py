"""The backend layer's own machinery (m4ml_xp._xp and its public face m4ml_xp.backends).

The algorithms' tests exercise the layer through their results; these test what
the layer promises by itself: the ``--backend auto`` choice, host chunks staged
onto devices through pinned buffers, the sparse operator's native builders.
"""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import device as device_of

from m4ml_xp import _xp
from tests._helpers import to_numpy
from tests.conftest import Backend


# --------------------------------------------------------------------------- the auto choice
@pytest.mark.parametrize(
    ("job", "working", "expected"),
    [
        ("pca", ["cupy", "jax", "torch"], "torch"),  # 45.5 ms vs CuPy 70 at 1M rows
        ("pca", ["cupy", "jax"], "cupy"),  # torch absent: the next, not JAX's TF32
        ("pagerank", ["cupy", "jax", "torch"], "cupy"),
        ("pagerank", ["jax", "torch"], "torch"),
        ("fit", ["cupy", "jax", "torch"], "jax"),
        ("stream", ["cupy", "jax", "torch"], "cupy"),
        ("train", ["jax"], "jax"),
        ("pca", [], "numpy"),
    ],
)
def test_auto_takes_the_jobs_first_working_backend(job, working, expected):
    from m4ml_xp import backends

    backend, device = backends.auto_backend(job, working)
    assert backend == expected
    assert device == backends.GPU_DEVICES.get(expected)


def test_auto_probes_only_until_one_works():
    from m4ml_xp import backends

    asked = []

    def works(name):
        asked.append(name)
        return name == "cupy"

    assert backends.auto_backend("pca", works) == ("cupy", "cuda:0")
    assert asked == ["torch", "cupy"]  # JAX never imported
    with pytest.raises(ValueError, match="`job` must be one of"):
        backends.auto_backend("sort", [])


def test_auto_here_skips_what_does_not_import_or_has_no_gpu():
    import importlib.util

    from m4ml_xp import backends

    working = [name for name in backends.GPU_DEVICES if backends.gpu_backend_works(name)]
    for name in backends.GPU_DEVICES:  # a library that is not installed never works
        if importlib.util.find_spec(backends.BACKENDS[name].split(".")[0]) is None:
            assert name not in working
    for job in backends.AUTO_ORDER:
        expected = next((n for n in backends.AUTO_ORDER[job] if n in working), "numpy")
        assert backends.auto_backend(job)[0] == expected
    if not working:  # a machine without a GPU: NumPy on the CPU, for every job
        assert {backends.auto_backend(job) for job in backends.AUTO_ORDER} == {("numpy", None)}


@pytest.mark.parametrize(
    ("device", "expected"),
    [(None, False), ("cpu", False), ("cuda", True), ("cuda:0", True), ("gpu", True), ("tpu", True)],
)
def test_on_accelerator_by_device_name_and_check_interval_follows(device, expected):
    """GPU/TPU device names count as accelerators, CPU ones not; GPUs check every 8 steps."""
    assert _xp.on_accelerator(np, device) is expected
    assert _xp.check_interval(np, device) == (8 if expected else 1)


# --------------------------------------------------------------------------- staging
def test_host_chunks_arrive_intact_in_order(xp, device):
    """Through the pinned staging buffers on CUDA: a buffer refilled before its copy
    finished would corrupt an earlier chunk; a smaller last chunk and a change of
    dtype reuse or replace the buffers."""
    rng = np.random.default_rng(12)
    host = [rng.standard_normal((n, 5)) for n in (40, 40, 17, 40, 3)]
    host.append(rng.standard_normal((6, 5)).astype(np.float32))
    arrived = list(_xp.to_device_chunks(iter(host), xp, device))
    for got, want in zip(arrived, host, strict=True):
        assert device_of(got) == device
        np.testing.assert_array_equal(to_numpy(got), want)


@pytest.mark.xp_backend_only(Backend.NUMPY)
def test_pinned_slots_wait_for_the_copy_out_of_a_buffer_before_refilling_it():
    from m4ml_xp._xp._staging import _PinnedSlots

    log = []

    class Copy:  # stands for a CUDA event recorded after the copy out of a buffer
        def __init__(self, name):
            self.name = name

        def synchronize(self):
            log.append(f"wait {self.name}")

    slots = _PinnedSlots(lambda n, dtype: np.empty(n, dtype), np.copyto)
    seen = []
    for i, n in enumerate([4, 4, 2, 4]):
        slot, view = slots.take(np.full((n, 3), float(i)))
        seen.append((slot, view.shape, id(slots.buffers[slot][1])))
        np.testing.assert_array_equal(view, np.full((n, 3), float(i)))
        slots.pending[slot] = Copy(i)
    assert [slot for slot, _, _ in seen] == [0, 1, 0, 1]
    assert log == ["wait 0", "wait 1"]  # chunk 2 waited for chunk 0's copy, 3 for 1's
    assert seen[2][2] == seen[0][2]  # the smaller chunk reused slot 0's buffer
    slots.take(np.ones((2, 3), np.float32))  # another dtype: a new buffer
    assert slots.buffers[0][0] == np.float32
    slots.drain()
    assert log[-1] == "wait 3"


# --------------------------------------------------------------------------- sparse operator
def test_torch_operator_index_dtypes(xp, backend):
    if backend is not Backend.TORCH:
        pytest.skip("the torch sparse CSR builder")
    import torch

    rng = np.random.default_rng(0)
    for n, n_edges in [(1, 2), (3, 40), (50, 200), (20, 2000)]:
        rows, cols = rng.integers(0, n, n_edges), rng.integers(0, n, n_edges)
        values = rng.random(n_edges)
        for row_dtype, col_dtype in [(torch.int32, torch.int64), (torch.int64, torch.int32)]:
            split = _xp._sparse._SplitRows(
                torch.asarray(rows, dtype=row_dtype),
                torch.asarray(cols, dtype=col_dtype),
                torch.asarray(values),
                n,
                xp=xp,
            )
            csr = _xp._sparse._native_csr_matvec(split, xp=xp).args[0]
            assert csr.crow_indices().dtype == csr.col_indices().dtype == torch.int32
            assert csr._nnz() <= csr.shape[0] * csr.shape[1]  # cuSPARSE's invariant
            x = rng.random(n)
            y = split.combine(torch.mv(csr, torch.asarray(x, device=csr.device)))
            expected = np.bincount(rows, weights=values * x[cols], minlength=n)
            np.testing.assert_allclose(y.cpu().numpy(), expected, rtol=1e-12)
    with pytest.raises(TypeError, match="`crow` and `cols` must have the same dtype"):
        _xp._sparse._torch_csr_matvec(
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(1, dtype=torch.int32),
            torch.ones(1),
            (1, 1),
        )


# --------------------------------------------------------------------------- Dask plumbing
def test_evaluate_tree_persists_a_loop_state_in_one_pass(xp, backend):
    """Leaves sharing a graph are computed together: one scheduler run, structure kept."""
    from collections import namedtuple

    State = namedtuple("State", "m v")
    x = xp.asarray([1.0, 2.0, 3.0])
    shared = xp.exp(x) + 1.0
    tree = {"x": [shared * 2.0, (shared, 7)], "state": State(shared - 1.0, shared**2)}
    if backend is not Backend.DASK:
        assert _xp.evaluate_tree(tree) is tree  # eager arrays: nothing to do
        return
    from dask.callbacks import Callback

    runs = []
    with Callback(start=lambda dsk: runs.append(len(dsk))):
        out = _xp.evaluate_tree(tree)
    assert len(runs) == 1  # leaf by leaf would run the shared graph once per leaf
    assert type(out["state"]) is State
    assert out["x"][1][1] == 7
    leaves = [out["x"][0], out["x"][1][0], out["state"].m, out["state"].v]
    assert all(len(dict(leaf.dask)) == leaf.npartitions for leaf in leaves)  # values, no graph
    expected = np.exp([1.0, 2.0, 3.0]) + 1.0
    for leaf, want in zip(leaves, [2 * expected, expected, expected - 1, expected**2], strict=True):
        np.testing.assert_allclose(to_numpy(leaf), want, rtol=1e-15)


def test_host_driven_runs_the_loop_on_the_chunks_library(xp, backend):
    """A host-driven kernel: on Dask its arrays are the chunks' (NumPy), its namespace
    argument is NumPy's, the user's function gets Dask arrays and its result comes back
    computed, and the kernel's outputs are Dask again; elsewhere it runs as written."""
    from collections import namedtuple

    from array_api_compat import array_namespace

    Out = namedtuple("Out", "total label")
    data = xp.asarray([1.0, 2.0, 3.0])
    seen = []

    def user(v):
        seen.append(type(v))
        return v * data  # closes over the caller's array

    def kernel(function, label, ns, x):
        kinds = {type(x), type(function(x))}
        return Out(function(x) + x, f"{label}:{len(kinds)}"), ns

    out, ns = _xp.host_driven(kernel, (user,), ("run", xp), (xp.asarray([2.0, 2.0, 2.0]),), xp=xp)
    assert out.label == "run:1"
    assert type(out.total) is type(data)  # the caller's library again
    assert set(seen) == {type(data)}  # the user's function always sees the caller's arrays
    np.testing.assert_array_equal(to_numpy(out.total), [4.0, 6.0, 8.0])
    if backend is Backend.DASK:
        assert ns is array_namespace(np.ones(1))  # the kernel ran on the chunks' library
    else:
        assert ns is xp


# --------------------------------------------------------------------------- linear algebra
@pytest.mark.parametrize("shape", [(1, 7, 3), (5, 4, 1), (2, 3, 6, 2), (3, 9, 6)])
def test_gram_of_a_stack_is_each_matrix_transposed_times_itself(xp, shape):
    values = np.random.default_rng(0).standard_normal(shape)
    out = _xp.gram(xp.asarray(values), xp=xp)
    assert tuple(out.shape) == (*shape[:-2], shape[-1], shape[-1])
    expected = np.einsum("...mi,...mj->...ij", values, values)
    tol = 100 * float(np.finfo(to_numpy(out).dtype).eps)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.xp_backend_only(Backend.JAX)
def test_a_host_read_under_jit_says_why_the_function_cannot_run_there():
    import jax
    import jax.numpy as jnp

    import m4ml_xp as mx

    with pytest.raises(TypeError, match="reads values on the host as it runs"):
        jax.jit(lambda L: mx.pagerank(L).scores)(jnp.full((3, 3), 1 / 3))


# --------------------------------------------------------------------------- control flow
def test_repeat_runs_the_body_so_many_times_or_until_told(xp, backend):
    """A fixed-count loop: Collatz-like steps from 7, the host test stopping eager loops early."""

    def body(state):
        value, count = state
        return xp.where(value % 2 == 0, value // 2, 3 * value + 1), count + 1

    start = (xp.asarray(7), xp.asarray(0))
    value, count = _xp.repeat(body, start, 5, xp=xp)
    assert (int(to_numpy(value)), int(to_numpy(count))) == (52, 5)  # 7 22 11 34 17 52
    value, count = _xp.repeat(body, start, 5, xp=xp, until=lambda s: int(to_numpy(s[0])) > 30)
    # the host test is for eager loops; a compiled one (JAX) runs all its iterations
    expected = (52, 5) if backend is Backend.JAX else (34, 3)
    assert (int(to_numpy(value)), int(to_numpy(count))) == expected


def _scaled_sum(function, factor, x):
    """A kernel for :func:`test_compile_per_program_shares_a_kernel_across_closures`."""
    return factor * function(x)


def test_compile_per_program_shares_a_kernel_across_closures(xp, backend):
    """Closures over different data run one compiled kernel on JAX; eager backends run as written."""
    x = xp.asarray(np.array([1.0, 2.0, 3.0]))
    datasets = [xp.asarray(np.array([0.5, -1.0, 4.0]) * k) for k in (1.0, 2.0, 3.0)]
    for data in datasets:
        out = _xp.compile_per_program(_scaled_sum, (lambda v, d=data: v * d,), (2.0,), (x,), xp=xp)
        np.testing.assert_allclose(to_numpy(out), 2.0 * to_numpy(x) * to_numpy(data))
    if backend is Backend.JAX:
        # one entry: three closures, one program (a fresh jit per closure would hold three)
        assert _xp._control._kernel_of_program(_scaled_sum, 1, 1)._cache_size() == 1

    if backend is not Backend.JAX:  # eager: any function runs, values read included

        def reads_values(v):
            return v * float(to_numpy(v)[0])

        out = _xp.compile_per_program(_scaled_sum, (reads_values,), (3.0,), (x,), xp=xp)
        np.testing.assert_allclose(to_numpy(out), 3.0 * to_numpy(x) * float(to_numpy(x)[0]))


@pytest.mark.xp_backend_only(Backend.JAX)
def test_kernels_on_cpu_compile_with_the_cpu_options_and_inline_under_a_callers_jit():
    """JAX takes compiler options at the top level only: a caller's jit gets the plain kernel."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    assert _xp._control.cpu_kernel_options() == _xp._control.CPU_KERNEL_OPTIONS
    kernel = _xp._control.jit(lambda v: 2 * v)
    default, on_cpu = kernel.variants
    x = jax.device_put(jnp.arange(3.0), jax.devices("cpu")[0])
    np.testing.assert_allclose(np.asarray(kernel(x)), [0.0, 2.0, 4.0])
    assert (default._cache_size(), on_cpu._cache_size()) == (0, 1)
    # the options variant inside a trace would raise ("can only be passed to top-level jax.jit")
    np.testing.assert_allclose(np.asarray(jax.jit(lambda v: kernel(v) + 1)(x)), [1.0, 3.0, 5.0])


@pytest.mark.xp_backend_only(Backend.JAX)
def test_an_xla_without_the_cpu_options_compiles_with_its_defaults(monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.setattr(_xp._control, "CPU_KERNEL_OPTIONS", {"xla_no_such_option": True})
    _xp._control.cpu_kernel_options.cache_clear()
    try:
        assert _xp._control.cpu_kernel_options() == {}
        kernel = _xp._control.jit(lambda v: 2 * v)
        assert not hasattr(kernel, "variants")  # plain jax.jit
        np.testing.assert_allclose(np.asarray(kernel(jax.numpy.arange(2.0))), [0.0, 2.0])
    finally:
        _xp._control.cpu_kernel_options.cache_clear()
