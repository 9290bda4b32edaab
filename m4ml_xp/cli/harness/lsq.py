"""``m4ml-xp bench lsq``: batched and single Levenberg–Marquardt against SciPy, in one run.

The workload is the issue's: many independent 3-parameter Gaussian fits
``a·exp(−(x − μ)² / 2σ²)`` of 100 noisy points each, with analytic Jacobians
on both sides, against a Python loop of ``scipy.optimize.least_squares(method="lm")``;
and one fit of 10,000 points against one ``least_squares`` call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_jax_namespace

from m4ml_xp import backends
from m4ml_xp.cli.harness.common import Timing, available_targets, best_time, format_table
from m4ml_xp.lsq import levenberg_marquardt, levenberg_marquardt_batched

Array = Any


def gaussian_problems(
    n_fits: int, n_points: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x (m,)``, noisy curves ``Y (B, m)``, the true and the starting parameters ``(B, 3)``.

    Starts are what a user would take from the data: the peak's height and
    position, and a unit width.
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(-5.0, 5.0, n_points)
    truth = np.column_stack(
        [rng.uniform(1, 3, n_fits), rng.uniform(-1, 1, n_fits), rng.uniform(0.5, 2, n_fits)]
    )
    Y = gaussian_curves(x, truth) + 0.05 * rng.standard_normal((n_fits, n_points))
    starts = np.column_stack([Y.max(axis=1), x[Y.argmax(axis=1)], np.ones(n_fits)])
    return x, Y, truth, starts


def gaussian_curves(x: Array, p: Array) -> Array:
    """``a·exp(−(x − μ)² / 2σ²)`` for parameters ``p (B, 3)``: ``(B, m)``."""
    xp = array_namespace(p)
    return p[:, :1] * xp.exp(-((x - p[:, 1:2]) ** 2) / (2 * p[:, 2:] ** 2))


def gaussian_fit_functions(x: Array) -> tuple[Callable[..., Array], Callable[..., Array]]:
    """Batched residual ``(p, y) -> (B, m)`` and Jacobian ``(p, y) -> (B, m, 3)`` for shared `x`."""

    def residual(p: Array, y: Array) -> Array:
        return gaussian_curves(x, p) - y

    def jacobian(p: Array, y: Array) -> Array:
        xp = array_namespace(p)
        a, mu, s = p[:, :1], p[:, 1:2], p[:, 2:]
        d = x - mu
        e = xp.exp(-(d**2) / (2 * s**2))
        ae_d = a * e * d / s**2
        return xp.stack([e, ae_d, ae_d * d / s], axis=2)

    return residual, jacobian


def scipy_loop(
    x: np.ndarray, Y: np.ndarray, starts: np.ndarray, *, exact: bool = True
) -> np.ndarray:
    """One ``least_squares(method="lm")`` per fit, with the analytic Jacobian or "2-point": ``(B, 3)``."""
    from scipy.optimize import least_squares

    residual, jacobian = gaussian_fit_functions(x)
    out = np.empty_like(starts)
    for i in range(Y.shape[0]):
        y = Y[i : i + 1]
        out[i] = least_squares(
            lambda p, y=y: residual(p[None, :], y)[0],
            starts[i],
            jac=(lambda p, y=y: jacobian(p[None, :], y)[0]) if exact else "2-point",
            method="lm",
        ).x
    return out


#: The batched NumPy comparisons, each against its SciPy loop: (label, SciPy loop's label).
NUMPY_ROWS = {
    "m4ml_xp numpy": "scipy least_squares(lm) loop",
    "m4ml_xp numpy (no jac, closure)": "scipy least_squares(lm) loop (2-point)",
}


def _alternating_best(
    theirs: Callable[[], Any], ours: Callable[[], Any], rounds: int, *,
    clock_theirs: Callable[[], float] = time.perf_counter,
    clock_ours: Callable[[], float] = time.perf_counter,
) -> tuple[float, Any, float, Any]:  # fmt: skip
    """Time `theirs` and `ours` in alternating rounds, synchronised: the best of each side.

    A shared, noisy machine slows both sides alike.  Returns ``(their best, their
    last result, our best, our last result)``.
    """
    best_theirs = best_ours = math.inf
    result_theirs = result_ours = None
    for _ in range(rounds):
        start = clock_theirs()
        result_theirs = backends.sync(theirs())
        best_theirs = min(best_theirs, clock_theirs() - start)
        start = clock_ours()
        result_ours = backends.sync(ours())
        best_ours = min(best_ours, clock_ours() - start)
    return best_theirs, result_theirs, best_ours, result_ours


def _numpy_interleaved(
    x: np.ndarray, Y: np.ndarray, starts: np.ndarray, looped: int, repeat: int,
    log: Callable[[str], None],
) -> list[tuple[str, float, Any, float, np.ndarray]]:  # fmt: skip
    """NumPy's batched fits and SciPy's loops in alternating rounds, the best of each side.

    With the analytic Jacobian (``args=``, as the SciPy loop gets its data), and without
    one, the residual closing over the data as users write it (``lambda b: f(x, b) - Y``)
    against SciPy's "2-point".  Returns ``(label, ours, fit, SciPy's time scaled to every
    fit, SciPy's parameters)`` per comparison.
    """
    residual, jacobian = gaussian_fit_functions(x)
    runs = {
        "m4ml_xp numpy": (
            lambda: levenberg_marquardt_batched(residual, starts, args=(Y,), jac=jacobian),
            True,
        ),
        "m4ml_xp numpy (no jac, closure)": (
            lambda: levenberg_marquardt_batched(lambda b: residual(b, Y), starts),
            False,
        ),
    }
    out = []
    for label, (run, exact) in runs.items():
        log(
            f"  {label} and {NUMPY_ROWS[label]} over {looped} fits, {repeat} alternating rounds ..."
        )
        run()  # warm-up
        theirs, reference, ours, fit = _alternating_best(
            lambda exact=exact: scipy_loop(x, Y[:looped], starts[:looped], exact=exact),
            run,
            repeat,
        )
        theirs *= Y.shape[0] / looped
        log(f"  {label}: {ours:.3f} s, SciPy's loop {theirs:.2f} s")
        out.append((label, ours, fit, theirs, reference))
    return out


def bench_lsq(
    *,
    n_fits: int = 10_000,
    n_points: int = 100,
    single_points: int = 10_000,
    scipy_fits: int | None = None,
    repeat: int = 3,
    targets: Collection[str] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[Timing], list[Timing]]:
    """Time the batched fits on every backend (and Dask) and the single fit, with SciPy.

    Returns the batched rows (``n_iter`` holds the number of fits, ``max_diff``
    the largest parameter difference from SciPy over fits both converged) and
    the single-fit rows.  `scipy_fits` times SciPy's loop on that many fits and
    scales the time to `n_fits` (the whole loop by default).  With `targets` (labels of
    ``common.TARGETS``) only those backends run and Dask does not.  Where JAX and
    optimistix import, optimistix's ``LevenbergMarquardt`` (``vmap`` + ``jit``) runs
    beside us on each JAX target.
    """
    x, Y, _truth, starts = gaussian_problems(n_fits, n_points)
    looped = n_fits if scipy_fits is None else min(scipy_fits, n_fits)
    scaled = "" if looped == n_fits else f"timed on {looped} fits, scaled"
    rows: list[Timing] = []
    references = {}

    def row(name: str, seconds: float, fit: Any, reference: np.ndarray, note: str = "") -> None:
        params = backends.to_numpy(fit.x)[:looped]
        ok = backends.to_numpy(fit.converged)[:looped]
        diff = float(np.abs(params[ok] - reference[ok]).max()) if ok.any() else None
        converged = int(backends.to_numpy(fit.converged).sum())
        rows.append(Timing(name, seconds, n_fits, diff, note or f"{converged} converged"))

    numpy_wanted = targets is None or "numpy" in targets
    if numpy_wanted:
        for label, ours, fit, theirs, reference in _numpy_interleaved(
            x, Y, starts, looped, max(repeat, 3), log
        ):
            rows.append(Timing(NUMPY_ROWS[label], theirs, n_fits, None, scaled))
            references[label] = reference
            row(label, ours, fit, reference)
    if "m4ml_xp numpy" not in references:
        log(f"  scipy least_squares(lm) loop over {looped} fits ...")
        seconds, references["m4ml_xp numpy"] = best_time(
            lambda: scipy_loop(x, Y[:looped], starts[:looped]), 1
        )
        rows.append(Timing(NUMPY_ROWS["m4ml_xp numpy"], seconds * n_fits / looped, n_fits, None, scaled))  # fmt: skip
    reference = references["m4ml_xp numpy"]

    def add(name: str, run: Callable[[], Any], note: str = "") -> None:
        try:
            run()  # warm-up: JIT compilation, allocator, CUDA context
            seconds, fit = best_time(run, repeat)
        except Exception as exc:  # e.g. a GPU out of memory at 1M fits: a row, not a crash
            message = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
            rows.append(Timing(name, math.nan, n_fits, None, f"failed: {message}"))
            log(f"  {name}: failed: {message}")
            return
        row(name, seconds, fit, reference, note)
        log(f"  {name}: {seconds:.3f} s")

    for label, _backend, xp, device in available_targets(targets):
        if label == "numpy":  # timed above, interleaved with SciPy's loops
            continue
        x_b = xp.asarray(x, device=device)
        residual, jacobian = gaussian_fit_functions(x_b)
        Y_b, p0 = xp.asarray(Y, device=device), xp.asarray(starts, device=device)

        def solve(p0: Any, Y_b: Any, residual: Any = residual, jacobian: Any = jacobian) -> Any:
            return levenberg_marquardt_batched(residual, p0, args=(Y_b,), jac=jacobian)

        if is_jax_namespace(xp):  # traced once: the whole solve is one lax.while_loop
            import jax

            solve = jax.jit(solve)
            label += " (jax.jit)"
        add(f"m4ml_xp {label}", lambda solve=solve, p0=p0, Y_b=Y_b: solve(p0, Y_b))
        if is_jax_namespace(xp):
            _optimistix_row(add, label.removesuffix(" (jax.jit)"), x_b, Y_b, p0, log)
    try:
        if targets is not None:
            raise ImportError("--targets given: no Dask row")
        import dask
        import dask.array as da
    except ImportError:
        pass
    else:
        residual, jacobian = gaussian_fit_functions(x)  # chunks are NumPy arrays
        chunks = max(1, n_fits // 8)
        Y_d, p0_d = (
            da.from_array(Y, chunks=(chunks, -1)),
            da.from_array(starts, chunks=(chunks, -1)),
        )

        def on_dask() -> Any:
            fit = levenberg_marquardt_batched(residual, p0_d, args=(Y_d,), jac=jacobian)
            return type(fit)(*dask.compute(*fit))

        add("m4ml_xp dask (numpy chunks, threads)", on_dask)
    return rows, bench_single(single_points, repeat=max(repeat, 5), targets=targets, log=log)


def _optimistix_row(
    add: Callable[..., None], label: str, x: Any, Y: Any, p0: Any, log: Callable[[str], None]
) -> None:
    """Add optimistix's Levenberg–Marquardt on every fit: one ``least_squares`` under ``vmap`` + ``jit``."""
    try:
        import jax
        import optimistix
    except ImportError:
        log("  optimistix is not installed (pip install optimistix): no optimistix row")
        return
    residual, _ = gaussian_fit_functions(x)
    solver = optimistix.LevenbergMarquardt(rtol=1e-8, atol=1e-8)

    def one(p: Any, y: Any) -> Any:
        solution = optimistix.least_squares(
            lambda q, y: residual(q[None, :], y[None, :])[0, :],
            solver,
            p,
            args=y,
            max_steps=256,
            throw=False,
        )
        return solution.value, solution.result == optimistix.RESULTS.successful

    solve = jax.jit(jax.vmap(one))

    def run() -> Any:
        params, ok = solve(p0, Y)
        return _Fit(params, ok)

    try:
        add(f"optimistix LevenbergMarquardt vmap+jit {label}", run)
    except Exception as exc:  # a version without one of these names: reported, not fatal
        log(f"  optimistix on {label}: not run ({type(exc).__name__}: {exc})")


class _Fit(NamedTuple):
    """The two fields of a batched result that the table reads."""

    x: Any
    converged: Any


def bench_single(
    n_points: int,
    *,
    repeat: int,
    targets: Collection[str] | None = None,
    log: Callable[[str], None],
) -> list[Timing]:
    """One Gaussian fit of `n_points`, ours on each backend vs SciPy, with and without Jacobians.

    With the analytic Jacobian on both sides, then without (SciPy's ``"2-point"``, our
    default). Each backend's rounds alternate with SciPy's, the best of each side kept,
    so that a shared, noisy machine slows both alike; CPU time (``time.process_time``)
    on CPUs, synchronised wall-clock time on accelerators. ``n_iter`` holds the residual
    evaluations and ``note`` the time over SciPy's best from the same rounds.
    """
    from scipy.optimize import least_squares

    x, Y, _truth, starts = gaussian_problems(1, n_points, seed=1)
    rows: list[Timing] = []
    residual, jacobian = gaussian_fit_functions(x)

    for exact in (True, False):
        kind = "analytic jac" if exact else "no jac"

        def scipy_fit(exact: bool = exact) -> Any:
            jac = (lambda p: jacobian(p[None, :], Y)[0]) if exact else "2-point"
            return least_squares(
                lambda p: residual(p[None, :], Y)[0], starts[0], jac=jac, method="lm"
            )

        reference = scipy_fit()
        scipy_row, scipy_best = len(rows), math.inf
        for label, _backend, xp, device in available_targets(targets):
            x_b, y_b = xp.asarray(x, device=device), xp.asarray(Y, device=device)
            residual_b, jacobian_b = gaussian_fit_functions(x_b)
            p0 = xp.asarray(starts[0], device=device)

            # one residual (and Jacobian) function for every round, as a user's fitting loop
            # holds it: JAX compiles a fit once per residual function, in the warm-up
            def one_residual(p: Any, residual_b: Any = residual_b, y_b: Any = y_b) -> Any:
                return residual_b(p[None, :], y_b)[0, :]

            def one_jacobian(p: Any, jacobian_b: Any = jacobian_b, y_b: Any = y_b) -> Any:
                return jacobian_b(p[None, :], y_b)[0, ...]

            def run(
                one_residual: Any = one_residual, one_jacobian: Any = one_jacobian,
                p0: Any = p0, exact: bool = exact,
            ) -> Any:  # fmt: skip
                return levenberg_marquardt(one_residual, p0, jac=one_jacobian if exact else None)

            run()
            clock = time.perf_counter if backends.on_accelerator(xp, device) else time.process_time
            theirs, _, ours, fit = _alternating_best(
                scipy_fit, run, repeat, clock_theirs=time.process_time, clock_ours=clock
            )
            scipy_best = min(scipy_best, theirs)
            diff = float(np.abs(backends.to_numpy(fit.x) - reference.x).max())
            note = f"{ours / theirs:.2f}"
            rows.append(Timing(f"m4ml_xp {label} ({kind})", ours, fit.nfev, diff, note))
            log(f"  single fit ({kind}), {label}: {ours * 1e3:.2f} ms, {note} x SciPy's")
        name = f"scipy least_squares(lm) ({kind})"
        rows.insert(scipy_row, Timing(name, scipy_best, int(reference.nfev), None, "1.00"))
    return rows


def format_lsq(
    batched: list[Timing],
    single: list[Timing],
    *,
    n_points: int,
    single_points: int,
    markdown: bool = False,
) -> str:
    """Both tables and the goal ratios of the issue."""
    by_name = {r.name: r for r in batched}
    scipy_row = by_name[NUMPY_ROWS["m4ml_xp numpy"]]

    def versus(r: Timing) -> Timing:
        """Return the SciPy loop a row is compared with ("2-point" for ours without a Jacobian)."""
        if r.name in NUMPY_ROWS.values():
            return r
        return by_name.get(NUMPY_ROWS.get(r.name, ""), scipy_row)

    lines = [
        [
            r.name,
            f"{r.seconds:.3f}",
            f"{r.n_iter / r.seconds:,.0f}",
            f"{versus(r).seconds / r.seconds:.1f}x",
            f"{r.max_diff:.1e}" if r.max_diff is not None else "-",
            r.note,
        ]
        for r in batched
    ]
    title = (
        f"{scipy_row.n_iter:,} Gaussian fits of {n_points} points, 3 parameters, analytic Jacobians "
        "(no jac: against SciPy's 2-point loop; NumPy rows: best of alternating rounds)"
    )
    header = [
        "implementation",
        "time [s]",
        "fits/s",
        "speed-up vs SciPy loop",
        "max |Δp| vs SciPy",
        "note",
    ]
    text = format_table(title, header, lines, markdown=markdown)
    single_lines = [
        [
            r.name,
            f"{r.seconds * 1e3:.2f}",
            f"{r.n_iter}",
            r.note,
            f"{r.max_diff:.1e}" if r.max_diff is not None else "-",
        ]
        for r in single
    ]
    text += "\n\n" + format_table(
        f"one Gaussian fit of {single_points:,} points (best of interleaved rounds)",
        ["implementation", "time [ms]", "nfev", "time / SciPy", "max |Δp| vs SciPy"],
        single_lines,
        markdown=markdown,
    )
    singles = {r.name: r for r in single}

    def speedup(name: str) -> str:
        row = by_name.get(name)
        return f"{versus(row).seconds / row.seconds:.1f}x" if row else "-"

    gpu = [r for r in batched if any(k in r.name for k in ("cuda", "cupy")) and r.seconds > 0]
    best_gpu = max((r.n_iter / r.seconds for r in gpu), default=None)
    ratios = [singles.get(f"m4ml_xp numpy ({kind})") for kind in ("analytic jac", "no jac")]
    goals = [
        f"goal numpy >= 10x the SciPy loop's fits/s (analytic jac, no jac): "
        f"{speedup('m4ml_xp numpy')}, {speedup('m4ml_xp numpy (no jac, closure)')}",
        "goal GPU >= 1,000,000 fits/s (with 1M fits): "
        + (f"{best_gpu:,.0f} fits/s" if best_gpu else "no GPU here"),
        "goal single fit <= 1.0x least_squares (analytic jac, no jac): "
        + ", ".join(r.note if r else "-" for r in ratios),
    ]
    return text + "\n\n" + "\n".join(("- " if markdown else "  ") + g for g in goals)
