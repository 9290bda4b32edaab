"""Data sets: MNIST IDX reading (the real test set when present, corrupt files) and the
shipped NIST StRD problems."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import m4ml_xp as mx
from m4ml_xp.datasets import read_idx
from tests._helpers import asarray, assert_close_to, eps, to_numpy

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(
    not (MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"MNIST test set not found in {MNIST}",
)


def write_idx(path: Path, array: np.ndarray, *, compress: bool) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@needs_mnist
class TestLoadMnist:
    def test_matches_independent_parse(self, xp, device):
        raw = gzip.decompress((MNIST / "t10k-images-idx3-ubyte.gz").read_bytes())
        expected = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(10_000, 784)[:500] / 255.0
        labels_raw = gzip.decompress((MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes())
        expected_labels = np.frombuffer(labels_raw, dtype=np.uint8, offset=8)[:500]
        images, labels = mx.load_mnist(MNIST, limit=500, xp=xp, device=device, dtype=xp.float64)
        assert images.shape == (500, 784)
        assert labels.dtype == xp.int64
        np.testing.assert_array_equal(to_numpy(images), expected)
        np.testing.assert_array_equal(to_numpy(labels), expected_labels)

    def test_path_may_be_the_folder_above_mnist(self):
        images, labels = mx.load_mnist(MNIST.parent, limit=5)
        expected_images, expected_labels = mx.load_mnist(MNIST, limit=5)
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)

    def test_whole_test_set_and_environment_variable(self, monkeypatch):
        monkeypatch.setenv("M4ML_XP_DATA", str(MNIST))
        images, labels = mx.load_mnist()
        assert images.shape == (10_000, 784)
        assert images.min() == 0.0
        assert images.max() == 1.0
        np.testing.assert_array_equal(
            np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        )


class TestEmbeddedSample:
    def test_default_is_the_shipped_sample(self, xp, device, monkeypatch):
        monkeypatch.delenv("M4ML_XP_DATA", raising=False)
        images, labels = mx.load_mnist(xp=xp, device=device)
        assert images.shape == (2000, 784)
        assert labels.shape == (2000,)
        # int64 labels, as the full set's (int32 where the library lacks int64: JAX's x64 off)
        assert labels.dtype == asarray(xp, np.zeros(1, dtype=np.int64)).dtype
        assert sorted(set(to_numpy(labels).tolist())) == list(range(10))
        assert float(to_numpy(images).min()) == 0.0
        assert float(to_numpy(images).max()) == 1.0

    @needs_mnist
    def test_sample_is_the_first_test_images_and_the_script_regenerates_it(self, tmp_path):
        import subprocess
        import sys

        full_images, full_labels = mx.load_mnist(MNIST, limit=2000)
        from m4ml_xp.datasets import _EMBEDDED

        shipped = {p.name: p.read_bytes() for p in sorted(_EMBEDDED.glob("*.gz"))}
        embedded = read_idx(_EMBEDDED / "mnist-sample-images-idx3-ubyte.gz")
        np.testing.assert_array_equal(embedded.reshape(2000, 784) / 255.0, full_images)
        np.testing.assert_array_equal(
            read_idx(_EMBEDDED / "mnist-sample-labels-idx1-ubyte.gz"), full_labels
        )
        script = Path(__file__).resolve().parents[1] / "scripts" / "make_mnist_sample.py"
        command = [sys.executable, str(script), "--source", str(MNIST), "--target", str(tmp_path)]
        subprocess.run(command, check=True, capture_output=True)
        assert {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.gz"))} == shipped


NIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist_strd"
needs_nist = pytest.mark.skipif(
    not (NIST / "Misra1a.dat").is_file(), reason=f"NIST StRD files not found in {NIST}"
)


class TestHeartCurve:
    def test_the_course_formula_on_its_grid(self, xp):
        X, Y = mx.heart_curve(4, xp=xp)
        x = np.array([0.0, 0.25, 0.5, 0.75])  # arange(0, 1, 1/n): 1 itself is not a sample
        t = 2 * np.pi * x
        heart = np.stack(
            [
                16 * np.sin(t) ** 3,
                13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t),
            ],
            axis=1,
        )
        tol = 8 * eps(X.dtype)
        assert_close_to(X, x[:, None].astype(to_numpy(X).dtype), rtol=0, atol=tol, xp=xp)
        expected = ((heart / 20 + 1) / 2).astype(to_numpy(Y).dtype)
        assert_close_to(Y, expected, rtol=0, atol=tol, xp=xp)


class TestShippedNistProblems:
    def test_the_readme_problem_loads_without_a_data_directory(self, monkeypatch):
        """Misra1a by name with no M4ML_XP_DATA: NIST's published values (typed in here)."""
        monkeypatch.delenv("M4ML_XP_DATA", raising=False)
        problem = mx.load_nist_strd("Misra1a")
        np.testing.assert_array_equal(problem.starts, [[500.0, 1e-4], [250.0, 5e-4]])
        np.testing.assert_array_equal(problem.certified, [2.3894212918e02, 5.5015643181e-04])
        np.testing.assert_array_equal(problem.certified_std, [2.7070075241e00, 7.2668688436e-06])
        assert problem.residual_ss == 1.2455138894e-01
        assert problem.x.shape == problem.y.shape == (14,)
        assert (problem.x[0], problem.x[-1], problem.y[0], problem.y[-1]) == (
            77.6,
            760.0,
            10.07,
            81.78,
        )
        residual = problem.y - problem.model(problem.x, problem.certified)
        assert math.isclose(float(residual @ residual), problem.residual_ss, rel_tol=1e-9)

    def test_a_name_not_shipped_says_what_is(self, monkeypatch):
        monkeypatch.delenv("M4ML_XP_DATA", raising=False)
        with pytest.raises(FileNotFoundError, match=r"set M4ML_XP_DATA; shipped .*: Misra1a"):
            mx.load_nist_strd("Thurber")

    @needs_nist
    def test_shipped_fields_are_the_files_and_regenerate_byte_for_byte(self, tmp_path):
        from m4ml_xp.datasets import _NIST_SAMPLE

        shipped = mx.load_nist_strd("Misra1a")
        parsed = mx.load_nist_strd(NIST / "Misra1a.dat")
        for field in ("x", "y", "starts", "certified", "certified_std"):
            np.testing.assert_array_equal(getattr(shipped, field), getattr(parsed, field))
        assert shipped[6:9] == parsed[6:9]  # residual_ss, residual_sd, formula
        assert shipped.name == parsed.name == "Misra1a"
        script = Path(__file__).resolve().parents[1] / "scripts" / "make_nist_sample.py"
        target = tmp_path / "sample.json"
        command = [sys.executable, str(script), "--source", str(NIST), "--target", str(target)]
        subprocess.run(command, check=True, capture_output=True)
        assert target.read_bytes() == _NIST_SAMPLE.read_bytes()


class TestReadIdx:
    @pytest.mark.parametrize("compress", [False, True])
    def test_round_trip(self, tmp_path, compress):
        array = np.arange(24).reshape(2, 3, 4)
        np.testing.assert_array_equal(
            read_idx(write_idx(tmp_path / "a", array, compress=compress)), array
        )

    def test_bad_magic_names_file(self, tmp_path):
        path = tmp_path / "bad.idx"
        path.write_bytes(b"PK\x03\x04garbage")
        with pytest.raises(ValueError, match=r"bad\.idx is not an IDX file"):
            read_idx(path)

    def test_truncated_names_file(self, tmp_path):
        path = write_idx(tmp_path / "t.idx", np.ones((5, 4)), compress=False)
        path.write_bytes(path.read_bytes()[:-3])
        with pytest.raises(ValueError, match=r"t\.idx: truncated IDX data"):
            read_idx(path)

    def test_corrupt_gzip_names_file(self, tmp_path):
        path = tmp_path / "c.gz"
        path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(9))[:-12])
        with pytest.raises(ValueError, match=r"c\.gz"):
            read_idx(path)

    def test_missing_data_location(self, monkeypatch, tmp_path):
        monkeypatch.delenv("M4ML_XP_DATA", raising=False)
        with pytest.raises(FileNotFoundError, match="embedded MNIST sample is test images only"):
            mx.load_mnist(kind="train")
        monkeypatch.setenv("M4ML_XP_DATA", str(tmp_path))
        with pytest.raises(FileNotFoundError, match="holds no t10k-images"):
            mx.load_mnist()
        with pytest.raises(FileNotFoundError, match=r"`path`=.* holds no t10k-images"):
            mx.load_mnist(tmp_path)
        with pytest.raises(FileNotFoundError, match="holds no t10k-images"):
            mx.load_mnist(tmp_path / "missing")
        with pytest.raises(ValueError, match="`kind`"):
            mx.load_mnist(tmp_path, kind="validation")


# --------------------------------------------------------------------------- NIST formulas
#: The model formulas of the NIST StRD non-linear problems, as the files print them
#: (Nelson, with two predictors and ``log[y]`` on the left, is not a ``y = f(x)`` model).
NIST_FORMULAS = {
    "Misra1a": "y = b1*(1-exp[-b2*x])  +  e",
    "Chwirut": "y = exp[-b1*x]/(b2+b3*x)  +  e",
    "Lanczos": "y = b1*exp(-b2*x) + b3*exp(-b4*x) + b5*exp(-b6*x)  +  e",
    "Gauss": "y = b1*exp( -b2*x ) + b3*exp( -(x-b4)**2 / b5**2 ) + b6*exp( -(x-b7)**2 / b8**2 ) + e",
    "DanWood": "y  = b1*x**b2  +  e",
    "Misra1b": "y = b1 * (1-(1+b2*x/2)**(-2))  +  e",
    "Kirby2": "y = (b1 + b2*x + b3*x**2) / (1 + b4*x + b5*x**2)  +  e",
    "Hahn1": "y = (b1+b2*x+b3*x**2+b4*x**3) / (1+b5*x+b6*x**2+b7*x**3)  +  e",
    "MGH17": "y = b1 + b2*exp[-x*b4] + b3*exp[-x*b5]  +  e",
    "Misra1c": "y = b1 * (1-(1+2*b2*x)**(-.5))  +  e",
    "Misra1d": "y = b1*b2*x*((1+b2*x)**(-1))  +  e",
    "Roszman1": "y =  b1 - b2*x - arctan[b3/(x-b4)]/pi  +  e",
    "ENSO": (
        "y = b1 + b2*cos( 2*pi*x/12 ) + b3*sin( 2*pi*x/12 ) + b5*cos( 2*pi*x/b4 ) "
        "+ b6*sin( 2*pi*x/b4 ) + b8*cos( 2*pi*x/b7 ) + b9*sin( 2*pi*x/b7 )  + e"
    ),
    "MGH09": "y = b1*(x**2+x*b2) / (x**2+x*b3+b4)  +  e",
    "BoxBOD": "y = b1*(1-exp[-b2*x])  +  e",
    "Rat42": "y = b1 / (1+exp[b2-b3*x])  +  e",
    "MGH10": "y = b1 * exp[b2/(x+b3)]  +  e",
    "Eckerle4": "y = (b1/b2) * exp[-0.5*((x-b3)/b2)**2]  +  e",
    "Rat43": "y = b1 / ((1+exp[b2-b3*x])**(1/b4))  +  e",
    "Bennett5": "y = b1 * (b2+x)**(-1/b3)  +  e",
    # Python's precedence: unary minus binds looser than **, an exponent may be signed
    "precedence": "y = -b1**2 + 2**-b2*x - -x/b1/b2 + e",
}


def python_value(formula: str, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The oracle: Python's own parser on the same text, with NumPy's functions."""
    text = formula.split("=", 1)[1].rsplit("+", 1)[0].replace("[", "(").replace("]", ")")
    names = {f"b{i + 1}": b[i] for i in range(b.shape[0])}
    functions = {"exp": np.exp, "cos": np.cos, "sin": np.sin, "arctan": np.arctan}
    return eval(text, {"__builtins__": {}}, {**names, **functions, "x": x, "pi": np.pi})


@pytest.mark.parametrize("name", NIST_FORMULAS)
def test_nist_formulas_evaluate_as_python_reads_them(name):
    from m4ml_xp.datasets import _compile_formula

    formula = NIST_FORMULAS[name]
    n_params = max(int(match) for match in __import__("re").findall(r"b(\d+)", formula))
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 2.0, size=n_params)
    x = rng.uniform(0.5, 3.0, size=7)
    model = _compile_formula(formula, n_params, Path(f"{name}.dat"))
    np.testing.assert_allclose(model(x, b), python_value(formula, b, x), rtol=1e-14)
    batch = np.stack([b, b[::-1]])
    expected = np.stack([python_value(formula, row, x) for row in batch])
    np.testing.assert_allclose(model(x, batch), expected, rtol=1e-14)


def test_two_predictor_formula_reads_the_rows_of_x():
    """Nelson's model: ``x1``, ``x2`` are the rows of a (2, N) ``x``, batches broadcast."""
    from m4ml_xp.datasets import _compile_formula

    formula = "log[y] = b1 - b2*x1 * exp[-b3*x2]  +  e"
    model = _compile_formula(formula, 3, Path("Nelson.dat"), n_predictors=2)
    rng = np.random.default_rng(1)
    x, b = rng.uniform(1.0, 3.0, (2, 6)), np.asarray([2.5, 0.3, 0.05])
    expected = b[0] - b[1] * x[0] * np.exp(-b[2] * x[1])
    np.testing.assert_allclose(model(x, b), expected, rtol=1e-14)
    np.testing.assert_allclose(model(x, np.stack([b, b]))[1], expected, rtol=1e-14)
    with pytest.raises(ValueError, match="unknown name 'x'"):
        _compile_formula("y = b1*x + e", 1, Path("Nelson.dat"), n_predictors=2)


def test_two_predictor_file_loads_as_rows_of_x_and_log_y(tmp_path):
    """A file in Nelson's layout: ``y x1 x2`` columns and the model stated for ``log[y]``."""
    rng = np.random.default_rng(2)
    x = rng.uniform(1.0, 3.0, (2, 5))
    b = np.asarray([2.5, 0.3, 0.05])
    y = np.exp(b[0] - b[1] * x[0] * np.exp(-b[2] * x[1]))
    header = [
        "NIST/ITL StRD",
        "Dataset Name:  Twin (Twin.dat)",
        "               Data              (lines 20 to 24)",
        "               log[y] = b1 - b2*x1 * exp[-b3*x2]  +  e",
        "  b1 =    2           2.5          2.5E+00  1.9E-02",
        "  b2 =    0.1         0.2          3.0E-01  6.1E-02",
        "  b3 =   -0.01       -0.05         5.0E-02  3.9E-03",
        "Residual Sum of Squares:                    0.0E+00",
        "Residual Standard Deviation:                0.0E+00",
    ]
    rows = [f"  {yi:.17g}  {x1:.17g}  {x2:.17g}" for yi, x1, x2 in zip(y, *x, strict=True)]
    path = tmp_path / "Twin.dat"
    path.write_text("\n".join(header + [""] * 10 + rows) + "\n")
    problem = mx.load_nist_strd(path)
    np.testing.assert_allclose(problem.x, x, rtol=1e-15)
    np.testing.assert_allclose(problem.y, np.log(y), rtol=1e-15)
    np.testing.assert_allclose(problem.model(problem.x, problem.certified), np.log(y), rtol=1e-14)
    np.testing.assert_array_equal(problem.starts, [[2, 0.1, -0.01], [2.5, 0.2, -0.05]])


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y = b1*(x + e", "ends too early"),
        ("y = b1 x + e", "unexpected 'x'"),
        ("y = open(x) + e", "unknown name 'open'"),
        ("y = b1 * $x + e", "cannot read the model formula"),
        ("y = b1 * ) + e", "unexpected '\\)'"),
    ],
)
def test_malformed_formulas_name_the_file(formula, message):
    from m4ml_xp.datasets import _compile_formula

    with pytest.raises(ValueError, match=rf"Broken\.dat: .*{message}"):
        _compile_formula(formula, 1, Path("Broken.dat"))


class CallerBuiltinsNamespace:
    """NumPy whose functions, like CuPy's kernel machinery, import via the caller's builtins.

    CuPy's compiled kernels look up ``__import__`` in the calling frame's
    ``__builtins__``; a model evaluated by ``eval`` with empty builtins broke
    every CuPy NIST fit (``KeyError: '__import__'``).
    """

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name):
        function = getattr(np, name)
        if not callable(function):
            return function

        def needs_caller_builtins(*args, **kwargs):
            import sys

            builtins = sys._getframe(1).f_globals["__builtins__"]
            getattr(builtins, "__import__", None) or builtins["__import__"]
            self.calls += 1
            return function(*args, **kwargs)

        return needs_caller_builtins


def test_nist_model_runs_where_the_library_imports_from_the_calling_frame(monkeypatch):
    import m4ml_xp._xp
    from m4ml_xp.datasets import _compile_formula

    namespace = CallerBuiltinsNamespace()
    monkeypatch.setattr(m4ml_xp._xp, "array_namespace", lambda *arrays: namespace)
    formula = NIST_FORMULAS["Roszman1"]
    model = _compile_formula(formula, 4, Path("Roszman1.dat"))
    b, x = np.asarray([0.2, -6e-6, 1.2e3, -1.8e2]), np.linspace(-4000.0, -500.0, 5)
    np.testing.assert_allclose(model(x, b), python_value(formula, b, x), rtol=1e-14)
    assert namespace.calls == 1  # the patched namespace's atan ran
