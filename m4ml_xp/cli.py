"""The ``m4ml-xp`` command line: ``pca`` (the main job), ``info``, ``pagerank``, ``train``, ``fit``, ``bench``.

Examples
--------
::

    m4ml-xp pca                      # MNIST PCA: embedded sample, best backend, PNGs
    m4ml-xp info
    m4ml-xp pagerank --generate 100000 --backend auto --top 10   # auto: the job's fastest GPU
    m4ml-xp pagerank edges.csv --damping 0.9
    m4ml-xp train --data path/to/mnist --backend jax --epochs 10
    m4ml-xp fit Misra1a --start 2
    m4ml-xp fit peaks.csv --model gaussian --x-col 0 --y-col 1
    m4ml-xp bench pagerank --nodes 100000 --edges 1000000
    m4ml-xp bench nn --data path/to/mnist
    m4ml-xp bench lsq --fits 10000
    m4ml-xp bench pca --data path/to/mnist
    m4ml-xp bench pca --stream 40 --backend torch --device cuda
    m4ml-xp bench all --markdown     # every goal ratio; rewrites benchmarks/RESULTS.md's block
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import _pca_job, _xp
from m4ml_xp._models import MODELS
from m4ml_xp.pagerank import generate_internet_edges, pagerank_edges


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- edge files
def read_edge_list(
    path: str | Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str] | None]:
    """Read ``src dst [weight]`` lines (whitespace or comma separated, ``#`` comments).

    Integer node ids are used as given (``n_nodes = max id + 1``); any other labels
    are numbered in sorted order and returned as the label list.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read edge list {path}: {exc}") from None
    sources, targets, weights = [], [], []
    n_columns = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3) or (n_columns is not None and len(fields) != n_columns):
            raise CLIError(
                f"{path}, line {number}: expected 'src dst [weight]' consistently; got {line!r}"
            )
        n_columns = len(fields)
        sources.append(fields[0])
        targets.append(fields[1])
        if n_columns == 3:
            try:
                weights.append(float(fields[2]))
            except ValueError:
                raise CLIError(
                    f"{path}, line {number}: weight {fields[2]!r} is not a number"
                ) from None
    if not sources:
        raise CLIError(f"{path}: no edges found")
    try:
        src = np.array([int(s) for s in sources], dtype=np.int64)
        dst = np.array([int(t) for t in targets], dtype=np.int64)
        labels = None
        if min(src.min(), dst.min()) < 0:
            raise CLIError(f"{path}: integer node ids must be >= 0")
    except ValueError:
        labels_array, inverse = np.unique(np.array(sources + targets), return_inverse=True)
        src, dst = inverse[: len(sources)], inverse[len(sources) :]
        labels = labels_array.tolist()
    return src, dst, (np.array(weights) if weights else None), labels


# --------------------------------------------------------------------------- commands
def cmd_info(args: argparse.Namespace) -> int:
    """Print the versions, backends and devices this installation sees."""
    import m4ml_xp

    print(f"m4ml_xp {m4ml_xp.__version__}")
    for name, info in _xp.available_backends().items():
        if info["available"]:
            print(
                f"  {name:<17} {info['version']:<12} devices: {', '.join(info['devices'])}"
                f"  float64: {'yes' if info['float64'] else 'no'}"
            )
        else:
            print(f"  {name:<17} not available ({info['reason'].splitlines()[0][:70]})")
    working = [name for name in _xp.GPU_DEVICES if _xp.gpu_backend_works(name)]
    choices = ", ".join(f"{job} → {_xp.auto_backend(job, working)[0]}" for job in _xp.AUTO_ORDER)
    print(
        f"--backend auto (GPU backends that work here: {', '.join(working) or 'none'}): {choices}"
    )
    return 0


def cmd_pagerank(args: argparse.Namespace) -> int:
    """Rank the pages of the course's random internet or of an edge-list file."""
    label, xp, device = _resolve(args.backend, args.device, "pagerank")
    labels = None
    weights = None
    if args.generate is not None:
        if args.edges is not None:
            raise CLIError("give an edge-list file or --generate N, not both")
        n_nodes = args.generate
        start = time.perf_counter()
        src, dst = generate_internet_edges(n_nodes, seed=args.seed)
        print(
            f"generated the course's internet: {n_nodes:,} pages, {src.size:,} links "
            f"({time.perf_counter() - start:.2f} s)"
        )
    elif args.edges is not None:
        src, dst, weights, labels = read_edge_list(args.edges)
        n_nodes = len(labels) if labels is not None else int(max(src.max(), dst.max())) + 1
        print(f"read {args.edges}: {n_nodes:,} pages, {src.size:,} links")
    else:
        raise CLIError("give an edge-list file or --generate N")
    dtype = getattr(xp, args.dtype)
    s, d = xp.asarray(src, device=device), xp.asarray(dst, device=device)
    w = None if weights is None else xp.asarray(weights, dtype=dtype, device=device)
    kwargs = dict(
        n_nodes=n_nodes,
        weights=w,
        damping=args.damping,
        tol=args.tol,
        max_iter=args.max_iter,
        dtype=dtype,
    )
    start = time.perf_counter()
    result = _xp.sync(pagerank_edges(s, d, **kwargs))
    seconds = time.perf_counter() - start
    scores = _xp.to_numpy(result.scores)
    status = "converged" if result.converged else "NOT converged"
    print(
        f"backend {label}, {args.dtype}: {status} after {result.n_iter} iterations, "
        f"L1 change {result.error:.2e}, {seconds * 1e3:.1f} ms ({seconds * 1e3 / max(result.n_iter, 1):.2f} ms/iter)"
    )
    top = np.argsort(-scores, kind="stable")[: args.top]
    print(f"top {len(top)} pages:")
    for rank, page in enumerate(top, start=1):
        name = labels[page] if labels is not None else str(page)
        print(f"  {rank:>3}. {name:<12} {scores[page]:.6e}")
    return 0 if result.converged else 1


def cmd_train(args: argparse.Namespace) -> int:
    """Train the MLP by hand-written backpropagation and report its losses."""
    from m4ml_xp.datasets import load_mnist
    from m4ml_xp.nn import init_mlp, mlp_forward, train_mlp
    from m4ml_xp.optimize import adam, momentum, sgd

    label, xp, device = _resolve(args.backend, args.device, "train")
    location = args.data or os.environ.get("M4ML_XP_DATA")
    if not location:
        raise CLIError("no MNIST data: pass --data DIR or set M4ML_XP_DATA")
    dtype = getattr(xp, args.dtype)
    try:
        images, labels = load_mnist(location, kind=args.kind, xp=xp, device=device, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    n = images.shape[0]
    if args.n_train + args.n_test > n:
        raise CLIError(
            f"--n-train {args.n_train} + --n-test {args.n_test} > {n} images in {location}"
        )
    X_train, y_train = images[: args.n_train, :], labels[: args.n_train]
    X_test, y_test = images[n - args.n_test :, :], labels[n - args.n_test :]
    sizes = [images.shape[1], *args.hidden, 10]
    optimizer = {"sgd": sgd, "momentum": momentum, "adam": adam}[args.optimizer](args.lr)
    init = "he" if args.activation == "relu" else "glorot"
    params = init_mlp(sizes, seed=args.seed, xp=xp, device=device, dtype=dtype, init=init)
    print(
        f"MNIST {args.kind} from {location}: training on the first {args.n_train:,}, testing on the "
        f"last {args.n_test:,}; network {'-'.join(map(str, sizes))} ({args.activation}, softmax), "
        f"{args.optimizer}(lr={args.lr:g}), batch {args.batch_size}, {args.epochs} epochs, "
        f"backend {label}, {args.dtype}"
    )
    options = {"activation": args.activation, "output": "softmax"}
    start = time.perf_counter()
    result = train_mlp(
        params,
        X_train,
        y_train,
        optimizer=optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        loss="cross_entropy",
        validation=(X_test, y_test),
        progress=not args.quiet,
        **options,
    )
    seconds = time.perf_counter() - start
    for epoch, (loss, val) in enumerate(zip(result.losses, result.val_losses, strict=True), 1):
        print(f"  epoch {epoch:>3}: training loss {loss:.4f}, test loss {val:.4f}")
    scores = _xp.to_numpy(mlp_forward(result.params, X_test, **options)[-1])
    accuracy = float(np.mean(scores.argmax(axis=1) == _xp.to_numpy(y_test)))
    print(
        f"{result.status} after {result.n_epochs} epochs in {seconds:.2f} s "
        f"({seconds / max(result.n_epochs, 1):.2f} s/epoch); test accuracy {accuracy:.2%}"
    )
    return 0 if result.status != "diverged" else 1


# --------------------------------------------------------------------------- fit
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


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit a NIST StRD problem or a model to a data file by Levenberg–Marquardt."""
    from m4ml_xp.datasets import load_nist_strd
    from m4ml_xp.lsq import curve_fit

    _label, xp, device = _resolve(args.backend, args.device, "fit")
    dtype = getattr(xp, args.dtype)
    if args.model is None:  # a NIST StRD problem: certified values to compare with
        problem = load_nist_strd(args.source, xp=xp, device=device, dtype=dtype)
        p0 = (
            problem.starts[args.start - 1, :]
            if args.p0 is None
            else _start(args.p0, xp, device, dtype)
        )
        start = time.perf_counter()
        fit = curve_fit(problem.model, problem.x, problem.y, p0, **_tolerances(args, 1e-15))
        seconds = time.perf_counter() - start
        print(f"{problem.name} (NIST StRD, start {args.start}): {problem.formula}")
        _print_fit(fit, seconds, [f"b{i + 1}" for i in range(p0.shape[0])])
        certified = _xp.to_numpy(problem.certified)
        certified_std = _xp.to_numpy(problem.certified_std)
        params, stderr = _xp.to_numpy(fit.params), _xp.to_numpy(fit.stderr)
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
    sigma = (
        xp.asarray(table[:, args.sigma_col], dtype=dtype, device=device)
        if args.sigma_col is not None
        else None
    )
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
    params, stderr = _xp.to_numpy(fit.params), _xp.to_numpy(fit.stderr)
    print(f"  {'':6} {'value':>22} {'std error':>14}")
    for name, value, error in zip(names, params, stderr, strict=True):
        print(f"  {name:6} {value:22.15g} {error:14.6g}")


def cmd_bench(args: argparse.Namespace) -> int:
    """Time m4ml_xp against the reference tools and print the ratios."""
    from m4ml_xp import _bench, _bench_all

    print(f"machine: {_bench.machine_description()}")
    if args.what == "pca" and args.stream is not None:
        from m4ml_xp import _bench_pca

        label, xp, device = _resolve(args.backend, args.device, "stream")
        print(f"streaming {args.stream:g} GB through {label}", file=sys.stderr)
        if args.backend in ("torch", "jax") and "cpu" in str(device).lower():
            print(
                f"note: {args.backend} runs on the CPU here; pass --device cuda (torch) or "
                "--device gpu (jax) to stream through a GPU",
                file=sys.stderr,
            )
        run = _bench_pca.bench_streaming(
            xp, device, gigabytes=args.stream, rows=args.chunk_rows, workers=args.workers
        )
        print(_bench_pca.format_streaming(label, run, markdown=args.markdown))
        return 0
    if args.what == "all":
        text = _bench_all.run_all(args)
        print(text)
        results = Path(args.results)
        if args.markdown and results.parent.is_dir():
            _bench_all.write_block(results, text)
            print(f"wrote the generated block of {results}", file=sys.stderr)
        return 0
    print(_bench_all.run_section(args.what, args))
    return 0


def _resolve(backend: str, device: str | None, job: str) -> tuple[str, Any, Any]:
    """``(label, namespace, device)`` for ``--backend`` / ``--device``; ``auto`` by `job`."""
    try:
        return _pca_job.pick_backend(backend, device, job)
    except ImportError as exc:
        raise CLIError(
            f"backend {backend!r} is not installed here ({exc}); see `m4ml-xp info`"
        ) from None
    except ValueError as exc:
        raise CLIError(str(exc)) from None


# --------------------------------------------------------------------------- parser
def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be integers separated by commas; got {text}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers; got {text}")
    return values


def _float_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be numbers separated by commas; got {text}"
        ) from None
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"must be finite numbers; got {text}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """Return the ``m4ml-xp`` argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="m4ml-xp", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="backends found, versions, devices, float64 support")
    info.set_defaults(func=cmd_info)

    pr = commands.add_parser("pagerank", help="PageRank of an edge list or a generated internet")
    pr.add_argument(
        "edges", nargs="?", help="edge-list file: 'src dst [weight]' per line, whitespace or CSV"
    )
    pr.add_argument(
        "--generate",
        type=_positive_int,
        metavar="N",
        help="use the course's random internet of N pages",
    )
    pr.add_argument("--seed", type=int, default=0, help="seed for --generate")
    _pca_job.add_backend_arguments(pr, job="pagerank")
    pr.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    pr.add_argument("--damping", type=float, default=0.85)
    pr.add_argument(
        "--tol",
        type=_positive_float,
        default=1e-10,
        help="NetworkX-style: stop when the L1 change < n_nodes * tol",
    )
    pr.add_argument("--max-iter", type=_positive_int, default=100)
    pr.add_argument("--top", type=_positive_int, default=10)
    pr.set_defaults(func=cmd_pagerank)

    train = commands.add_parser("train", help="train an MLP classifier on MNIST by backprop")
    train.add_argument("--data", help="directory of the MNIST IDX files (default: $M4ML_XP_DATA)")
    train.add_argument("--kind", default="test", choices=["test", "train"], help="which file set")
    train.add_argument("--n-train", type=_positive_int, default=8000, help="first N images train")
    train.add_argument("--n-test", type=_positive_int, default=2000, help="last N images test")
    train.add_argument(
        "--hidden", type=_int_list, default=[128], help="hidden layer sizes, e.g. 128 or 256,64"
    )
    train.add_argument("--activation", default="relu", choices=["relu", "tanh", "sigmoid"])
    train.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "momentum"])
    train.add_argument("--lr", type=_positive_float, default=1e-3)
    train.add_argument("--epochs", type=_positive_int, default=10)
    train.add_argument("--batch-size", type=_positive_int, default=100)
    train.add_argument("--seed", type=int, default=0)
    _pca_job.add_backend_arguments(train, job="train")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    _pca_job.add_parser(commands, _positive_int)

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
    fit.add_argument("--x-col", type=int, default=0, help="column of x (from 0)")
    fit.add_argument("--y-col", type=int, default=1, help="column of y")
    fit.add_argument("--sigma-col", type=int, help="column of the uncertainties of y (weights)")
    fit.add_argument("--p0", type=_float_list, help="starting parameters, e.g. 1,0,2")
    fit.add_argument("--start", type=int, default=1, choices=[1, 2], help="NIST starting vector")
    fit.add_argument("--tol", type=_positive_float, help="ftol = xtol = gtol (NIST: 1e-15)")
    fit.add_argument("--max-nfev", type=_positive_int)
    _pca_job.add_backend_arguments(fit, job="fit")
    fit.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    fit.set_defaults(func=cmd_fit)

    bench = commands.add_parser("bench", help="time m4ml_xp against the reference tools in one run")
    bench.add_argument("what", choices=["all", "pagerank", "nn", "lsq", "pca"])
    bench.add_argument(
        "--results",
        default="benchmarks/RESULTS.md",
        help="all --markdown: the file whose generated block is rewritten (when its folder exists)",
    )
    bench.add_argument("--small", action="store_true", help="pca: t10k only, not the 70k matrix")
    bench.add_argument(
        "--rows",
        type=_int_list,
        default=[],
        help="pca: also these sizes, e.g. 1000000 (the 70k matrix repeated)",
    )
    bench.add_argument(
        "--targets",
        help="pagerank, lsq, pca: only these backends (labels such as cupy,torch:cuda or 'gpu'); "
        "the CPU references shrink to what the ratios divide by",
    )
    bench.add_argument(
        "--steady-iters",
        type=_positive_int,
        metavar="K",
        help="pagerank: also time K iterations against one: the cost of an iteration",
    )
    bench.add_argument(
        "--bandwidth",
        type=_positive_float,
        default=4.3,
        help="pagerank: the GPU's memory bandwidth in TB/s for the per-iteration floor "
        "(default 4.3, an H200)",
    )
    bench.add_argument(
        "--stream",
        type=_positive_float,
        metavar="GB",
        help="pca: instead, stream this many GB of generated 784-wide float32 rows",
    )
    bench.add_argument("--chunk-rows", type=_positive_int, default=65_536, help="pca --stream")
    bench.add_argument(
        "--workers", type=_positive_int, default=4, help="pca --stream: host generator threads"
    )
    # pca --stream: where the work happens (the other sections time every backend)
    _pca_job.add_backend_arguments(bench, job="stream", default="auto")
    bench.add_argument("--fits", type=_positive_int, default=10_000, help="lsq: batched fits")
    bench.add_argument("--points", type=_positive_int, default=100, help="lsq: points per fit")
    bench.add_argument(
        "--single-points", type=_positive_int, default=10_000, help="lsq: points of the single fit"
    )
    bench.add_argument(
        "--scipy-fits", type=_positive_int, help="lsq: time SciPy's loop on this many fits, scaled"
    )
    bench.add_argument(
        "--data", help="nn, pca: MNIST directory (default $M4ML_XP_DATA, else random)"
    )
    bench.add_argument("--batch", type=_positive_int, default=100, help="nn: batch size")
    bench.add_argument("--nodes", type=_positive_int, default=100_000)
    bench.add_argument("--edges", type=_positive_int, default=1_000_000)
    bench.add_argument("--repeat", type=_positive_int, default=3)
    bench.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    bench.add_argument(
        "--tol", type=_positive_float, default=1e-6, help="NetworkX's tolerance (its default 1e-6)"
    )
    bench.add_argument("--no-networkx", action="store_true", help="skip the (slow) NetworkX run")
    bench.add_argument("--markdown", action="store_true", help="print a Markdown table")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``m4ml-xp`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an explicit --backend whose library is missing
        print(f"m4ml-xp: error: not installed here ({exc}); see `m4ml-xp info`", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        # the library's own input errors and unreadable files: one line, not a traceback
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
