"""The test harness itself: a backend listed in M4ML_XP_BACKENDS must not be skipped silently."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(backends: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "M4ML_XP_BACKENDS": backends}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed here")
def test_listed_but_missing_backend_is_an_error():
    result = run_pytest("cupy", "tests/test_linalg.py::TestScalingMatrix::test_is_diagonal")
    assert result.returncode != 0
    assert "listed in M4ML_XP_BACKENDS but fails to import" in result.stdout


def test_unknown_backend_name_is_a_usage_error():
    result = run_pytest(
        "numpy,fortran", "tests/test_linalg.py::TestScalingMatrix::test_is_diagonal"
    )
    assert result.returncode != 0
    assert "unknown backends ['fortran']" in result.stdout + result.stderr


def test_selection_restricts_the_backends():
    result = run_pytest(
        "numpy:readonly",
        "tests/test_linalg.py::TestScalingMatrix::test_is_diagonal",
        "--collect-only",
    )
    assert result.returncode == 0, result.stdout
    assert "test_is_diagonal[numpy:readonly]" in result.stdout
    assert "test_is_diagonal[numpy]" not in result.stdout
