"""Check a published asv dashboard: every benchmark has a graph, and every value run is in it.

    python scripts/check_dashboard.py .asv/html            # after `asv run` and `asv publish`
    python scripts/check_dashboard.py .asv/html --bench '^bench_pca\\.'

asv publishes an index with no graphs, and no error, when the results were not
saved (``asv run --python=same`` without ``--set-commit-hash``) or their commit
is on none of the configured branches.  This reads ``index.json`` (the benchmarks
and their parameters) and ``graphs/**/<benchmark>.json`` (one line per
parameter combination) and fails when a benchmark has no graph, or a graph has
no measured value at all; combinations without a value (skipped, "n/a", or
failed) are listed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
from pathlib import Path


def _measured(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def check(html_dir: Path, bench: str | None = None) -> tuple[list[str], list[str]]:
    """Return (problems, notes): problems fail the check, notes list the empty combinations."""
    index_file = html_dir / "index.json"
    if not index_file.is_file():
        return [f"{index_file} is missing: run `asv publish`"], []
    benchmarks = json.loads(index_file.read_text())["benchmarks"]
    if bench is not None:
        benchmarks = {name: b for name, b in benchmarks.items() if re.search(bench, name)}
    if not benchmarks:
        return [f"{index_file} lists no benchmarks"], []
    graphs: dict[str, list[Path]] = {}
    for path in (html_dir / "graphs").rglob("*.json"):
        if "summary" not in path.relative_to(html_dir / "graphs").parts:
            graphs.setdefault(path.stem, []).append(path)
    problems, notes = [], []
    for name, benchmark in sorted(benchmarks.items()):
        if name not in graphs:
            problems.append(f"{name}: no graph")
            continue
        combinations = list(itertools.product(*benchmark["params"])) or [()]
        seen = [False] * len(combinations)
        for path in graphs[name]:
            for _revision, values in json.loads(path.read_text()):
                values = values if isinstance(values, list) else [values]
                seen = [s or _measured(v) for s, v in zip(seen, values, strict=True)]
        if not any(seen):
            problems.append(f"{name}: the graph has no measured value")
        notes += [
            f"{name}({', '.join(combination)}): no value (skipped or failed)"
            for combination, found in zip(combinations, seen, strict=True)
            if not found
        ]
    return problems, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path, help="asv's html_dir (.asv/html)")
    parser.add_argument("--bench", help="only the benchmarks whose name matches this regex")
    args = parser.parse_args(argv)
    problems, notes = check(args.html_dir, args.bench)
    for line in notes:
        print(f"note: {line}")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not problems:
        print(f"{args.html_dir}: every benchmark has a graph with values")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
