"""MNIST IDX reading: the real test set when present, and corrupt files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import m4ml_xp as mx
from m4ml_xp.datasets import read_idx
from tests._helpers import to_numpy

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
