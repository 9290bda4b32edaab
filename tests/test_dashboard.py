"""The asv suite puts every available implementation on one chart, and a published dashboard
has a graph for every benchmark.

The cheap part reads the suite's parameters (built at import time from what is
installed); the end-to-end part runs asv on one benchmark, two implementations
and the quick sizes into a scratch directory, publishes, and checks the graphs
with ``scripts/check_dashboard.py`` (the check ``nox -s dashboard`` runs on the
whole quick suite).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["bench_linalg", "bench_lsq", "bench_nn", "bench_pagerank", "bench_pca"]

#: benchmark class -> the reference tools the issues compare it with (when installed)
REFERENCES = {
    "TransformImage": {"scipy.ndimage"},
    "GramSchmidt": {"numpy.linalg.qr"},
    "PowerIteration": {"scipy eigsh"},
    "PageRankEdges": {"networkx", "scipy"},
    "PageRankDense": {"scipy eigs"},
    "BatchedGaussianFits": {"scipy least_squares loop"},
    "SingleLargeFit": {"scipy least_squares"},
    "MLPEpoch": {"torch autograd", "jax lax.scan"},
    "MLPBackprop": {"torch autograd"},
    "MnistPCA": {"scikit-learn"},
    "Jacobian": set(),
}
#: label -> the module that makes it available (CPU implementations)
CPU_BACKENDS = {
    "m4ml_xp[numpy]": "numpy",
    "m4ml_xp[array-api-strict]": "array_api_strict",
    "m4ml_xp[jax:cpu]": "jax",
    "m4ml_xp[torch:cpu]": "torch",
    "m4ml_xp[dask]": "dask",
}
TOOL_MODULES = {"scikit-learn": "sklearn", "numpy.linalg.qr": "numpy"}

pytest.importorskip("scipy")  # the suite's modules import it


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _suite_classes(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    """The benchmark classes, imported afresh (their parameters are built at import)."""
    monkeypatch.syspath_prepend(str(ROOT))
    for name in [m for m in sys.modules if m == "benchmarks" or m.startswith("benchmarks.")]:
        monkeypatch.delitem(sys.modules, name)
    classes = {}
    for module_name in MODULES:
        module = importlib.import_module(f"benchmarks.{module_name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and hasattr(cls, "params"):
                classes[name] = cls
    return classes


@pytest.fixture
def suite(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    monkeypatch.delenv("M4ML_XP_BENCH_IMPLEMENTATIONS", raising=False)
    monkeypatch.delenv("M4ML_XP_BENCH_QUICK", raising=False)
    return _suite_classes(monkeypatch)


def test_every_benchmark_class_is_known(suite) -> None:
    assert set(suite) == {*REFERENCES, "HandWrittenEigh", "MnistPCAMemory"}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_the_implementation_parameter_is_ours_on_every_backend_and_the_references(
    suite, name
) -> None:
    cls = suite[name]
    assert cls.param_names[0] == "implementation"
    implementations = cls.params[0]
    assert len(implementations) == len(set(implementations))
    ours = {label for label in implementations if label.startswith("m4ml_xp[")}
    installed = {label for label, module in CPU_BACKENDS.items() if _installed(module)}
    assert installed <= ours, f"{name}: installed backends missing: {installed - ours}"
    assert ours - installed <= {"m4ml_xp[cupy]", "m4ml_xp[torch:cuda]", "m4ml_xp[jax:gpu]"}
    expected_tools = {
        tool
        for tool in REFERENCES[name]
        if _installed(TOOL_MODULES.get(tool, tool.split()[0].split(".")[0]))
    }
    assert set(implementations) - ours == expected_tools


def test_the_memory_track_is_on_numpy_and_scikit_learn_only(suite) -> None:
    expected = ["m4ml_xp[numpy]"] + (["scikit-learn"] if _installed("sklearn") else [])
    assert suite["MnistPCAMemory"].params[0] == expected


def test_gpu_implementations_appear_only_where_a_gpu_computes(suite) -> None:
    from m4ml_xp import backends

    gpu_labels = {
        "m4ml_xp[cupy]": "cupy",
        "m4ml_xp[torch:cuda]": "torch",
        "m4ml_xp[jax:gpu]": "jax",
    }
    listed = set(suite["MnistPCA"].params[0])
    for label, backend in gpu_labels.items():
        assert (label in listed) == backends.gpu_backend_works(backend), label


def test_an_uninstalled_backend_or_tool_is_absent_not_na(monkeypatch) -> None:
    import importlib.util as util

    real = util.find_spec
    missing = {"torch", "sklearn"}
    monkeypatch.setattr(
        util, "find_spec", lambda name, *a: None if name in missing else real(name, *a)
    )
    classes = _suite_classes(monkeypatch)
    assert "m4ml_xp[torch:cpu]" not in classes["MnistPCA"].params[0]
    assert "scikit-learn" not in classes["MnistPCA"].params[0]
    assert "torch autograd" not in classes["MLPEpoch"].params[0]
    assert "m4ml_xp[numpy]" in classes["MnistPCA"].params[0]


def test_the_implementations_variable_keeps_only_those_named(monkeypatch) -> None:
    monkeypatch.setenv("M4ML_XP_BENCH_IMPLEMENTATIONS", "m4ml_xp[numpy], networkx")
    classes = _suite_classes(monkeypatch)
    assert classes["PageRankEdges"].params[0] == ["m4ml_xp[numpy]", "networkx"]
    assert classes["MnistPCA"].params[0] == ["m4ml_xp[numpy]"]


def test_quick_sizes_are_smaller(monkeypatch) -> None:
    full = _suite_classes(monkeypatch)
    monkeypatch.setenv("M4ML_XP_BENCH_QUICK", "1")
    quick = _suite_classes(monkeypatch)
    for name, cls in full.items():
        assert len(quick[name].params) == len(cls.params), name
    assert quick["PageRankEdges"].params[1] == ["10k/100k"]
    assert quick["BatchedGaussianFits"].params[1] == [1_000]
    assert quick["MnistPCA"].params[1] == ["t10k[:2000]"]


def _check_dashboard():
    spec = importlib.util.spec_from_file_location(
        "check_dashboard", ROOT / "scripts" / "check_dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dashboard_check_fails_on_a_dashboard_without_graphs(tmp_path) -> None:
    check = _check_dashboard().check
    index = {"benchmarks": {"bench_x.A.time_a": {"params": [["m4ml_xp[numpy]", "scipy"]]}}}
    (tmp_path / "index.json").write_text(json.dumps(index))
    (tmp_path / "graphs").mkdir()
    assert check(tmp_path)[0] == ["bench_x.A.time_a: no graph"]
    graph = tmp_path / "graphs" / "machine-x" / "bench_x.A.time_a.json"
    graph.parent.mkdir()
    graph.write_text(json.dumps([[1, [None, float("nan")]]]))
    assert check(tmp_path)[0] == ["bench_x.A.time_a: the graph has no measured value"]
    graph.write_text(json.dumps([[1, [0.5, None]]]))
    problems, notes = check(tmp_path)
    assert problems == []
    assert notes == ["bench_x.A.time_a(scipy): no value (skipped or failed)"]


@pytest.mark.slow
def test_a_published_quick_run_has_a_graph_per_benchmark_and_implementation(tmp_path) -> None:
    pytest.importorskip("asv")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("asv records results against a git commit: needs a git checkout")
    config = json.loads((ROOT / "asv.conf.json").read_text())
    config.update(
        repo=str(ROOT),
        benchmark_dir=str(ROOT / "benchmarks"),
        results_dir=str(tmp_path / "results"),
        html_dir=str(tmp_path / "html"),
        env_dir=str(tmp_path / "env"),
    )
    (tmp_path / "asv.conf.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # asv's machine file, ~/.asv-machine.json
        "M4ML_XP_BENCH_QUICK": "1",
        "M4ML_XP_BENCH_IMPLEMENTATIONS": "m4ml_xp[numpy],numpy.linalg.qr",
    }
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    asv = [sys.executable, "-m", "asv", "--config", str(tmp_path / "asv.conf.json")]
    for command in (
        ["machine", "--yes", "--machine", "test"],
        [
            "run",
            "--python=same",
            "--quick",
            "--machine",
            "test",
            f"--set-commit-hash={commit}",
            "--bench",
            r"GramSchmidt\.time",
        ],
        ["publish"],
    ):
        done = subprocess.run(asv + command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    check = _check_dashboard().check
    assert check(tmp_path / "html")[0], "the check must see the benchmarks that were not run"
    problems, notes = check(tmp_path / "html", bench=r"GramSchmidt\.time")
    assert problems == []
    assert notes == []
    graphs = [
        path
        for path in (tmp_path / "html" / "graphs").rglob("bench_linalg.GramSchmidt.*.json")
        if "summary" not in path.parts
    ]
    values = [v for path in graphs for _rev, row in json.loads(path.read_text()) for v in row]
    assert len(values) == 2  # one line per implementation: m4ml_xp[numpy] and numpy.linalg.qr
