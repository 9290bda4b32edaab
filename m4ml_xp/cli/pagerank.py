"""``m4ml-xp pagerank``: PageRank of an edge-list file or of the course's random internet."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from m4ml_xp import backends
from m4ml_xp.cli.options import (
    CLIError,
    add_backend_arguments,
    positive_float,
    positive_int,
    resolve,
)
from m4ml_xp.pagerank import generate_internet_edges, pagerank_edges


def add_parser(commands: Any) -> None:
    """Add ``pagerank`` to the sub-commands."""
    pr = commands.add_parser("pagerank", help="PageRank of an edge list or a generated internet")
    pr.add_argument(
        "edges", nargs="?", help="edge-list file: 'src dst [weight]' per line, whitespace or CSV"
    )
    pr.add_argument(
        "--generate",
        type=positive_int,
        metavar="N",
        help="use the course's random internet of N pages",
    )
    pr.add_argument("--seed", type=int, default=0, help="seed for --generate")
    add_backend_arguments(pr, job="pagerank")
    pr.add_argument(
        "--dtype", default="float64", choices=["float32", "float64"], help="of the scores"
    )
    pr.add_argument("--damping", type=float, default=0.85, help="probability of following a link")
    pr.add_argument(
        "--tol",
        type=positive_float,
        default=1e-10,
        help="NetworkX-style: stop when the L1 change < n_nodes * tol",
    )
    pr.add_argument("--max-iter", type=positive_int, default=100, help="most iterations")
    pr.add_argument("--top", type=positive_int, default=10, help="pages to print")
    pr.set_defaults(func=run)


#: Column names that make the first line of an edge list a header rather than an edge.
HEADER_WORDS = frozenset(
    ["src", "dst", "source", "target", "from", "to", "weight", "u", "v", "node", "head", "tail"]
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_header(first: list[str], rest: list[list[str]]) -> bool:
    """Whether the first line names the columns rather than being an edge.

    Column names (:data:`HEADER_WORDS`); three fields none of which is a number (no
    edge has a word as weight); or words above lines whose ids are all numbers.
    """
    if {field.lower() for field in first} <= HEADER_WORDS:
        return True
    if any(map(_is_number, first)):
        return False
    numeric_ids = bool(rest) and all(_is_number(f) for fields in rest for f in fields[:2])
    return len(first) == 3 or numeric_ids


def read_edge_list(
    path: str | Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str] | None]:
    """Read ``src dst [weight]`` lines (whitespace or comma separated, ``#`` comments).

    Integer node ids are used as given (``n_nodes = max id + 1``); any other labels
    are numbered in sorted order and returned as the label list.  A first line of
    column names is a CSV header and skipped: known names (``src,dst,weight``,
    ``source target`` …: :data:`HEADER_WORDS`), three fields none of which is a
    number, or any words above numeric ids (``from_id,to_id``).  Quotes around a
    field are dropped.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read edge list {path}: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if line:
            rows.append((number, line, [field.strip("\"'") for field in line.split()]))
    n_columns = None
    if rows and _is_header(rows[0][2], [fields for _, _, fields in rows[1:]]):
        n_columns, rows = len(rows[0][2]), rows[1:]  # the edges have the header's columns
    sources, targets, weights = [], [], []
    for number, line, fields in rows:
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


def run(args: argparse.Namespace) -> int:
    """Rank the pages of the course's random internet or of an edge-list file."""
    label, xp, device = resolve(args.backend, args.device, "pagerank")
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
    result = backends.sync(pagerank_edges(s, d, **kwargs))
    seconds = time.perf_counter() - start
    scores = backends.to_numpy(result.scores)
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
