"""The house: the core knows no backend outside its backend layer, and nothing points upward.

The core is ``m4ml_xp/`` without ``m4ml_xp/cli/`` (the applications).  Its backend layer
is ``m4ml_xp/_xp/`` and its public face ``m4ml_xp/backends.py``; every other core module
(the algorithms, checks, errors, scaling) is written once against the standard and asks
the layer, by name, for whatever a backend does its own way.  These tests read the
source (no imports), so they run without any backend installed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "m4ml_xp"
BACKEND_LAYER = ("_xp/", "backends.py")
APPLICATIONS = [PACKAGE / "cli", ROOT / "benchmarks", ROOT / "examples", ROOT / "scripts"]
BACKEND_LIBRARIES = {"numpy", "torch", "jax", "jaxlib", "cupy", "cupyx", "dask"}
BACKEND_NAME = re.compile(r"^(is_(dask|jax|torch|cupy|numpy)_|to_numpy$)")
MAX_LINES = 600

#: module -> {function (qualified name) or "*": why it may name a backend}
ALLOWED_BACKEND_NAMES: dict[str, dict[str, str]] = {
    # A file reader: IDX and NIST StRD files are parsed on the host (bytes -> NumPy) and
    # moved once with `xp.asarray(..., device=)`; nothing there computes on a backend.
    "datasets.py": {"*": "reads data files on the host with NumPy, then moves them once"},
    # The course's random internet is drawn on the host from NumPy's Generator, so a seed
    # gives the same graph on every backend (like `_xp.generator`), then moved once.
    "pagerank.py": {
        "<module>": "imports NumPy for the host-side graph generators below",
        "_link_probability": "host-side graph generation (NumPy Generator)",
        "generate_internet": "host-side graph generation (NumPy Generator)",
        "generate_internet_edges": "host-side graph generation (NumPy Generator)",
        "_sorted_unique": "host-side graph generation (NumPy Generator)",
        "_distinct_positions": "host-side graph generation (NumPy Generator)",
    },
    # A checkpoint is a NumPy .npz file by contract: `state_dict` returns host copies.
    "pca_stream.py": {
        "StreamingState.state_dict": "a saved state is host NumPy arrays by contract",
        "StreamingState.save": "writes the .npz checkpoint",
        "StreamingState.load": "reads the .npz checkpoint",
    },
}
ALLOWED_LONG: dict[str, str] = {}


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not _relative(p).startswith("cli/"))


def _algorithm_modules() -> list[Path]:
    return [p for p in _core_modules() if not _relative(p).startswith(BACKEND_LAYER)]


class _BackendNames(ast.NodeVisitor):
    """Collect ``(qualified function name, what)`` for every place a backend is named."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.aliases: set[str] = set()  # names bound to backend libraries (np, torch, ...)
        self.found: list[tuple[str, str]] = []

    def _add(self, what: str) -> None:
        self.found.append((".".join(self.scope) or "<module>", what))

    def _scoped(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in BACKEND_LIBRARIES:
                self._add(f"import {alias.name}")
                self.aliases.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if (node.module or "").split(".")[0] in BACKEND_LIBRARIES and not node.level:
            self._add(f"from {node.module} import ...")
            self.aliases.update(alias.asname or alias.name for alias in node.names)
        for alias in node.names:
            if BACKEND_NAME.match(alias.name):
                self._add(f"imports {alias.name}")

    def visit_Name(self, node: ast.Name) -> None:
        if BACKEND_NAME.match(node.id):
            self._add(node.id)
        elif node.id in self.aliases:
            self._add(f"uses {node.id}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if BACKEND_NAME.match(node.attr):
            self._add(node.attr)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute) and node.func.attr == "compute":
            self._add(".compute()")
        self.generic_visit(node)


def backend_names(source: str) -> list[tuple[str, str]]:
    """Return ``(function, what)`` for every backend named in `source` (a module's text)."""
    visitor = _BackendNames()
    visitor.visit(ast.parse(source))
    return visitor.found


def _imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of the modules `source` imports (`module`: its dotted name)."""
    found = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# --------------------------------------------------------------------------- the scanner itself
def test_the_scanner_finds_every_kind_of_backend_name():
    source = (
        "import numpy as np\n"
        "from m4ml_xp import _xp\n"
        "def f(x):\n"
        "    if _xp.is_dask_array(x):\n"
        "        return x.compute()\n"
        "    return np.asarray(_xp.to_numpy(x))\n"
        "class C:\n"
        "    def g(self):\n"
        "        import torch.nn\n"
        "        from jax import numpy as jnp\n"
        "        return jnp\n"
    )
    assert sorted(backend_names(source)) == sorted(
        [
            ("<module>", "import numpy"),
            ("f", "is_dask_array"),
            ("f", ".compute()"),
            ("f", "uses np"),
            ("f", "to_numpy"),
            ("C.g", "import torch.nn"),
            ("C.g", "from jax import ..."),
            ("C.g", "uses jnp"),
        ]
    )
    clean = "from m4ml_xp import _xp\ndef f(x, xp):\n    return _xp.is_lazy(x) or xp.sum(x)\n"
    assert backend_names(clean) == []


# --------------------------------------------------------------------------- the rules
@pytest.mark.parametrize("path", _algorithm_modules(), ids=_relative)
def test_algorithm_modules_name_no_backend(path):
    allowed = ALLOWED_BACKEND_NAMES.get(_relative(path), {})
    if "*" in allowed:
        pytest.skip(f"allow-listed: {allowed['*']}")
    leaks = sorted(
        {
            f"{function}: {what}"
            for function, what in backend_names(path.read_text(encoding="utf-8"))
            if function not in allowed
        }
    )
    assert not leaks, (
        f"{_relative(path)} names a backend; ask the backend layer (m4ml_xp._xp) by a named "
        f"function instead: {leaks}"
    )


def test_allow_list_has_no_stale_entries():
    for module, allowed in ALLOWED_BACKEND_NAMES.items():
        path = PACKAGE / module
        assert path.is_file(), module
        used = {function for function, _ in backend_names(path.read_text(encoding="utf-8"))}
        stale = {name for name in allowed if name != "*"} - used
        assert not stale, f"{module}: allow-listed but clean, remove them: {sorted(stale)}"


@pytest.mark.parametrize("path", _core_modules(), ids=_relative)
def test_the_core_imports_nothing_from_the_applications(path):
    imported = _imported_modules(path.read_text(encoding="utf-8"), _dotted(path))
    upward = sorted(name for name in imported if name.startswith("m4ml_xp.cli"))
    assert not upward, f"{_relative(path)} imports the CLI: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle of `graph` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                return [*path, name, target]
            if target not in state and (cycle := visit(target, [*path, name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": set(), "b": {"b2"}, "b2": {"b"}}) == ["b", "b2", "b"]


def test_the_core_has_no_import_cycles():
    modules = {_dotted(p): p for p in _core_modules()}
    graph = {
        name: {
            target
            for target in _imported_modules(path.read_text(encoding="utf-8"), name)
            if target in modules and target != name and not name.startswith(target + ".")
        }
        for name, path in modules.items()
    }
    assert len(graph) > 20  # every core module was read
    assert "m4ml_xp.pca" in graph["m4ml_xp.pca_stream"]  # and its imports seen
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_no_module_is_over_600_lines():
    long = {
        _relative(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and _relative(p) not in ALLOWED_LONG
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _application_files() -> list[Path]:
    return sorted(p for folder in APPLICATIONS for p in folder.rglob("*.py"))


@pytest.mark.parametrize("path", _application_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_applications_import_no_private_core_module(path):
    imported = _imported_modules(path.read_text(encoding="utf-8"), _dotted(path))
    private = sorted(
        name
        for name in imported
        if name.startswith("m4ml_xp.")
        and not name.startswith("m4ml_xp.cli")
        and any(part.startswith("_") and part != "__init__" for part in name.split(".")[1:2])
    )
    assert not private, f"imports private core modules: {private}; use m4ml_xp.backends"
