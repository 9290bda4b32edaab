"""The test harness itself.

A backend listed in M4ML_XP_BACKENDS must not be skipped silently, and the
contract and closeness checks must fail deliberately broken functions: a float64
result for float32 input, a result on another device or of another library.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from array_api_compat import array_namespace

from tests import test_contract as contract
from tests._helpers import assert_close_to
from tests.contract_registry import FUNCTIONS, Entry

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


# ------------------------------------------------------------------ the checks catch bugs
def _strict() -> tuple[Any, Any, Any]:
    """array-api-strict's namespace, its second device, and its default device."""
    strict = pytest.importorskip("array_api_strict")
    xp = array_namespace(strict.empty(0))
    return xp, strict.Device("device1"), strict.Device("CPU_DEVICE")


def _register(monkeypatch: pytest.MonkeyPatch, name: str, function: Any) -> list[str]:
    """Put `function` of one vector ``x`` in the contract registry; returns its call log."""
    calls: list[str] = []

    def call(a: dict[str, Any], **options: Any) -> Any:
        calls.append(name)
        return function(a["x"], a["xp"])

    entry = Entry(call, lambda rng: {"x": rng.standard_normal(3)}, bad={})
    monkeypatch.setitem(FUNCTIONS, name, entry)
    return calls


def test_contract_fails_a_float64_result_for_float32_input(monkeypatch):
    xp, device, _ = _strict()
    honest = _register(monkeypatch, "honest", lambda x, xp: 2.0 * x)
    widens = _register(monkeypatch, "widens", lambda x, xp: 2.0 * xp.astype(x, xp.float64))
    contract.test_float32_in_float32_out("honest", xp, device)
    with pytest.raises(AssertionError, match="widens returned float64 for float32 input"):
        contract.test_float32_in_float32_out("widens", xp, device)
    assert honest == ["honest"]
    assert widens == ["widens"]


def test_contract_fails_a_result_on_another_device(monkeypatch):
    xp, device, default = _strict()
    honest = _register(monkeypatch, "honest", lambda x, xp: 2.0 * x)
    moves = _register(monkeypatch, "moves", lambda x, xp: xp.asarray(2.0 * x, device=default))
    contract.test_inputs_unchanged_and_outputs_on_input_device("honest", xp, device)
    with pytest.raises(AssertionError, match=r"moves returned an array on .*CPU_DEVICE"):
        contract.test_inputs_unchanged_and_outputs_on_input_device("moves", xp, device)
    with pytest.raises(AssertionError, match=r"moves returned an array on .*CPU_DEVICE"):
        contract.test_float32_in_float32_out("moves", xp, device)
    assert honest == ["honest"]
    assert moves == ["moves", "moves"]


def test_closeness_helper_checks_dtype_device_and_library():
    xp, device, default = _strict()
    x = xp.asarray([1.0, 2.0], dtype=xp.float32, device=device)
    oracle = np.array([1.0, 2.0])
    assert_close_to(x, oracle, rtol=0, xp=xp, device=device, dtype=xp.float32)
    with pytest.raises(AssertionError, match="dtype float32, expected float64"):
        assert_close_to(x, oracle, rtol=0, xp=xp, device=device)
    with pytest.raises(AssertionError, match=r"result on .*device1"):
        assert_close_to(x, oracle, rtol=0, xp=xp, device=default, dtype=xp.float32)
    with pytest.raises(AssertionError, match="is not an array of"):
        assert_close_to(x, oracle, rtol=0, xp=np, dtype=np.float32)
    with pytest.raises(AssertionError):  # the values still count
        assert_close_to(x, oracle + 1e-3, rtol=1e-6, xp=xp, device=device, dtype=xp.float32)
