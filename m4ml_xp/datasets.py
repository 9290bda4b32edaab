"""Data sets: MNIST (IDX files, gzip or raw), NIST StRD regression problems, the course's own.

Reading happens on the host with NumPy; the arrays are then moved once to the
requested namespace and device.
"""

from __future__ import annotations

import gzip
import json
import math
import operator
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, NoReturn

import numpy as np

from m4ml_xp import _checks, _xp
from m4ml_xp._xp import Array, Namespace

__all__ = ["NISTProblem", "heart_curve", "heights_data", "load_mnist", "load_nist_strd", "read_idx"]


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MNIST_FILES = {
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
}


def _on_device(xp: Namespace | None, device: Any, dtype: Any, *host: np.ndarray) -> tuple:
    """Move the `host` arrays once to `xp` (default NumPy) on `device`, in the float `dtype`."""
    xp = _checks.creation_namespace(xp, device)
    dtype = _checks.check_float_dtype(dtype, xp=xp, device=device)
    return tuple(xp.asarray(values, dtype=dtype, device=device) for values in host)


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def read_idx(path: str | os.PathLike[str], *, limit: int | None = None) -> np.ndarray:
    """Read an IDX file (the MNIST format), optionally gzip-compressed.

    Parameters
    ----------
    path : path-like
        The file.
    limit : int, optional
        Read only the first `limit` items along the first axis.

    Returns
    -------
    numpy.ndarray
        With the dtype and shape the header declares.

    Raises
    ------
    ValueError
        If the magic number, the header or the length of the data is wrong; the
        message names the file.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> from m4ml_xp.datasets import read_idx
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.gz"
    >>> _ = path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    try:
        handle = _open(path)
    except OSError as exc:
        raise FileNotFoundError(f"cannot read IDX file {path}: {exc}") from None
    with handle:
        try:
            header = handle.read(4)
            if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_TYPES:
                raise ValueError(f"{path} is not an IDX file: bad magic number {header.hex()!r}")
            ndim = header[3]
            dims_bytes = handle.read(4 * ndim)
            if ndim == 0 or len(dims_bytes) != 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header")
            shape = [int(d) for d in np.frombuffer(dims_bytes, dtype=">u4")]
            dtype = np.dtype(_IDX_TYPES[header[2]])
            if limit is not None:
                shape[0] = min(shape[0], _checks.check_int(limit, "limit", low=0))
            expected = int(np.prod(shape)) * dtype.itemsize
            data = handle.read(expected)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{path}: corrupt file ({exc})") from None
    if len(data) != expected:
        raise ValueError(
            f"{path}: truncated IDX data: expected {expected} bytes, found {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"no {stem}[.gz] in {directory}")


_EMBEDDED = Path(__file__).resolve().parent / "data"
#: NIST StRD problems shipped with the package (those the README names), as parsed from
#: their files by ``scripts/make_nist_sample.py``: found by name without any data directory
_NIST_SAMPLE = _EMBEDDED / "nist-strd-sample.json"
_NIST_ARRAYS = ("x", "y", "starts", "certified", "certified_std")


def _mnist_directory(location: str | os.PathLike[str], image_stem: str, source: str) -> Path:
    """`location` itself or its ``mnist`` folder, whichever holds the images."""
    for candidate in (Path(location), Path(location) / "mnist"):
        if candidate.is_dir() and any(candidate.glob(image_stem + "*")):
            return candidate
    msg = f"{source}={location} holds no {image_stem}[.gz] (nor its mnist/ folder)"
    raise FileNotFoundError(msg)


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    kind: str = "test",
    limit: int | None = None,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
) -> tuple[Array, Array]:
    """MNIST images and labels, scaled like the course (pixels / 255).

    Parameters
    ----------
    path : path-like, optional
        A directory holding the IDX files (``t10k-images-idx3-ubyte[.gz]`` and
        ``t10k-labels-idx1-ubyte[.gz]`` for ``kind="test"``), or holding them in
        its ``mnist`` subdirectory.  Default: the
        directory in the ``M4ML_XP_DATA`` environment variable (or its ``mnist``
        subdirectory), else the embedded sample — the first 2,000 test images,
        shipped with the package (``scripts/make_mnist_sample.py`` regenerates it).
    kind : {"test", "train"}
        Which split.
    limit : int, optional
        Read only the first `limit` images.
    xp, device, dtype : optional
        Namespace (default NumPy), device and floating dtype (default: the
        device's default float) of the images.

    Returns
    -------
    images : (N, 784) array
        Pixels in [0, 1].
    labels : (N,) int64 array

    Examples
    --------
    >>> from m4ml_xp import load_mnist
    >>> images, labels = load_mnist(limit=10)
    >>> images.shape, labels.shape
    ((10, 784), (10,))
    """
    _checks.check_choice(kind, "kind", tuple(_MNIST_FILES))
    if limit is not None:
        limit = _checks.check_int(limit, "limit", low=1)
    image_stem, label_stem = _MNIST_FILES[kind]
    if path is None and os.environ.get("M4ML_XP_DATA"):
        path = _mnist_directory(os.environ["M4ML_XP_DATA"], image_stem, "M4ML_XP_DATA")
    elif path is not None:
        path = _mnist_directory(path, image_stem, "`path`")
    if path is None:
        if kind != "test":
            msg = "the embedded MNIST sample is test images only: pass `path` or set M4ML_XP_DATA"
            raise FileNotFoundError(msg)
        images = read_idx(_EMBEDDED / "mnist-sample-images-idx3-ubyte.gz", limit=limit)
        labels = read_idx(_EMBEDDED / "mnist-sample-labels-idx1-ubyte.gz", limit=limit)
    else:
        images = read_idx(_find(path, image_stem), limit=limit)
        labels = read_idx(_find(path, label_stem), limit=limit)
    directory = path if path is not None else _EMBEDDED
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{directory}: images {images.shape} and labels {labels.shape} do not match as MNIST"
        )
    (pixels,) = _on_device(xp, device, dtype, images.reshape(images.shape[0], -1) / 255.0)
    return pixels, _xp.array_namespace(pixels).asarray(labels.astype(np.int64), device=device)


def heart_curve(
    n: int = 100, *, xp: Namespace | None = None, device: Any = None, dtype: Any = None
) -> tuple[Array, Array]:
    """Return the course's backpropagation training data: a heart drawn by two functions of x.

    ``x = arange(0, 1, 1/n)``; ``y = ((16 sin³(2πx), 13 cos(2πx) − 5 cos(4πx) −
    2 cos(6πx) − cos(8πx)) / 20 + 1) / 2``, so both outputs lie in (0, 1), the
    range of the sigmoid output layer.

    Parameters
    ----------
    n : int
        Number of examples, ``>= 1``.
    xp, device, dtype : optional
        Namespace (default NumPy), device, floating dtype (default: the device's).

    Returns
    -------
    X : (n, 1) array
    Y : (n, 2) array
        Rows are examples (the course stores them as columns).

    Examples
    --------
    >>> from m4ml_xp import heart_curve
    >>> X, Y = heart_curve(4)
    >>> X[:, 0], Y[0]
    (array([0.  , 0.25, 0.5 , 0.75]), array([0.5  , 0.625]))
    """
    n = _checks.check_int(n, "n", low=1)
    x = np.arange(0, 1, 1 / n)[:n]
    t = 2 * np.pi * x
    heart_x = 16 * np.sin(t) ** 3
    heart_y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    y = np.stack([heart_x, heart_y], axis=1)
    return _on_device(xp, device, dtype, x[:, None], (y / 20 + 1) / 2)


# --------------------------------------------------------------------------- NIST StRD
class NISTProblem(NamedTuple):
    """A NIST StRD non-linear regression problem (:func:`load_nist_strd`).

    ``model(x, b)`` evaluates the file's model formula with the namespace of its
    arguments (``b`` of shape ``(p,)``, or ``(B, p)`` with ``x`` broadcast as
    ``(1, N)`` for batches) — :func:`~m4ml_xp.curve_fit`'s ``model(x, p)`` order.
    """

    name: str
    x: Array
    y: Array
    starts: Array
    certified: Array
    certified_std: Array
    residual_ss: float
    residual_sd: float
    formula: str
    model: Any


_FORMULA_TOKENS = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_]\w*)|(\*\*|[-+*/()]))"
)
#: the model formulas' functions -> their array API names
_FORMULA_FUNCTIONS = {f: f for f in ("exp", "cos", "sin", "log", "sqrt")} | {"arctan": "atan"}
_BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}

#: A compiled formula node: ``(b, x, xp) -> value``.
_Node = Callable[[Array, Array, Namespace], Any]


class _FormulaParser:
    """Recursive-descent parser from a NIST model formula to a tree of closures.

    No ``eval``: the formula becomes ordinary Python functions of this module,
    so the array library runs in frames with the normal builtins (CuPy's
    kernel machinery imports from the calling frame's ``__builtins__``).
    Grammar, with Python's precedence::

        sum     := product (("+" | "-") product)*
        product := unary (("*" | "/") unary)*
        unary   := ("-" | "+") unary | power
        power   := atom ("**" unary)?
        atom    := number | name | function "(" sum ")" | "(" sum ")"
    """

    def __init__(self, text: str, names: set[str], source: Path):
        self.source = source
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _FORMULA_TOKENS.match(text, position)
            if match is None or match.end() == position:
                if not text[position:].strip():
                    break
                self.fail(f"cannot read the model formula near {text[position : position + 20]!r}")
            number, name, symbol = match.groups()
            if name is not None and name not in names:
                self.fail(f"unknown name {name!r} in the model formula")
            kind = "number" if number is not None else "name" if name is not None else "symbol"
            self.tokens.append((kind, number or name or symbol))
            position = match.end()
        self.position = 0

    def fail(self, message: str) -> NoReturn:
        raise ValueError(f"{self.source}: {message}")

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            self.fail("the model formula ends too early")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, symbol: str) -> None:
        if self.take()[1] != symbol:
            self.fail(f"expected {symbol!r} in the model formula")

    def parse(self) -> _Node:
        node = self.sum()
        if self.position != len(self.tokens):
            self.fail(f"unexpected {self.peek()!r} in the model formula")
        return node

    def binary(self, symbols: tuple[str, ...], operand: Callable[[], _Node]) -> _Node:
        node = operand()
        while self.peek() in symbols:
            node = _apply(_BINARY_OPERATORS[self.take()[1]], node, operand())
        return node

    def sum(self) -> _Node:
        return self.binary(("+", "-"), self.product)

    def product(self) -> _Node:
        return self.binary(("*", "/"), self.unary)

    def unary(self) -> _Node:
        if self.peek() in ("-", "+"):
            sign = self.take()[1]
            operand = self.unary()
            return operand if sign == "+" else _apply(operator.neg, operand)
        return self.power()

    def power(self) -> _Node:
        base = self.atom()
        if self.peek() == "**":
            self.take()
            return _apply(operator.pow, base, self.unary())
        return base

    def atom(self) -> _Node:
        kind, token = self.take()
        if kind == "number":
            value = float(token)
            return lambda b, x, xp: value
        if token == "(":
            node = self.sum()
            self.expect(")")
            return node
        if kind != "name":
            self.fail(f"unexpected {token!r} in the model formula")
        if token in _FORMULA_FUNCTIONS:
            function = _FORMULA_FUNCTIONS[token]
            self.expect("(")
            argument = self.sum()
            self.expect(")")
            return lambda b, x, xp: getattr(xp, function)(argument(b, x, xp))
        if token == "x":
            return lambda b, x, xp: x
        if token[0] == "x":  # x1..xk: the rows of a (k, N) `x`
            row = int(token[1:]) - 1
            return lambda b, x, xp: x[row]
        if token == "pi":
            return lambda b, x, xp: math.pi
        index = int(token[1:]) - 1
        return lambda b, x, xp: b[..., index, None]


def _apply(function: Callable[..., Any], *operands: _Node) -> _Node:
    return lambda b, x, xp: function(*(node(b, x, xp) for node in operands))


def _compile_formula(formula: str, n_params: int, source: Path, n_predictors: int = 1) -> Any:
    """Return the model formula (``y = ... + e``) as a function ``(x, b) -> y`` in `b`'s namespace.

    The text is tokenised against a whitelist (numbers, operators, ``x`` — or
    ``x1..xk``, the rows of a ``(k, N)`` ``x`` —, ``b1..bp``, ``pi`` and a few
    functions) and parsed into closures.
    """
    text = formula.replace("[", "(").replace("]", ")")
    text = re.sub(r"\+\s*e\s*$", "", text.split("=", 1)[1]).strip()
    predictors = {"x"} if n_predictors == 1 else {f"x{i}" for i in range(1, n_predictors + 1)}
    names = {f"b{i}" for i in range(1, n_params + 1)} | predictors | {"pi", *_FORMULA_FUNCTIONS}
    tree = _FormulaParser(text, names, source).parse()

    def model(x: Array, b: Array) -> Array:
        return tree(b, x, _xp.array_namespace(b, x))

    return model


def load_nist_strd(
    name_or_path: str | os.PathLike[str],
    *,
    xp: Namespace | None = None,
    device: Any = None,
    dtype: Any = None,
) -> NISTProblem:
    """Read a NIST StRD non-linear regression file (``Misra1a.dat``, ``MGH09.dat``, ...).

    Parameters
    ----------
    name_or_path : str or path-like
        A file path, or a problem name looked up as ``<name>.dat`` in the
        ``nist_strd`` directory under ``M4ML_XP_DATA`` (or that directory itself),
        then among the problems shipped with the package (``Misra1a``).
    xp, device, dtype : optional
        Namespace (default NumPy), device and floating dtype (default float64
        where the device has it) of the arrays.

    Returns
    -------
    NISTProblem
        ``x`` (N,) — (k, N) for k predictors ``x1..xk`` (Nelson) —, ``y`` (N,) —
        ``log(y)`` where the model is stated for it (Nelson) —, ``starts`` (2, p)
        — Start 1 and Start 2 —, ``certified`` and ``certified_std`` (p,),
        ``residual_ss``, ``residual_sd``, the model ``formula`` text and
        ``model(x, b)``.

    Raises
    ------
    ValueError
        If the file does not follow the StRD layout (the message names the file).

    Examples
    --------
    >>> from m4ml_xp import load_nist_strd
    >>> problem = load_nist_strd("Misra1a")  # shipped: no data directory needed
    >>> problem.starts.shape, problem.certified[0]
    ((2, 2), np.float64(238.94212918))
    """
    if not isinstance(name_or_path, str | os.PathLike):
        msg = f"`name_or_path` must be a problem name or a path; got {type(name_or_path).__name__}"
        raise TypeError(msg)
    path = Path(name_or_path)
    if not path.is_file():
        env = os.environ.get("M4ML_XP_DATA")
        folders = [Path(env) / "nist_strd", Path(env)] if env else []
        found = [f / f"{path.name}.dat" for f in folders if (f / f"{path.name}.dat").is_file()]
        shipped = {} if found else json.loads(_NIST_SAMPLE.read_text())
        if path.name in shipped:
            fields = shipped[path.name]
            arrays = [np.asarray(fields[k], dtype=np.float64) for k in _NIST_ARRAYS]
            return _nist_problem(path, arrays, fields["residual_ss"], fields["residual_sd"],
                                 fields["formula"], xp, device, dtype)  # fmt: skip
        if not found:
            raise FileNotFoundError(
                f"no NIST StRD file {name_or_path!r} (pass a path or set M4ML_XP_DATA; "
                f"shipped with the package: {', '.join(sorted(shipped)) or 'none'})"
            )
        path = found[0]
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as a NIST StRD file: {exc}") from None
    header = "\n".join(lines[:60])
    data_lines = re.search(r"Data\s+\(lines\s+(\d+)\s+to\s+(\d+)\)", header)
    if data_lines is None:
        raise ValueError(f"{path}: no 'Data (lines A to B)' entry: not a NIST StRD file")
    parameter = re.compile(r"\s*b(\d+)\s*=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$")
    rows = [m for m in map(parameter.match, lines) if m is not None]
    try:
        numbers = np.array([[float(v) for v in m.groups()[1:]] for m in rows])
        if not rows or [int(m.group(1)) for m in rows] != list(range(1, len(rows) + 1)):
            raise ValueError("parameters b1..bp not found in order")
        first, last = int(data_lines.group(1)), int(data_lines.group(2))
        table = np.array([[float(v) for v in line.split()] for line in lines[first - 1 : last]])
        if table.ndim != 2 or table.shape[1] < 2 or table.shape[0] != last - first + 1:
            msg = f"expected {last - first + 1} rows of 'y x' (or 'y x1 .. xk') on lines {first}-{last}"
            raise ValueError(msg)
        residual_ss = float(re.search(r"Residual Sum of Squares:\s+(\S+)", header).group(1))
        sd = re.search(r"Residual Standard Deviation:\s+(\S+)", "\n".join(lines))
        residual_sd = float(sd.group(1)) if sd else math.nan
        formula_lines = []
        for line in lines[:60]:
            if formula_lines or re.match(r"\s*(y|log\s*\[\s*y\s*\])\s*=", line):
                formula_lines.append(line.strip())
                if re.search(r"\+\s*e\s*$", line):
                    break
        if not formula_lines:
            raise ValueError("no model formula 'y = ... + e'")
        formula = " ".join(formula_lines)
    except (ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: corrupt NIST StRD file: {exc}") from None
    response = table[:, 0]
    if re.match(r"\s*log\s*\[\s*y\s*\]\s*=", formula):  # Nelson: the model is for log(y)
        if np.any(response <= 0):
            raise ValueError(f"{path}: the model is for log(y) but y has values <= 0")
        response = np.log(response)
    x = table[:, 1] if table.shape[1] == 2 else table[:, 1:].T.copy()
    arrays = (x, response, numbers[:, :2].T.copy(), numbers[:, 2], numbers[:, 3])
    return _nist_problem(path, arrays, residual_ss, residual_sd, formula, xp, device, dtype)


def _nist_problem(
    path: Path, arrays: Any, residual_ss: float, residual_sd: float, formula: str,
    xp: Namespace | None, device: Any, dtype: Any,
) -> NISTProblem:  # fmt: skip
    """Return the problem of host arrays (x, y, starts, certified, certified_std), model compiled."""
    x, starts = arrays[0], arrays[2]
    n_predictors = 1 if x.ndim == 1 else x.shape[0]
    model = _compile_formula(formula, starts.shape[1], path, n_predictors)
    return NISTProblem(path.stem, *_on_device(xp, device, dtype, *arrays), residual_ss,
                       residual_sd, formula, model)  # fmt: skip


#: The course's height histogram: the 16 non-zero relative frequencies, in the bins
#: starting at 160, 162.5, ..., 197.5 cm (COURSE.md).
_HEIGHT_FREQUENCIES = (
    0.031, 0.013, 0.023, 0.064, 0.065, 0.126, 0.132, 0.127,
    0.113, 0.091, 0.105, 0.050, 0.018, 0.018, 0.018, 0.001,
)  # fmt: skip


def heights_data(
    *, xp: Namespace | None = None, device: Any = None, dtype: Any = None
) -> tuple[Array, Array]:
    """Return the course's height distribution: 100 bins of width 2.5 cm, normalised to unit area.

    Bins have left edges 50, 52.5, ..., 297.5; ``x`` is the bin centres and ``y``
    the frequencies divided by ``Σy · 2.5`` (a density), zero outside 160–200 cm.

    Returns
    -------
    x, y : (100,) arrays

    Examples
    --------
    >>> from m4ml_xp import heights_data
    >>> x, y = heights_data()
    >>> float(x[0]), round(float((y * 2.5).sum()), 12)
    (51.25, 1.0)
    """
    edges = 50 + 2.5 * np.arange(100)
    frequencies = np.zeros(100)
    first = int(np.flatnonzero(edges == 160)[0])
    frequencies[first : first + len(_HEIGHT_FREQUENCIES)] = _HEIGHT_FREQUENCIES
    return _on_device(xp, device, dtype, edges + 1.25, frequencies / (frequencies.sum() * 2.5))
