"""Regenerate the NIST StRD problems shipped in ``m4ml_xp/data/nist-strd-sample.json``.

Each named problem (default: those the README names) is read from its StRD file
by ``load_nist_strd`` and written as the parsed fields — the model formula, the
data, both starts, the certified values and statistics — so that
``load_nist_strd(name)`` and ``m4ml-xp fit <name>`` work with no data directory.
Floats are written by ``repr``: the values round-trip exactly.

    python scripts/make_nist_sample.py [--source ../shared/data/nist_strd] [--target FILE] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from m4ml_xp.datasets import _NIST_ARRAYS, _NIST_SAMPLE, load_nist_strd

ROOT = Path(__file__).resolve().parents[1]
README_PROBLEMS = ["Misra1a"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=README_PROBLEMS)
    parser.add_argument(
        "--source", type=Path, default=ROOT.parent / "shared" / "data" / "nist_strd"
    )
    parser.add_argument("--target", type=Path, default=_NIST_SAMPLE, help="the JSON file to write")
    args = parser.parse_args()
    problems = {}
    for name in args.names:
        problem = load_nist_strd(args.source / f"{name}.dat")
        fields = {key: np.asarray(getattr(problem, key)).tolist() for key in _NIST_ARRAYS}
        problems[name] = {
            "formula": problem.formula,
            **fields,
            "residual_ss": problem.residual_ss,
            "residual_sd": problem.residual_sd,
        }
    args.target.write_text(json.dumps(problems, indent=1) + "\n")
    print(f"wrote {', '.join(problems)} to {args.target}")


if __name__ == "__main__":
    main()
