"""Regenerate the embedded MNIST sample shipped in ``m4ml_xp/data``.

The first ``--count`` images (default 2,000) of the MNIST test set and their
labels, written as gzip-compressed IDX files (deterministic bytes: no
timestamp in the gzip header), so that ``load_mnist()`` and ``m4ml-xp pca``
work with no data given.

    python scripts/make_mnist_sample.py [--source ../shared/data/mnist] [--count 2000]
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

from m4ml_xp.datasets import _MNIST_FILES, _find, read_idx

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX with unsigned bytes: magic 0x0000 08 <ndim>, big-endian sizes, the data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--target", default=str(ROOT / "m4ml_xp" / "data"))
    args = parser.parse_args()
    image_stem, label_stem = _MNIST_FILES["test"]
    source = Path(args.source)
    images = read_idx(_find(source, image_stem), limit=args.count)
    labels = read_idx(_find(source, label_stem), limit=args.count)
    target = Path(args.target)
    target.mkdir(exist_ok=True)
    write_idx(target / "mnist-sample-images-idx3-ubyte.gz", images)
    write_idx(target / "mnist-sample-labels-idx1-ubyte.gz", labels)
    print(f"wrote {len(labels)} images and labels to {target}")


if __name__ == "__main__":
    main()
