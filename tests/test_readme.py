"""Every ```python block of README.md runs as printed (NumPy backend).

Each block runs on its own, in a fresh namespace and a scratch directory, with
``ConvergenceWarning`` turned into an error: a snippet that claims a result must
reach it.  A block whose first line starts ``# not run by tests/test_readme.py:``
is skipped with the rest of that line as the reason (a cluster, a file); one
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

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP = "# not run by tests/test_readme.py:"
GPU = "# needs a CUDA GPU"


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
    assert len(BLOCKS) >= 4, "the README's ```python blocks were not found"


@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_block_runs_as_printed(line, source, tmp_path, monkeypatch) -> None:
    first = source.splitlines()[0]
    if first.startswith(SKIP):
        pytest.skip(first.removeprefix(SKIP).strip())
    if first.startswith(GPU) and not _has_cuda():
        pytest.skip(f"README line {line}: {first.removeprefix('#').strip()}")
    # as on a fresh machine: no data directory (the package ships what the README names)
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # files the snippet writes (checkpoints) land here
    code = compile(source, f"README.md, block at line {line}", "exec")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        exec(code, {"__name__": f"readme_line{line}"})
