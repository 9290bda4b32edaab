"""The m4ml-xp command line: pca (the main job), info, pagerank, train, fit, bench.

An application of the library, above its core: one module per command (each
with ``add_parser`` and ``run``), shared argument helpers in
:mod:`m4ml_xp.cli.options`, and the comparison harness behind ``bench`` in
:mod:`m4ml_xp.cli.harness`.

Examples
--------
::

    m4ml-xp pca                      # MNIST PCA: embedded sample, best backend, PNGs
    m4ml-xp pca --augment 10         #   and of 10 rotated/sheared/shifted copies of each digit
    m4ml-xp pca --data path/to/mnist --augment 800 --backend torch --device cuda   # 8M digits
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
    m4ml-xp bench all --markdown --results benchmarks/RESULTS.md   # rewrite its block
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from m4ml_xp.cli import bench, fit, info, pagerank, pca, train
from m4ml_xp.cli.options import CLIError, missing
from m4ml_xp.cli.pagerank import read_edge_list

__all__ = ["CLIError", "build_parser", "main", "read_edge_list"]

#: The sub-commands, in the order ``--help`` lists them.
COMMANDS = (info, pagerank, train, pca, fit, bench)


def build_parser() -> argparse.ArgumentParser:
    """Return the ``m4ml-xp`` argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="m4ml-xp", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """Print a warning as one line naming its kind, not a file of the library."""
    print(f"m4ml-xp: {category.__name__}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``m4ml-xp`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores the display after the command
            warnings.showwarning = _show_warning
            status = args.func(args)
        sys.stdout.flush()  # here, so that a closed pipe is seen here, not at exit
        return status
    except BrokenPipeError:  # `m4ml-xp ... | head`: the reader has all it wanted
        # Python would report the unflushed rest at exit: send it nowhere instead
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CLIError as exc:
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional library (a backend, a reference tool) is missing
        print(f"m4ml-xp: error: {missing(exc)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        # the library's own input errors and unreadable files: one line, not a traceback
        print(f"m4ml-xp: error: {exc}", file=sys.stderr)
        return 2
