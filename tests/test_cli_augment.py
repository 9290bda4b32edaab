"""``m4ml-xp pca --augment K``: the augmented set against scipy.ndimage, the spectrum against eigh."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.ndimage

import m4ml_xp as mx
from m4ml_xp.cli import main
from m4ml_xp.cli.augment import Augmentation, AugmentedDigits, augmented_pca
from tests._helpers import asarray, assert_close_to, eps, to_numpy
from tests.conftest import Backend

N_DIGITS = 120  # of the embedded sample: every test here runs in about a second


def _digits() -> tuple[np.ndarray, np.ndarray]:
    images, labels = mx.load_mnist(limit=N_DIGITS)
    return images.astype(np.float64), labels


def _oracle_set(images: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """The augmented rows made one by one by scipy.ndimage.affine_transform (index space)."""
    P = np.array([[0.0, 1.0], [-1.0, 0.0]])  # (d row, d col) -> (x, y), y up
    centre = np.array([13.5, 13.5])
    rows = []
    for copy in range(augmentation.copies):
        transforms, shifts = augmentation.parameters(copy, images.shape[0])
        for image, T, shift in zip(images, transforms, shifts, strict=True):
            inverse = np.linalg.inv(T)
            M = np.linalg.inv(P) @ inverse @ P
            offset = centre - M @ centre - np.linalg.inv(P) @ inverse @ shift
            picture = image.reshape(28, 28)
            moved = scipy.ndimage.affine_transform(picture, M, offset=offset, order=1)
            rows.append(moved.reshape(784))
    return np.stack(rows)


def _spectrum(X: np.ndarray) -> np.ndarray:
    """Covariance eigenvalues (N − 1), descending: the oracle for ``explained_variance``."""
    return np.linalg.eigvalsh(np.cov(X, rowvar=False))[::-1].copy()


class TestAugmentedPCA:
    @pytest.mark.skip_xp_backend(Backend.DASK, reason="the job streams eager device chunks")
    def test_spectrum_matches_eigh_of_the_scipy_made_set(self, xp, device):
        images, _ = _digits()
        augmentation = Augmentation(3, seed=4)
        # chunks of 50 rows straddle the copies' boundaries (120 digits per copy)
        run = augmented_pca(
            asarray(xp, images, device), augmentation, 20, xp=xp, device=device, chunk_rows=50
        )
        oracle = _oracle_set(images, augmentation)
        assert run.n_rows == 3 * N_DIGITS
        assert run.nbytes == 3 * N_DIGITS * 784 * 8
        tol = 1e4 * eps(run.result.explained_variance.dtype)
        assert_close_to(
            run.result.explained_variance, _spectrum(oracle)[:20], rtol=tol, xp=xp, device=device
        )
        assert_close_to(
            run.result.mean, oracle.mean(axis=0), rtol=0, atol=tol, xp=xp, device=device
        )

    def test_chunks_are_the_scipy_made_set(self, xp, device):
        images, _ = _digits()
        augmentation = Augmentation(2, seed=1, max_rotation=30.0, max_shear=0.3, max_shift=3.0)
        made = AugmentedDigits(
            asarray(xp, images, device), augmentation, chunk_rows=70, xp=xp, device=device
        )
        rows = np.concatenate([to_numpy(chunk) for chunk in made])
        assert len(made) == 4  # 240 rows in chunks of 70
        np.testing.assert_allclose(rows, _oracle_set(images, augmentation), rtol=0, atol=1e-9)

    def test_same_seed_same_spectrum_for_any_chunk_size_other_seed_differs(self):
        images, _ = _digits()
        spectra = {}
        for seed, chunk_rows in ((0, 37), (0, 360), (1, 360)):
            run = augmented_pca(
                images, Augmentation(3, seed=seed), 10, xp=np, device="cpu", chunk_rows=chunk_rows
            )
            spectra[seed, chunk_rows] = run.result.explained_variance
        np.testing.assert_allclose(spectra[0, 37], spectra[0, 360], rtol=1e-12)
        assert np.max(np.abs(spectra[1, 360] / spectra[0, 360] - 1)) > 1e-3

    def test_copies_without_transforms_keep_the_digits_spectrum(self):
        images, _ = _digits()
        still = Augmentation(4, max_rotation=0.0, max_shear=0.0, max_shift=0.0)
        run = augmented_pca(images, still, 10, xp=np, device="cpu", chunk_rows=100)
        reference = mx.pca(images, 10, method="covariance_eigh")
        np.testing.assert_allclose(
            run.result.explained_variance_ratio, reference.explained_variance_ratio, rtol=1e-10
        )
        # the same scatter counted four times, over 4N − 1 instead of N − 1
        n = N_DIGITS
        scale = 4 * (n - 1) / (4 * n - 1)
        np.testing.assert_allclose(
            run.result.explained_variance, reference.explained_variance * scale, rtol=1e-10
        )

    def test_parameters_depend_on_seed_and_copy_only(self):
        augmentation = Augmentation(5, seed=3)
        T, shift = augmentation.parameters(2, 1000)
        T_again, shift_again = augmentation.parameters(2, 1000)
        np.testing.assert_array_equal(T, T_again)
        np.testing.assert_array_equal(shift, shift_again)
        assert not np.array_equal(T, augmentation.parameters(3, 1000)[0])
        np.testing.assert_allclose(np.linalg.det(T), 1.0, rtol=1e-12)  # rotation · shear
        assert np.abs(shift).max() <= 2.0
        assert np.abs(shift).max() > 1.9  # the whole range is drawn
        angle = np.degrees(np.arctan2(T[:, 1, 0], T[:, 0, 0]))  # R·S keeps R's first column
        assert 14.0 < np.abs(angle).max() <= 15.0
        shear = T[:, 0, 1] * np.cos(np.radians(angle)) + T[:, 1, 1] * np.sin(np.radians(angle))
        assert 0.14 < np.abs(shear).max() <= 0.15


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"copies": 0}, "`copies` must be >= 1"),
        ({"copies": 2, "seed": -1}, "`seed` >= 0"),
        ({"copies": 2, "max_shift": -1.0}, "`max_shift` must be a finite number >= 0"),
        ({"copies": 2, "max_rotation": float("inf")}, "`max_rotation` must be a finite"),
    ],
)
def test_augmentation_refuses_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        Augmentation(**options)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exited:  # argparse refuses its own options this way
        code = exited.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.xp_backend_only(Backend.NUMPY)
def test_the_command_reports_throughput_and_writes_the_plots(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("M4ML_XP_DATA", raising=False)
    argv = ["pca", "--backend", "numpy", "--dtype", "float64", "--limit", str(N_DIGITS)]
    argv += ["--n-components", "20", "--augment", "2", "--seed", "5", "--chunk-rows", "100"]
    code, out, _ = _run(capsys, *argv, "--out", str(tmp_path))
    assert code == 0
    assert f"augmented PCA of {2 * N_DIGITS} images in " in out
    assert " images/s, " in out
    assert " GB/s" in out
    table = out.split("digits → augmented:")[1].splitlines()
    first = table[2].split()  # component, ratio, augmented, cumulative, augmented
    images, _ = _digits()
    run = augmented_pca(images, Augmentation(2, seed=5), 20, xp=np, device="cpu")
    assert float(first[2]) == pytest.approx(run.result.explained_variance_ratio[0], abs=6e-5)
    if importlib.util.find_spec("matplotlib") is None:  # the plot extra is optional
        assert "matplotlib is not installed" in out
        return
    pictures = {p.name for p in tmp_path.glob("*.png")}
    assert pictures == {
        "eigendigits.png",
        "explained_variance.png",
        "components_scatter.png",
        "augmentation_spectrum.png",
        "augmented_digits.png",
    }


@pytest.mark.xp_backend_only(Backend.NUMPY)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--augment", "0"], "argument --augment: must be a positive integer; got 0"),
        (["--augment", "-3"], "argument --augment: must be a positive integer; got -3"),
        (["--augment", "2", "--chunk-rows", "0"], "argument --chunk-rows: must be a positive"),
        (
            ["--augment", "2", "--max-shift", "-1"],
            "argument --max-shift: must be a finite number >= 0",
        ),
        (["--augment", "2", "--max-rotation", "nan"], "argument --max-rotation: must be a finite"),
        (["--augment", "2", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
        (["--chunk-rows", "100"], "--chunk-rows is for --augment"),
    ],
)
def test_out_of_range_options_are_refused_naming_them(capsys, argv, message):
    code, _, err = _run(capsys, "pca", "--backend", "numpy", "--no-plots", *argv)
    assert code == 2
    assert message in err
