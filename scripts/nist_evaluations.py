"""Residual evaluations on the NIST StRD problems: levenberg_marquardt at defaults vs SciPy.

    python scripts/nist_evaluations.py            # every problem, both starts
    python scripts/nist_evaluations.py MGH09 Rat43

Counts *calls of the residual* on every side, by a counting wrapper: SciPy's
``least_squares(method="lm").nfev`` leaves out the evaluations its finite-difference
Jacobians make (10 reported for 37 calls on Chwirut1, start 1, SciPy 1.17), so its
own count is not comparable with ours, which counts them all.  Problems: the
``*.dat`` files under ``../shared/data/nist_strd`` (or ``M4ML_XP_DATA``) and the
higher-difficulty ones typed into ``tests/test_lsq.py``; NumPy, float64, forward
then central differences (no Jacobian given).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests

import m4ml_xp as mx
from tests.test_lsq import HARD, NIST_FILES, TIGHT, significant_digits


def problems() -> dict[str, tuple]:
    """``name -> (model(x, b), x, y, starts, certified)`` for every problem at hand."""
    out = {}
    for path in NIST_FILES:
        p = mx.load_nist_strd(path)
        out[path.stem] = (p.model, p.x, p.y, p.starts, p.certified)
    for name, (model, x, y, starts, certified) in HARD.items():
        arrays = (np.asarray(x, float), np.asarray(y, float), np.asarray(starts, float))
        out[name] = (model, *arrays, np.asarray(certified))
    return out


def main(only: list[str]) -> None:
    warnings.simplefilter("ignore")  # overflowing trial steps, unconverged fits: reported below
    header = ["problem", "start", "ours", "digits", "SciPy", "digits", "SciPy 1e-15", "digits"]
    print("{:10s}{:>6s}{:>8s}{:>8s}{:>8s}{:>8s}{:>13s}{:>8s}".format(*header))
    totals, certified_fits, fits = np.zeros(3, int), np.zeros(3, int), 0
    for name, (model, x, y, starts, certified) in problems().items():
        if only and name not in only:
            continue
        for start in range(2):
            fits += 1
            calls = [0]

            def residual(b, model=model, x=x, y=y, calls=calls):
                calls[0] += 1
                return model(x, b) - y

            row = []
            for run in (
                lambda x0: mx.levenberg_marquardt(residual, x0).x,
                lambda x0: least_squares(residual, x0, method="lm").x,
                lambda x0: least_squares(residual, x0, method="lm", **TIGHT).x,
            ):
                calls[0] = 0
                digits = significant_digits(np.asarray(run(np.asarray(starts[start]))), certified)
                row.append((calls[0], digits))
            for i, (count, digits) in enumerate(row):
                totals[i] += count
                certified_fits[i] += digits >= 6
            cells = "".join(f"{c:8d}{d:8.1f}" if i < 2 else f"{c:13d}{d:8.1f}"
                            for i, (c, d) in enumerate(row))  # fmt: skip
            print(f"{name:10s}{start + 1:6d}{cells}")
    print(f"\nresidual evaluations: ours {totals[0]:,}, SciPy {totals[1]:,}, SciPy at 1e-15 {totals[2]:,}"
          f" (ours / SciPy at 1e-15: {totals[0] / totals[2]:.2f})")  # fmt: skip
    print(f"fits with >= 6 certified digits of {fits}: ours {certified_fits[0]}, "
          f"SciPy {certified_fits[1]}, SciPy at 1e-15 {certified_fits[2]}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
