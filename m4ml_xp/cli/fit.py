"""``m4ml-xp fit``: Levenberg–Marquardt fits of NIST StRD problems or of data files."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import backends
from m4ml_xp.cli.models import MODELS
from m4ml_xp.cli.options import (
    CLIError,
    add_backend_arguments,
    float_list,
    nonnegative_int,
    positive_float,
    positive_int,
    resolve,
)


def add_parser(commands: Any) -> None:
    """Add ``fit`` to the sub-commands."""
    fit = commands.add_parser(
        "fit", help="least-squares fit of a NIST StRD problem or of a CSV with a named model"
    )
    fit.add_argument(
        "source", help="NIST StRD file or name (e.g. Misra1a), or a CSV/whitespace data file"
    )
    fit.add_argument(
        "--model",
        choices=sorted(MODELS),
        help="curve model for a data file (without it, SOURCE is a NIST StRD problem)",
    )
    fit.add_argument("--x-col", type=nonnegative_int, default=0, help="column of x (from 0)")
    fit.add_argument("--y-col", type=nonnegative_int, default=1, help="column of y")
    fit.add_argument(
        "--sigma-col", type=nonnegative_int, help="column of the uncertainties of y (weights)"
    )
    fit.add_argument("--p0", type=float_list, help="starting parameters, e.g. 1,0,2")
    fit.add_argument("--start", type=int, default=1, choices=[1, 2], help="NIST starting vector")
    fit.add_argument("--tol", type=positive_float, help="ftol = xtol = gtol (NIST: 1e-15)")
    fit.add_argument("--max-nfev", type=positive_int, help="most residual evaluations")
    add_backend_arguments(fit, job="fit")
    fit.add_argument(
        "--dtype", default="float64", choices=["float32", "float64"], help="working dtype"
    )
    fit.set_defaults(func=run)


def read_columns(path: str | Path) -> np.ndarray:
    """Numbers from a CSV or whitespace-separated file: ``#`` comments and a header line skipped."""
    rows: list[list[float]] = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        try:
            rows.append([float(t) for t in text])
        except ValueError:
            if rows:  # only a header may be non-numeric
                raise CLIError(f"{path}:{number}: not a row of numbers: {line.strip()!r}") from None
    if not rows:
        raise CLIError(f"{path}: no rows of numbers")
    if len({len(r) for r in rows}) != 1:
        raise CLIError(f"{path}: rows have different numbers of columns")
    return np.asarray(rows)


def _tolerances(args: argparse.Namespace, default: float) -> dict[str, Any]:
    tol = args.tol if args.tol is not None else default
    options: dict[str, Any] = {"ftol": tol, "xtol": tol, "gtol": tol}
    if args.max_nfev is not None:
        options["max_nfev"] = args.max_nfev
    return options


def run(args: argparse.Namespace) -> int:
    """Fit a NIST StRD problem or a model to a data file by Levenberg–Marquardt."""
    from m4ml_xp.datasets import load_nist_strd
    from m4ml_xp.lsq import curve_fit

    _label, xp, device = resolve(args.backend, args.device, "fit")
    dtype = getattr(xp, args.dtype)
    if args.model is None:  # a NIST StRD problem: certified values to compare with
        problem = load_nist_strd(args.source, xp=xp, device=device, dtype=dtype)
        p0 = (
            problem.starts[args.start - 1, :]
            if args.p0 is None
            else _start(args.p0, xp, device, dtype)
        )
        n_parameters = problem.starts.shape[1]
        if p0.shape[0] != n_parameters:
            names = ", ".join(f"b{i + 1}" for i in range(n_parameters))
            raise CLIError(f"--p0 needs {n_parameters} values for {problem.name}: {names}")
        start = time.perf_counter()
        fit = curve_fit(problem.model, problem.x, problem.y, p0, **_tolerances(args, 1e-15))
        seconds = time.perf_counter() - start
        print(f"{problem.name} (NIST StRD, start {args.start}): {problem.formula}")
        _print_fit(fit, seconds, [f"b{i + 1}" for i in range(p0.shape[0])])
        certified = backends.to_numpy(problem.certified)
        certified_std = backends.to_numpy(problem.certified_std)
        params, stderr = backends.to_numpy(fit.params), backends.to_numpy(fit.stderr)
        print(f"  {'':6} {'certified':>22} {'certified std':>14} {'digits':>7}")
        for i, name in enumerate(f"b{i + 1}" for i in range(len(certified))):
            print(
                f"  {name:6} {certified[i]:22.15g} {certified_std[i]:14.6g} "
                f"{_digits(params[i], certified[i]):7.1f}  (std error {_digits(stderr[i], certified_std[i]):.1f})"
            )
        rss = 2 * fit.result.cost
        print(
            f"  residual sum of squares {rss:.15g}, certified {problem.residual_ss:.15g} "
            f"({_digits(rss, problem.residual_ss):.1f} digits)"
        )
        return 0 if fit.result.converged else 1
    model = MODELS[args.model]
    table = read_columns(args.source)
    columns = [args.x_col, args.y_col] + ([args.sigma_col] if args.sigma_col is not None else [])
    if max(columns) >= table.shape[1]:
        raise CLIError(
            f"{args.source} has {table.shape[1]} columns; asked for column {max(columns)}"
        )
    x_np, y_np = table[:, args.x_col], table[:, args.y_col]
    p0 = (
        _start(args.p0, xp, device, dtype)
        if args.p0 is not None
        else xp.asarray(model.start(x_np, y_np), dtype=dtype, device=device)
    )
    if p0.shape[0] != len(model.parameters):
        raise CLIError(
            f"--p0 needs {len(model.parameters)} values for {args.model}: {', '.join(model.parameters)}"
        )
    sigma = None
    if args.sigma_col is not None:
        uncertainties = table[:, args.sigma_col]
        if not (uncertainties > 0).all():
            raise CLIError(
                f"--sigma-col {args.sigma_col}: uncertainties must be positive; that column "
                f"holds {uncertainties.min():g}"
            )
        sigma = xp.asarray(uncertainties, dtype=dtype, device=device)
    start = time.perf_counter()
    fit = curve_fit(
        model.function,
        xp.asarray(x_np, dtype=dtype, device=device),
        xp.asarray(y_np, dtype=dtype, device=device),
        p0,
        sigma=sigma,
        absolute_sigma=sigma is not None,
        **_tolerances(args, 1e-10),
    )
    seconds = time.perf_counter() - start
    print(f"{args.model}: y = {model.formula}, {table.shape[0]} points from {args.source}")
    _print_fit(fit, seconds, list(model.parameters))
    rss = 2 * fit.result.cost
    dof = table.shape[0] - len(model.parameters)
    chi2 = "chi-square" if sigma is not None else "residual sum of squares"
    print(f"  {chi2} {rss:.6g}" + (f", per degree of freedom {rss / dof:.6g}" if dof > 0 else ""))
    return 0 if fit.result.converged else 1


def _start(values: list[float], xp: Any, device: Any, dtype: Any) -> Any:
    return xp.asarray(values, dtype=dtype, device=device)


def _digits(value: float, certified: float) -> float:
    """NIST's log relative error (significant digits that agree), capped at 15."""
    if certified == 0:
        return 15.0 if value == 0 else 0.0
    error = abs(value - certified) / abs(certified)
    return min(15.0, -math.log10(error)) if error > 0 else 15.0


def _print_fit(fit: Any, seconds: float, names: list[str]) -> None:
    result = fit.result
    state = "converged" if result.converged else "NOT converged"
    print(
        f"  status {result.status} ({state}): {result.message} "
        f"{result.n_iter} iterations, {result.nfev} evaluations, {seconds * 1e3:.1f} ms"
    )
    params, stderr = backends.to_numpy(fit.params), backends.to_numpy(fit.stderr)
    print(f"  {'':6} {'value':>22} {'std error':>14}")
    for name, value, error in zip(names, params, stderr, strict=True):
        print(f"  {name:6} {value:22.15g} {error:14.6g}")
