"""The ``m4ml-xp`` command line: ``info``, ``pagerank``, ``bench``.

Examples
--------
::

    m4ml-xp info
    m4ml-xp pagerank --generate 100000 --backend torch --top 10
    m4ml-xp pagerank edges.csv --damping 0.9
    m4ml-xp bench pagerank --nodes 100000 --edges 1000000
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import _xp
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
    return 0


def cmd_pagerank(args: argparse.Namespace) -> int:
    xp, device = _resolve(args.backend, args.device)
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
        f"backend {args.backend} ({device}), {args.dtype}: {status} after {result.n_iter} iterations, "
        f"L1 change {result.error:.2e}, {seconds * 1e3:.1f} ms ({seconds * 1e3 / max(result.n_iter, 1):.2f} ms/iter)"
    )
    top = np.argsort(-scores, kind="stable")[: args.top]
    print(f"top {len(top)} pages:")
    for rank, page in enumerate(top, start=1):
        name = labels[page] if labels is not None else str(page)
        print(f"  {rank:>3}. {name:<12} {scores[page]:.6e}")
    return 0 if result.converged else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from m4ml_xp import _bench

    if args.what != "pagerank":
        raise CLIError(f"unknown benchmark {args.what!r}; available: pagerank")
    print(f"machine: {_bench.machine_description()}")
    rows = _bench.bench_pagerank(
        args.nodes,
        args.edges,
        repeat=args.repeat,
        tol=args.tol,
        networkx=not args.no_networkx,
        dtype=args.dtype,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(
        _bench.format_pagerank(
            rows, n_nodes=args.nodes, n_edges=args.edges, tol=args.tol, markdown=args.markdown
        )
    )
    return 0


def _resolve(backend: str, device: str | None) -> tuple[Any, Any]:
    try:
        return _xp.resolve_backend(backend, device)
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


def build_parser() -> argparse.ArgumentParser:
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
    pr.add_argument("--backend", default="numpy", choices=sorted(_xp.BACKENDS))
    pr.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1, gpu")
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

    bench = commands.add_parser("bench", help="time m4ml_xp against the reference tools in one run")
    bench.add_argument("what", choices=["pagerank"])
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2
    except (
        ValueError,
        TypeError,
    ) as exc:  # the library's own input errors: one line, not a traceback
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
