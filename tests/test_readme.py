"""Every ```python block of README.md runs as printed (NumPy backend).

Each block runs on its own, in a fresh namespace and a scratch directory, with
``ConvergenceWarning`` turned into an error: a snippet that claims a result must
reach it.  A block whose first line starts ``# not run by tests/test_readme.py:``
is compiled and skipped with the rest of that line as the reason (a cluster, a
file), as is one that imports a library not installed in the session; one
whose first line starts ``# needs a CUDA GPU`` runs only where torch sees one
and CuPy imports.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path

import pytest

from m4ml_xp.errors import ConvergenceWarning
from tests.conftest import Backend

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = "# not run by tests/test_readme.py:"
GPU = "# needs a CUDA GPU"
#: Libraries a session may lack (a block importing one is skipped there; any other import runs)
OPTIONAL = frozenset(["dask", "torch", "jax", "cupy", "array_api_strict", "matplotlib", "zarr"])


def _blocks() -> list[tuple[int, str]]:
    """(first line number, source) of every ```python block."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    ]


BLOCKS = _blocks()


def _has_cuda() -> bool:
    if importlib.util.find_spec("cupy") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 8, "the README's ```python blocks were not found (a ```py fence?)"
    assert sum(len(CLAIM.findall(source)) for _, source in BLOCKS) >= 4, "no `# ->` claims found"


def _session_marks(source: str) -> list[pytest.MarkDecorator]:
    """A block on Dask runs in the Dask session (where Dask is installed), the rest with NumPy."""
    uses_dask = re.search(r"^import dask", source, flags=re.M) is not None
    return [pytest.mark.xp_backend_only(Backend.DASK)] if uses_dask else []


@pytest.mark.parametrize(
    ("line", "source"),
    [pytest.param(n, s, id=f"line{n}", marks=_session_marks(s)) for n, s in BLOCKS],
)
def test_block_runs_as_printed(line, source, tmp_path, monkeypatch) -> None:
    first = source.splitlines()[0]
    code = compile(source, f"README.md, block at line {line}", "exec")  # skipped ones too
    if first.startswith(SKIP):
        pytest.skip(first.removeprefix(SKIP).strip())
    if first.startswith(GPU) and not _has_cuda():
        pytest.skip(f"README line {line}: {first.removeprefix('#').strip()}")
    for module in re.findall(r"^(?:import|from) (\w+)", source, flags=re.M):
        if module in OPTIONAL and importlib.util.find_spec(module) is None:
            pytest.skip(f"README line {line} imports {module}, not installed here")
    # as on a fresh machine: no data directory (the package ships what the README names)
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # files the snippet writes (checkpoints) land here
    namespace = {"__name__": f"readme_line{line}"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        exec(code, namespace)
        for expression, claimed in CLAIM.findall(source):  # `expr  # -> value`: the value holds
            _assert_claim(eval(expression.removeprefix("print"), namespace), claimed, line)


#: A line ``expression  # -> [numbers]`` or ``print(...)  # -> True True``: what it shows.
CLAIM = re.compile(r"^(\S.*?)\s+# -> (\[[^\]]*\]|(?:True|False)(?: (?:True|False))*)", re.M)


def _assert_claim(value: object, claimed: str, line: int) -> None:
    if claimed.startswith("["):
        from tests._helpers import to_numpy

        expected = [float(v) for v in claimed.strip("[]").split(",")]
        actual = to_numpy(value)
        tolerance = 1e-12 * max(1.0, float(abs(actual).max()))
        assert actual.tolist() == pytest.approx(expected, abs=tolerance), f"README line {line}"
    else:
        values = value if isinstance(value, tuple) else (value,)
        assert [bool(v) for v in values] == [w == "True" for w in claimed.split()], line
