"""The m4ml-xp command line, run in-process through its `main`."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from m4ml_xp.cli import main, read_edge_list


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_lists_numpy(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "numpy" in out
    assert "float64: yes" in out
    from m4ml_xp import backends

    assert f"pca → {backends.auto_backend('pca')[0]}" in out


def test_pagerank_generated_internet(capsys):
    code, out, _ = run(capsys, "pagerank", "--generate", "2000", "--top", "3")
    assert code == 0
    assert "converged after" in out
    assert out.count("e-0") >= 3  # three scores printed


def test_pagerank_edge_file_matches_networkx(capsys, tmp_path):
    edges = [("a", "b", 1.0), ("b", "c", 2.0), ("c", "a", 1.0), ("c", "b", 0.5)]
    path = tmp_path / "edges.csv"
    path.write_text("# src,dst,weight\n" + "\n".join(f"{s},{d},{w}" for s, d, w in edges) + "\n")
    code, out, _ = run(capsys, "pagerank", str(path), "--top", "3", "--tol", "1e-12")
    assert code == 0
    G = nx.DiGraph()
    G.add_weighted_edges_from(edges)
    expected = nx.pagerank(G, tol=1e-12)
    best = max(expected, key=expected.get)
    assert f"1. {best}" in out
    assert f"{expected[best]:.6e}" in out


def test_read_edge_list_whitespace_integer_ids(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_text("0 3\n3   1  # comment\n\n2\t0\n")
    src, dst, weights, labels = read_edge_list(path)
    np.testing.assert_array_equal(src, [0, 3, 2])
    np.testing.assert_array_equal(dst, [3, 1, 0])
    assert weights is None
    assert labels is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0 1\n1\n", "line 2: expected 'src dst"),
        ("0 1 1.0\n1 0\n", "line 2: expected 'src dst"),
        ("0 1 heavy\n", "weight 'heavy' is not a number"),
        ("# nothing\n", "no edges found"),
    ],
)
def test_bad_edge_files_are_one_line_errors(capsys, tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    code, _, err = run(capsys, "pagerank", str(path))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_missing_file_and_conflicting_sources(capsys, tmp_path):
    code, _, err = run(capsys, "pagerank", str(tmp_path / "missing.txt"))
    assert code == 2
    assert "cannot read edge list" in err
    code, _, err = run(capsys, "pagerank", str(tmp_path / "missing.txt"), "--generate", "10")
    assert code == 2
    assert "not both" in err


def test_library_errors_are_reported_not_raised(capsys):
    code, _, err = run(capsys, "pagerank", "--generate", "10", "--damping", "2")
    assert code == 2
    assert "`damping` must be in" in err


def test_bench_pagerank_prints_ratios(capsys):
    code, out, _ = run(
        capsys, "bench", "pagerank", "--nodes", "500", "--edges", "3000", "--repeat", "1"
    )
    assert code == 0
    assert "speed-up vs networkx" in out
    assert "m4ml_xp numpy" in out
    assert "networkx.pagerank" in out
    code, out, _ = run(
        capsys,
        "bench",
        "pagerank",
        "--nodes",
        "500",
        "--edges",
        "3000",
        "--repeat",
        "1",
        "--markdown",
        "--no-networkx",
    )
    assert any(line.startswith("| m4ml_xp numpy |") for line in out.splitlines())
    assert "- goal numpy >= 50x networkx.pagerank: not run" in out
    assert "- goal numpy <= 1.5x the SciPy CSR loop: " in out


def test_bench_all_reports_every_goal_and_rewrites_the_results_block(capsys, monkeypatch, tmp_path):
    from m4ml_xp.cli.harness import common
    from m4ml_xp.cli.harness import pca as pca_harness

    X = np.random.default_rng(0).random((400, 784), dtype=np.float32)
    y = np.arange(400) % 10
    for module in (common, pca_harness):
        monkeypatch.setattr(module, "mnist_or_synthetic", lambda data, limit=10_000: (X, y, "400"))
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\nabove\n<!-- bench-all:start -->\nold\n<!-- bench-all:end -->\nbelow\n"
    )
    small = ["--repeat", "1", "--nodes", "500", "--edges", "3000", "--fits", "100"]
    small += ["--single-points", "300", "--small", "--results", str(results), "--markdown"]
    code, out, _ = run(capsys, "bench", "all", *small)
    assert code == 0
    goals = out.split("### Goals", 1)[1].split("###", 1)[0]
    for expected in (
        "- pagerank: goal numpy >= 50x networkx.pagerank",
        "- nn: goal numpy <= 1.0x torch CPU",
        "- lsq: goal numpy >= 10x the SciPy loop's fits/s",
        "- pca: 400: numpy covariance_eigh / sklearn covariance_eigh",
    ):
        assert expected in goals
    written = results.read_text()
    assert written.startswith("# Results\n\nabove\n<!-- bench-all:start -->\n## Latest")
    assert written.endswith("<!-- bench-all:end -->\nbelow\n")
    assert "old" not in written


def test_bench_all_writes_results_only_when_asked(capsys, monkeypatch, tmp_path):
    from m4ml_xp.cli.harness import sections

    ran = []
    monkeypatch.setattr(sections, "run_all", lambda args: ran.append(args.what) or "report")
    monkeypatch.chdir(tmp_path)  # a checkout's layout: the old default path exists here
    (tmp_path / "benchmarks").mkdir()
    results = tmp_path / "benchmarks" / "RESULTS.md"
    results.write_text("kept\n")
    code, out, _ = run(capsys, "bench", "all", "--markdown")
    assert (code, ran) == (0, ["all"])
    assert "report" in out
    assert results.read_text() == "kept\n"
    code, _, err = run(capsys, "bench", "all", "--results", str(results))
    assert (code, ran) == (0, ["all", "all"])
    assert results.read_text().startswith("kept\n\n<!-- bench-all:start -->\nreport\n")
    assert f"wrote the generated block of {results}" in err
    code, _, err = run(capsys, "bench", "all", "--results", str(tmp_path / "nowhere" / "R.md"))
    assert code == 2
    assert "does not exist" in err
    assert len(err.strip().splitlines()) == 1


def test_absent_device_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "pagerank", "--generate", "10", "--device", "cuda")
    assert code == 2
    assert "device 'cuda' is not available to numpy" in err


MNIST = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _small_mnist(tmp_path, n=300):
    """A small IDX copy of MNIST's first images (or random digits when absent)."""
    import gzip

    if MNIST.is_dir():
        from m4ml_xp.datasets import read_idx

        images = read_idx(next(MNIST.glob("t10k-images*")), limit=n)
        labels = read_idx(next(MNIST.glob("t10k-labels*")), limit=n)
    else:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
    for name, array, magic in (
        ("t10k-images-idx3-ubyte.gz", images, 0x0803),
        ("t10k-labels-idx1-ubyte.gz", labels, 0x0801),
    ):
        header = magic.to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in array.shape)
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(header + array.tobytes())
    return tmp_path


def test_train_reports_accuracy(capsys, tmp_path):
    data = _small_mnist(tmp_path)
    code, out, _ = run(
        capsys,
        "train",
        "--data",
        str(data),
        "--n-train",
        "200",
        "--n-test",
        "100",
        "--epochs",
        "3",
        "--batch-size",
        "20",
        "--lr",
        "0.005",
        "--hidden",
        "32",
        "--quiet",
    )
    assert code == 0
    assert "network 784-32-10" in out
    assert out.count("epoch ") == 3
    accuracy = float(out.rsplit("test accuracy ", 1)[1].strip().rstrip("%"))
    assert 0 <= accuracy <= 100
    if MNIST.is_dir():
        assert accuracy > 50  # 200 real digits already teach most of the classes


def test_train_errors_are_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    data = _small_mnist(tmp_path, n=50)
    code, _, err = run(capsys, "train", "--data", str(data), "--n-train", "40", "--n-test", "20")
    assert code == 2
    assert "> 50 images" in err
    with pytest.raises(SystemExit):
        main(["train", "--hidden", "0"])


def test_bench_nn_prints_goal_ratios(capsys, monkeypatch):
    from m4ml_xp.cli.harness import common

    X = np.random.default_rng(0).random((400, 784), dtype=np.float32)
    y = np.arange(400) % 10
    monkeypatch.setattr(common, "mnist_or_synthetic", lambda data, limit=10_000: (X, y, "400 rows"))
    code, out, _ = run(capsys, "bench", "nn", "--repeat", "1", "--markdown")
    assert code == 0
    assert "| m4ml_xp numpy |" in out
    assert "goal numpy <= 1.0x torch CPU" in out


def test_fit_nist_prints_certified_digits(capsys, monkeypatch):
    """The README's line as printed on a fresh machine: Misra1a ships with the package."""
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    code, out, _ = run(capsys, "fit", "Misra1a", "--start", "2")
    assert code == 0
    assert "Misra1a (NIST StRD, start 2)" in out
    digits = [
        float(line.split()[3])
        for line in out.splitlines()
        if line.strip().startswith("b") and "std error" in line and "(" in line
    ]
    assert len(digits) == 2
    assert min(digits) >= 6


def test_fit_nist_refuses_a_start_of_the_wrong_length(capsys):
    code, _, err = run(capsys, "fit", "Misra1a", "--p0", "1,2,3")
    assert code == 2
    assert "--p0 needs 2 values for Misra1a: b1, b2" in err


def test_fit_refuses_a_sigma_column_that_is_not_positive(capsys, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("0 2\n1 4\n2 6.5\n")
    code, _, err = run(capsys, "fit", str(path), "--model", "line", "--sigma-col", "0")
    assert code == 2
    assert "--sigma-col 0: uncertainties must be positive; that column holds 0" in err


def test_fit_csv_with_named_model_matches_scipy(capsys, tmp_path):
    from scipy.optimize import curve_fit

    rng = np.random.default_rng(3)
    x = np.linspace(-3, 5, 60)
    sigma = np.full(60, 0.05)
    y = 2.5 * np.exp(-((x - 1.2) ** 2) / (2 * 0.7**2)) + sigma * rng.standard_normal(60)
    path = tmp_path / "peak.csv"
    path.write_text(
        "x,y,sigma\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(x, y, sigma, strict=True))
    )
    code, out, _ = run(capsys, "fit", str(path), "--model", "gaussian", "--sigma-col", "2")
    assert code == 0
    assert "(converged)" in out
    popt, pcov = curve_fit(
        lambda t, a, m, s: a * np.exp(-((t - m) ** 2) / (2 * s**2)),
        x, y, p0=[2.0, 1.0, 1.0], sigma=sigma, absolute_sigma=True,
    )  # fmt: skip
    printed = {
        line.split()[0]: (float(line.split()[1]), float(line.split()[2]))
        for line in out.splitlines()
        if line.strip().split()[:1] in (["a"], ["mu"], ["sigma"])
    }
    for i, name in enumerate(["a", "mu", "sigma"]):
        np.testing.assert_allclose(printed[name][0], popt[i], rtol=1e-6)
        np.testing.assert_allclose(printed[name][1], np.sqrt(pcov[i, i]), rtol=1e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "line", "--p0", "1,2,3"], "--p0 needs 2 values for line"),
        (["--model", "line", "--y-col", "5"], "has 2 columns; asked for column 5"),
    ],
)
def test_fit_errors_are_one_line(capsys, tmp_path, argv, message):
    path = tmp_path / "data.txt"
    path.write_text("1 2\n2 4\n3 6.5\n")
    code, _, err = run(capsys, "fit", str(path), *argv)
    assert code == 2
    assert message in err
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,x\n")
    code, _, err = run(capsys, "fit", str(bad), "--model", "line")
    assert code == 2
    assert "bad.csv:2: not a row of numbers" in err


def test_bench_lsq_prints_goal_ratios(capsys):
    code, out, _ = run(
        capsys,
        "bench",
        "lsq",
        "--fits",
        "200",
        "--single-points",
        "500",
        "--repeat",
        "1",
        "--markdown",
    )
    assert code == 0
    assert "| m4ml_xp numpy |" in out
    assert "| scipy least_squares(lm) loop |" in out
    assert "| m4ml_xp numpy (no jac, closure) |" in out
    assert "| scipy least_squares(lm) loop (2-point) | " in out
    assert "goal numpy >= 10x the SciPy loop's fits/s (analytic jac, no jac)" in out
    assert "goal single fit <= 1.0x least_squares (analytic jac, no jac)" in out


def test_pca_main_job_on_the_embedded_sample(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    code, out, _ = run(
        capsys, "pca", "--backend", "numpy", "--n-components", "20", "--out", str(tmp_path)
    )
    assert code == 0
    assert "2,000 images × 784 pixels from the embedded sample" in out
    lines = [line.split() for line in out.splitlines() if line.strip()[:2] in ("1 ", "20")]
    assert float(lines[-1][-1]) > float(lines[0][-1])  # cumulative ratio grows
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # the plot extra is optional
        assert "matplotlib is not installed" in out
    else:
        pictures = {p.name for p in tmp_path.glob("*.png")}
        assert pictures == {"eigendigits.png", "explained_variance.png", "components_scatter.png"}
    import m4ml_xp as mx

    images, _ = mx.load_mnist()
    reference = mx.pca(images, 20)
    printed = float(out.split("reconstruction MSE per image with 20 components: ")[1].split()[0])
    assert printed == pytest.approx(float(mx.reconstruction_error(images, reference)), rel=1e-3)


def test_pca_auto_backend_falls_back_to_numpy(capsys, monkeypatch):
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    from m4ml_xp.cli.options import pick_backend

    label, _namespace, _ = pick_backend("auto", None)
    assert label.startswith(("numpy", "cupy", "jax", "torch"))
    code, out, _ = run(capsys, "pca", "--limit", "300", "--no-plots", "--method", "randomized")
    assert code == 0
    assert "300 images" in out


def test_pca_missing_data_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "pca", "--data", str(tmp_path / "nowhere"), "--no-plots")
    assert code == 2
    assert err.startswith("m4ml-xp: error: `path`=")
    assert "holds no t10k-images" in err
    assert "Traceback" not in err


def test_bench_pca_stream_reports_throughput(capsys):
    code, out, _ = run(
        capsys, "bench", "pca", "--stream", "0.02", "--backend", "numpy", "--chunk-rows", "2000"
    )
    assert code == 0
    assert "throughput [GB/s]" in out
    row = out.strip().splitlines()[-1].split()
    assert row[0] == "numpy"
    assert float(row[1]) == pytest.approx(0.025, abs=0.001)  # 4 chunks of 2,000 × 784 float32
    assert float(row[-1]) < 4 * (784 / 8000) ** 0.5  # every eigenvalue near 1/12


def test_generated_chunks_are_reproducible_and_distinct():
    from m4ml_xp.cli.harness.pca import GeneratedChunks

    chunks = GeneratedChunks(3 * 100 * 784 * 4, 100, workers=2)
    first, again = list(chunks), list(chunks)
    assert len(chunks) == len(first) == 3
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


# --------------------------------------------------------------------------- --backend auto
JOBS = {"pca": "pca", "pagerank": "pagerank", "fit": "fit", "train": "train", "bench": "stream"}


def test_auto_order_covers_every_command_and_every_gpu_backend():
    from m4ml_xp import backends
    from m4ml_xp.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    with_backend = {
        name
        for name, sub in commands.items()
        if any("--backend" in action.option_strings for action in sub._actions)
    }
    assert with_backend == set(JOBS)
    assert set(backends.AUTO_ORDER) == set(JOBS.values())
    for job, order in backends.AUTO_ORDER.items():
        assert sorted(order) == sorted(backends.GPU_DEVICES), job  # each GPU backend once


def test_every_command_runs_with_backend_auto(capsys):
    from m4ml_xp import backends

    code, out, _ = run(capsys, "pagerank", "--generate", "300", "--backend", "auto", "--top", "1")
    assert code == 0
    expected = backends.auto_backend("pagerank")[0]
    assert f"backend {expected}" in out
    assert "(auto" in out


def test_explicit_backend_label_names_its_device(capsys):
    pytest.importorskip("torch")
    code, out, _ = run(capsys, "pagerank", "--generate", "300", "--backend", "torch", "--top", "1")
    assert code == 0
    assert "backend torch:cpu, float64" in out  # torch without --device: its default, the CPU


# --------------------------------------------------------------------------- scripts/gpu_check.py
def _gpu_check():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def test_gpu_check_dry_run_plans_every_phase_within_8_minutes(capsys):
    import argparse

    check = _gpu_check()
    assert check.main(["--dry-run", "--workers", "14", "--data", "mnist-dir"]) == 0
    out = capsys.readouterr().out
    phases = ["env", "augment", "tests-cupy", "tests-torch", "tests-jax", "pca", "pagerank", "lsq"]
    for name in [*phases, "stream", "nn"]:
        assert f"phase {name} (budget" in out
    assert "-n 14 -p no:benchmark" in out
    assert "env M4ML_XP_TORCH_DEVICE=cuda" in out
    assert "--rows 1000000 --targets gpu" in out
    assert "--nodes 10000000 --edges 100000000" in out
    assert "--fits 1000000" in out
    assert "--backend torch --device cuda" in out
    assert "bench nn --data mnist-dir" in out
    defaults = argparse.Namespace(
        data=None, workers=1, bandwidth=4.3, stream_gb=8.0, only=[], skip=[]
    )
    budgets = sum(phase.budget for phase in check.plan(defaults))
    assert "pca --backend torch --device cuda --data mnist-dir --augment 800 --no-plots" in out
    assert budgets <= 480 <= 8 * 60
    if not check.gpu_names():
        assert out.count("no NVIDIA GPU found") == len(phases) - 1 + 2  # all but env


def test_gpu_check_without_a_gpu_skips_cleanly(capsys, tmp_path):
    check = _gpu_check()
    if check.gpu_names():
        pytest.skip("this machine has a GPU: the check would run")
    code = check.main(["--out", str(tmp_path), "--only", "pca,stream"])
    out = capsys.readouterr().out
    assert code == 0
    assert "== pca: no NVIDIA GPU found (nvidia-smi is missing or lists none): skipped" in out
    summary = (tmp_path / "summary.md").read_text()
    assert "| pca | skipped: no GPU |" in summary
    assert "| stream | skipped: no GPU |" in summary
    assert (tmp_path / "gpu_check.log").read_text().startswith("gpu_check: no GPU")


def test_bench_pca_stream_says_when_torch_stays_on_the_cpu(capsys):
    pytest.importorskip("torch")
    code, out, err = run(
        capsys, "bench", "pca", "--stream", "0.01", "--backend", "torch", "--chunk-rows", "1000"
    )
    assert code == 0
    assert "note: torch runs on the CPU here; pass --device cuda" in err
    assert out.strip().splitlines()[-1].split()[0] == "torch:cpu"


# --------------------------------------------------------------------------- issue 18: behaviour
def _without(monkeypatch, *modules: str) -> None:
    """Make `modules` unimportable for the test, as if not installed."""
    import sys

    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_missing_backend_is_one_line_naming_its_extra(capsys, monkeypatch):
    _without(monkeypatch, "jax", "jax.numpy")
    code, out, err = run(capsys, "pca", "--backend", "jax", "--no-plots")
    assert code == 2
    assert out == ""
    assert err == (
        "m4ml-xp: error: backend 'jax': jax is not installed here: pip install 'm4ml_xp[jax]'\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "pagerank", "--nodes", "50", "--edges", "200", "--repeat", "1", "--no-networkx"],
        ["bench", "lsq", "--fits", "10", "--points", "20", "--single-points", "50"],
    ],
    ids=["pagerank", "lsq"],
)
def test_bench_without_scipy_names_the_bench_extra(capsys, monkeypatch, argv):
    _without(monkeypatch, "scipy", "scipy.sparse", "scipy.optimize")
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.splitlines()[-1] == (
        "m4ml-xp: error: scipy is not installed here: pip install 'm4ml_xp[bench]'"
    )


def test_bench_pca_says_why_a_missing_reference_has_no_rows(capsys, monkeypatch):
    from m4ml_xp.cli.harness import pca as pca_harness

    X = np.random.default_rng(0).random((300, 784), dtype=np.float32)
    y = np.arange(300) % 10
    monkeypatch.setattr(pca_harness, "mnist_or_synthetic", lambda data, limit=10_000: (X, y, "300"))
    _without(monkeypatch, "sklearn", "sklearn.decomposition")
    code, out, err = run(capsys, "bench", "pca", "--small", "--repeat", "1", "--targets", "numpy")
    assert code == 0
    assert "scikit-learn is not installed (pip install 'm4ml_xp[bench]'): no reference rows" in err
    assert "sklearn PCA" not in out


def test_train_without_data_uses_the_embedded_sample(capsys, monkeypatch):
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    argv = ["train", "--epochs", "1", "--quiet", "--hidden", "16"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert "from the embedded sample (2,000 images" in out
    assert "training on the first 1,600, testing on the last 400" in out
    code, _, err = run(capsys, *argv, "--n-train", "1900")  # 1900 + 400 > 2000: refused
    assert code == 2
    assert "--n-train 1900 + --n-test 400 > 2000 images" in err


def test_edge_list_with_a_header_line(tmp_path):
    path = tmp_path / "edges.csv"
    path.write_text("source,target,weight\n0,1,0.5\n1,2,2\n2,0,1\n")
    src, dst, weights, labels = read_edge_list(path)
    np.testing.assert_array_equal(src, [0, 1, 2])
    np.testing.assert_array_equal(dst, [1, 2, 0])
    np.testing.assert_array_equal(weights, [0.5, 2.0, 1.0])
    assert labels is None  # the header's words are not taken for page names
    path.write_text("a b w\nx y 1\ny x 2\n")  # a non-numeric weight column: a header
    src, dst, weights, labels = read_edge_list(path)
    assert labels == ["x", "y"]
    np.testing.assert_array_equal(weights, [1.0, 2.0])
    path.write_text("x y\ny x\n")  # names without a header: both lines are edges
    assert read_edge_list(path)[3] == ["x", "y"]
    for header in ("from_id,to_id", '"src","dst"'):  # any words above numeric ids; quotes
        path.write_text(f"{header}\n0,1\n1,2\n2,0\n")
        src, dst, weights, labels = read_edge_list(path)
        np.testing.assert_array_equal(src, [0, 1, 2])
        assert labels is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pca", "--n-components", "1000", "--no-plots"], "--n-components 1000 > 784"),
        (["fit", "data.csv", "--model", "gaussian", "--x-col", "-1"], "must be an integer >= 0"),
    ],
)
def test_out_of_range_options_are_refused_not_capped(capsys, argv, message):
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse refuses its own options this way
        code = exited.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from m4ml_xp.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, parser in commands.choices.items()
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert not silent, silent


def test_warnings_print_as_one_line_naming_their_kind(capsys, tmp_path):
    import warnings

    path = tmp_path / "edges.txt"
    path.write_text("0 1\n1 2\n2 0\n2 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # as in a shell (pytest makes warnings errors)
        code, _, err = run(capsys, "pagerank", str(path), "--max-iter", "1")
    assert code == 1  # not converged
    assert "m4ml-xp: ConvergenceWarning: PageRank did not converge in 1 iterations" in err
    assert ".py:" not in err  # no file of the library (or of runpy) named


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    for markup in ("``", "::", ":mod:"):
        assert markup not in out
    assert "pca (the main job)" in out


def test_piping_into_head_is_quiet():
    import subprocess
    import sys

    command = [sys.executable, "-m", "m4ml_xp.cli", "pagerank", "--generate", "20000"]
    process = subprocess.Popen(
        [*command, "--top", "20000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdout.readline().startswith(b"generated the course's internet")
    process.stdout.close()  # what `head -1` does after its line: the rest hits a closed pipe
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait() == 1
    assert stderr == b""
