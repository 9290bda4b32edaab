"""``m4ml-xp bench``: one benchmark, or all of them with every goal ratio in one run.

``bench all --results PATH`` also rewrites the generated block of PATH (between its
``bench-all`` comments; ``benchmarks/RESULTS.md`` in a checkout); the hand-written
analysis around the block is kept.  Nothing is written without ``--results``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from pathlib import Path

from m4ml_xp.cli.harness import common

START, END = "<!-- bench-all:start -->", "<!-- bench-all:end -->"
SECTIONS = {
    "pagerank": "PageRank on edge lists vs NetworkX and a hand-written SciPy CSR loop",
    "nn": "MLP: one epoch by hand-written backprop vs torch autograd and a JAX lax.scan",
    "lsq": "Least squares: batched Levenberg–Marquardt vs a SciPy least_squares loop",
    "pca": "PCA of MNIST vs scikit-learn: time, eigenvalue error, memory",
}


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def _targets(args: argparse.Namespace) -> tuple[str, ...] | None:
    return common.parse_targets(getattr(args, "targets", None))


def run_section(what: str, args: argparse.Namespace, log: Callable[[str], None] = _log) -> str:
    """Run one benchmark with the command line's options; return its tables and goals."""
    if what == "pca":
        from m4ml_xp.cli.harness import pca as pca_harness

        tables = pca_harness.bench_pca(
            data=args.data,
            repeat=args.repeat,
            large=not args.small,
            rows=getattr(args, "rows", ()),
            targets=_targets(args),
            log=log,
        )
        return pca_harness.format_pca(tables, k=50, markdown=args.markdown)
    if what == "lsq":
        from m4ml_xp.cli.harness import lsq as lsq_harness

        batched, single = lsq_harness.bench_lsq(
            n_fits=args.fits,
            n_points=args.points,
            single_points=args.single_points,
            scipy_fits=args.scipy_fits,
            repeat=args.repeat,
            targets=_targets(args),
            log=log,
        )
        return lsq_harness.format_lsq(
            batched,
            single,
            n_points=args.points,
            single_points=args.single_points,
            markdown=args.markdown,
        )
    if what == "nn":
        rows, described = common.bench_nn(
            data=args.data, batch=args.batch, repeat=args.repeat, log=log
        )
        return common.format_nn(rows, described=described, batch=args.batch, markdown=args.markdown)
    rows = common.bench_pagerank(
        args.nodes,
        args.edges,
        repeat=args.repeat,
        tol=args.tol,
        networkx=not args.no_networkx,
        dtype=args.dtype,
        targets=_targets(args),
        steady=getattr(args, "steady_iters", None),
        bandwidth=getattr(args, "bandwidth", None),
        log=log,
    )
    return common.format_pagerank(
        rows, n_nodes=args.nodes, n_edges=args.edges, tol=args.tol, markdown=args.markdown
    )


def goal_lines(text: str) -> list[str]:
    """Return the goal ratios a section's text reports (its ``goal ...`` lines)."""
    lines = [line.strip().removeprefix("- ").strip() for line in text.splitlines()]
    return [line for line in lines if line.startswith("goal") or "(goal" in line]


def run_all(args: argparse.Namespace, log: Callable[[str], None] = _log) -> str:
    """Every benchmark in one process: the goal summary first, then each section's tables."""
    texts = {}
    for what, title in SECTIONS.items():
        log(f"== {title}")
        texts[what] = run_section(what, args, log)
    today = datetime.date.today().isoformat()
    out = [
        f"## Latest `m4ml-xp bench all` — {today}",
        "",
        f"Machine: {common.machine_description()}",
        "",
    ]
    out += ["### Goals", ""]
    out += [f"- {what}: {goal}" for what, text in texts.items() for goal in goal_lines(text)]
    for what, title in SECTIONS.items():
        out += ["", f"### {title}", "", texts[what]]
    return "\n".join(out)


def write_block(path: Path, text: str) -> None:
    """Replace the generated block of `path` with `text` (append the block when absent)."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"{START}\n{text}\n{END}"
    if START in old and END in old:
        before, rest = old.split(START, 1)
        new = before + block + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new, encoding="utf-8")
