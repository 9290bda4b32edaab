"""Named curve models for ``m4ml-xp fit``: the formula, its parameters and a start from the data.

Each model is ``model(x, p)`` written with ``p``'s namespace, for one parameter
vector ``p (k,)``.  The starts are the usual by-eye estimates (peak height and
position, half-maximum width, end levels), computed on the host from the data
the command line has just read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace

Array = Any


@dataclass(frozen=True)
class CurveModel:
    """A model for ``m4ml-xp fit``."""

    formula: str
    parameters: tuple[str, ...]
    function: Callable[[Array, Array], Array]
    start: Callable[[np.ndarray, np.ndarray], list[float]]


def _peak(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Height, position and half-maximum half-width of the highest peak."""
    top = int(np.argmax(y))
    above = x[y >= y[top] / 2]
    half = (above.max() - above.min()) / 2 if above.size > 1 else (x.max() - x.min()) / 10
    return float(y[top]), float(x[top]), float(half) or 1.0


def _gaussian(x: Array, p: Array) -> Array:
    xp = array_namespace(x, p)
    return p[0] * xp.exp(-((x - p[1]) ** 2) / (2 * p[2] ** 2))


def _gaussian_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    height, centre, half = _peak(x, y)
    return [height, centre, half / math.sqrt(2 * math.log(2))]


def _normal_density(x: Array, p: Array) -> Array:
    xp = array_namespace(x, p)
    return xp.exp(-((x - p[0]) ** 2) / (2 * p[1] ** 2)) / (math.sqrt(2 * math.pi) * p[1])


def _normal_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    _height, centre, half = _peak(x, y)
    return [centre, half / math.sqrt(2 * math.log(2))]


def _lorentzian(x: Array, p: Array) -> Array:
    return p[0] / (1 + ((x - p[1]) / p[2]) ** 2)


def _lorentzian_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    return list(_peak(x, y))


def _exponential(x: Array, p: Array) -> Array:
    xp = array_namespace(x, p)
    return p[0] * xp.exp(-p[1] * x) + p[2]


def _exponential_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    order = np.argsort(x)
    x, y = x[order], y[order]
    level = float(y[-1])
    span = float(x[-1] - x[0]) or 1.0
    return [float(y[0] - level), 3.0 / span, level]


def _logistic(x: Array, p: Array) -> Array:
    xp = array_namespace(x, p)
    return p[0] / (1 + xp.exp(-p[1] * (x - p[2])))


def _logistic_start(x: np.ndarray, y: np.ndarray) -> list[float]:
    order = np.argsort(x)
    x, y = x[order], y[order]
    middle = float(x[np.argmin(np.abs(y - y.max() / 2))])
    return [float(y.max()), 4.0 / (float(x[-1] - x[0]) or 1.0), middle]


def _line(x: Array, p: Array) -> Array:
    return p[0] * x + p[1]


def _quadratic(x: Array, p: Array) -> Array:
    return p[0] * x**2 + p[1] * x + p[2]


MODELS: dict[str, CurveModel] = {
    "gaussian": CurveModel(
        "a·exp(−(x − μ)² / 2σ²)", ("a", "mu", "sigma"), _gaussian, _gaussian_start
    ),
    "normal": CurveModel(
        "exp(−(x − μ)² / 2σ²) / (σ·sqrt(2π))  (unit area, the course's)",
        ("mu", "sigma"),
        _normal_density,
        _normal_start,
    ),
    "lorentzian": CurveModel(
        "a / (1 + ((x − x0) / γ)²)", ("a", "x0", "gamma"), _lorentzian, _lorentzian_start
    ),
    "exponential": CurveModel("a·exp(−k·x) + c", ("a", "k", "c"), _exponential, _exponential_start),
    "logistic": CurveModel(
        "L / (1 + exp(−k·(x − x0)))", ("L", "k", "x0"), _logistic, _logistic_start
    ),
    "line": CurveModel("a·x + b", ("a", "b"), _line, lambda x, y: [0.0, float(np.mean(y))]),
    "quadratic": CurveModel(
        "a·x² + b·x + c", ("a", "b", "c"), _quadratic, lambda x, y: [0.0, 0.0, float(np.mean(y))]
    ),
}
