"""Residual evaluations on the NIST StRD problems: levenberg_marquardt at defaults vs SciPy.

    python scripts/nist_evaluations.py            # every problem, both starts
    python scripts/nist_evaluations.py MGH09 Rat43
    M4ML_XP_DATA=/path/to/data python scripts/nist_evaluations.py   # <data>/nist_strd/*.dat

Counts *calls of the residual* on every side, by a counting wrapper: SciPy's
``least_squares(method="lm").nfev`` leaves out the evaluations its finite-difference
Jacobians make (10 reported for 37 calls on Chwirut1, start 1, SciPy 1.17), so its
own count is not comparable with ours, which counts them all.  Problems: the
``*.dat`` files under ``$M4ML_XP_DATA/nist_strd`` (else ``../shared/data/nist_strd``)
and, where no file has them, the higher-difficulty ones typed into
``tests/test_lsq.py``; NumPy, float64, no Jacobian given.  A fit is certified when
every parameter agrees with NIST's value to >= 6 significant digits (the digits
column) and so does the residual sum of squares, where the file gives it, or to
float64's rounding (``tests.test_lsq.rss_certified``: Lanczos1's 1.4e-25 has ~2.5
digits in float64); a fit that misses the sum of squares shows 0 digits.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests

import m4ml_xp as mx
from tests.test_lsq import HARD, NIST_FILES, TIGHT, rss_certified, significant_digits


def problems() -> dict[str, tuple]:
    """``name -> (model(x, b), x, y, starts, certified, residual_ss)`` for every problem at hand."""
    files = NIST_FILES
    if os.environ.get("M4ML_XP_DATA"):
        files = sorted((Path(os.environ["M4ML_XP_DATA"]) / "nist_strd").glob("*.dat"))
    out = {}
    for path in files:
        p = mx.load_nist_strd(path)
        out[path.stem] = (p.model, p.x, p.y, p.starts, p.certified, p.residual_ss)
    for name, (model, x, y, starts, certified) in HARD.items():
        if name not in out:
            arrays = (np.asarray(x, float), np.asarray(y, float), np.asarray(starts, float))
            out[name] = (model, *arrays, np.asarray(certified), None)
    return out


def certified_digits(b: np.ndarray, residual, y, certified, residual_ss) -> float:
    """Agreeing significant digits of the parameters; 0 if the residual sum of squares
    (where the file gives it) misses NIST's by more than 6 digits and float64 rounding."""
    ss = float(np.sum(np.asarray(residual(b)) ** 2))
    if residual_ss is not None and not rss_certified(ss, residual_ss, y):
        return 0.0
    return significant_digits(b, certified)


def main(only: list[str]) -> None:
    warnings.simplefilter("ignore")  # overflowing trial steps, unconverged fits: reported below
    header = ["problem", "start", "ours", "digits", "SciPy", "digits", "SciPy 1e-15", "digits"]
    print("{:10s}{:>6s}{:>8s}{:>8s}{:>8s}{:>8s}{:>13s}{:>8s}".format(*header))
    totals, certified_fits, fits = np.zeros(3, int), np.zeros(3, int), 0
    for name, (model, x, y, starts, certified, residual_ss) in problems().items():
        if only and name not in only:
            continue
        for start in range(2):
            fits += 1
            calls = [0]

            def plain(b, model=model, x=x, y=y):
                return model(x, b) - y

            def residual(b, plain=plain, calls=calls):
                calls[0] += 1
                return plain(b)

            row = []
            for run in (
                lambda x0: mx.levenberg_marquardt(residual, x0).x,
                lambda x0: least_squares(residual, x0, method="lm").x,
                lambda x0: least_squares(residual, x0, method="lm", **TIGHT).x,
            ):
                calls[0] = 0
                b = np.asarray(run(np.asarray(starts[start])))
                count = calls[0]
                row.append((count, certified_digits(b, plain, y, certified, residual_ss)))
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
