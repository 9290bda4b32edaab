"""``m4ml-xp bench``: time m4ml_xp against the reference tools (the harness: :mod:`m4ml_xp.cli.harness`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from m4ml_xp.cli.options import (
    CLIError,
    add_backend_arguments,
    int_list,
    positive_float,
    positive_int,
    resolve,
)


def add_parser(commands: Any) -> None:
    """Add ``bench`` to the sub-commands."""
    bench = commands.add_parser("bench", help="time m4ml_xp against the reference tools in one run")
    bench.add_argument(
        "what", choices=["all", "pagerank", "nn", "lsq", "pca"], help="the section to time"
    )
    bench.add_argument(
        "--results",
        metavar="PATH",
        help="all: also write the report into PATH, replacing its generated block "
        "(appended when absent; the text around it is kept); nothing is written without it",
    )
    bench.add_argument("--small", action="store_true", help="pca: t10k only, not the 70k matrix")
    bench.add_argument(
        "--rows",
        type=int_list,
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
        type=positive_int,
        metavar="K",
        help="pagerank: also time K iterations against one: the cost of an iteration",
    )
    bench.add_argument(
        "--bandwidth",
        type=positive_float,
        default=4.3,
        help="pagerank: the GPU's memory bandwidth in TB/s for the per-iteration floor "
        "(default 4.3, an H200)",
    )
    bench.add_argument(
        "--stream",
        type=positive_float,
        metavar="GB",
        help="pca: instead, stream this many GB of generated 784-wide float32 rows",
    )
    bench.add_argument("--chunk-rows", type=positive_int, default=65_536, help="pca --stream")
    bench.add_argument(
        "--workers", type=positive_int, default=4, help="pca --stream: host generator threads"
    )
    # pca --stream: where the work happens (the other sections time every backend)
    add_backend_arguments(bench, job="stream", default="auto")
    bench.add_argument("--fits", type=positive_int, default=10_000, help="lsq: batched fits")
    bench.add_argument("--points", type=positive_int, default=100, help="lsq: points per fit")
    bench.add_argument(
        "--single-points", type=positive_int, default=10_000, help="lsq: points of the single fit"
    )
    bench.add_argument(
        "--scipy-fits", type=positive_int, help="lsq: time SciPy's loop on this many fits, scaled"
    )
    bench.add_argument(
        "--data", help="nn, pca: MNIST directory (default $M4ML_XP_DATA, else random)"
    )
    bench.add_argument("--batch", type=positive_int, default=100, help="nn: batch size")
    bench.add_argument("--nodes", type=positive_int, default=100_000, help="pagerank: pages")
    bench.add_argument("--edges", type=positive_int, default=1_000_000, help="pagerank: links")
    bench.add_argument(
        "--repeat", type=positive_int, default=3, help="interleaved rounds; the best of each side"
    )
    bench.add_argument(
        "--dtype", default="float64", choices=["float32", "float64"], help="pagerank, pca"
    )
    bench.add_argument(
        "--tol", type=positive_float, default=1e-6, help="NetworkX's tolerance (its default 1e-6)"
    )
    bench.add_argument("--no-networkx", action="store_true", help="skip the (slow) NetworkX run")
    bench.add_argument("--markdown", action="store_true", help="print a Markdown table")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Time m4ml_xp against the reference tools and print the ratios."""
    from m4ml_xp.cli.harness import common, sections

    print(f"machine: {common.machine_description()}")
    if args.what == "pca" and args.stream is not None:
        from m4ml_xp.cli.harness import pca as pca_harness

        label, xp, device = resolve(args.backend, args.device, "stream")
        print(f"streaming {args.stream:g} GB through {label}", file=sys.stderr)
        if args.backend in ("torch", "jax") and "cpu" in str(device).lower():
            print(
                f"note: {args.backend} runs on the CPU here; pass --device cuda (torch) or "
                "--device gpu (jax) to stream through a GPU",
                file=sys.stderr,
            )
        run = pca_harness.bench_streaming(
            xp, device, gigabytes=args.stream, rows=args.chunk_rows, workers=args.workers
        )
        print(pca_harness.format_streaming(label, run, markdown=args.markdown))
        return 0
    if args.what == "all":
        text = sections.run_all(args)
        print(text)
        if args.results is not None:
            results = Path(args.results)
            if not results.parent.is_dir():
                raise CLIError(f"--results {results}: folder {results.parent} does not exist")
            sections.write_block(results, text)
            print(f"wrote the generated block of {results}", file=sys.stderr)
        return 0
    print(sections.run_section(args.what, args))
    return 0
