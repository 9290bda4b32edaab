"""The README's backend-support table, built from the contract tests' markers.

``python -m tests.support_table`` prints it; ``--write`` replaces the table in
``README.md`` between its ``support-table`` comments.  The suite checks that
the README's copy is current (``tests/test_support_table.py``).

It collects ``tests/test_contract.py`` for every backend (nothing runs) and
reads the ``skip`` / ``xfail`` markers the conftest applies per backend.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"
_KIND = {
    "test_rejects_bad_input": "bad input",
    "test_inputs_unchanged_and_outputs_on_input_device": "call",
    "test_same_seed_same_result": "seed",
    "test_seeded_result_agrees_with_numpy": "seed",
    "test_stopped_early_reports_and_warns": "convergence report",
}


class _Markers:
    """A pytest plugin that records, per (function, backend), the xfail reasons."""

    def __init__(self) -> None:
        self.reasons: dict[tuple[str, str], set[str]] = {}
        self.backends: list[str] = []

    @pytest.hookimpl(trylast=True)  # after the conftest turned backend markers into xfails
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            params = getattr(item, "callspec", None)
            if params is None or "xp" not in params.params or "name" not in params.params:
                continue
            backend = str(params.params["xp"])
            if backend not in self.backends:
                self.backends.append(backend)
            key = (params.params["name"], backend)
            self.reasons.setdefault(key, set())
            for marker in item.iter_markers("xfail"):
                kind = _KIND.get(item.originalname, item.originalname)
                self.reasons[key].add(f"{kind}: {marker.kwargs['reason']}")


def collect() -> _Markers:
    """Collect the contract tests for every backend and return their markers."""
    plugin = _Markers()
    os.environ.pop("M4ML_XP_BACKENDS", None)  # every backend, installed or not: nothing runs
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(
            [
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                str(ROOT / "tests/test_contract.py"),
            ],
            plugins=[plugin],
        )
    if code != 0:
        raise RuntimeError(f"collecting the contract tests failed (pytest exit code {code})")
    return plugin


def render(markers: _Markers) -> str:
    """The Markdown table: function x backend, ✓ or the numbered expected failures."""
    from tests.contract_registry import FUNCTIONS

    notes: list[str] = []
    header = "| function | " + " | ".join(f"`{b}`" for b in markers.backends) + " |"
    lines = [header, "|---" * (len(markers.backends) + 1) + "|"]
    for name in FUNCTIONS:
        cells = []
        for backend in markers.backends:
            reasons = sorted(markers.reasons.get((name, backend), set()))
            if not reasons:
                cells.append("✓")
                continue
            numbers = []
            for reason in reasons:
                if reason not in notes:
                    notes.append(reason)
                numbers.append(str(notes.index(reason) + 1))
            cells.append("✓ (xfail " + ", ".join(numbers) + ")")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{i}. {note}" for i, note in enumerate(notes, start=1)]
    return "\n".join(lines)


def readme_with(table: str, text: str) -> str:
    """`text` (the README) with the table between the markers replaced by `table`."""
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    table = render(collect())
    if args.write:
        README.write_text(readme_with(table, README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
