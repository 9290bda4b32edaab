"""The README's backend-support table is the one the contract tests' markers give."""

from __future__ import annotations

import subprocess
import sys

from tests.support_table import END, README, ROOT, START


def test_readme_support_table_is_current() -> None:
    # a subprocess: collecting the suite again inside this pytest run would re-register conftest
    printed = subprocess.run(
        [sys.executable, "-m", "tests.support_table"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    text = README.read_text(encoding="utf-8")
    assert START in text
    assert END in text
    in_readme = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert in_readme == printed, (
        "README's support table is stale: run `python -m tests.support_table --write`"
    )
