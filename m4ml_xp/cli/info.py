"""``m4ml-xp info``: the versions, backends and devices this installation sees."""

from __future__ import annotations

import argparse
from typing import Any

from m4ml_xp import backends


def add_parser(commands: Any) -> None:
    """Add ``info`` to the sub-commands."""
    info = commands.add_parser("info", help="backends found, versions, devices, float64 support")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the versions, backends and devices this installation sees."""
    import m4ml_xp

    print(f"m4ml_xp {m4ml_xp.__version__}")
    for name, info in backends.available_backends().items():
        if info["available"]:
            print(
                f"  {name:<17} {info['version']:<12} devices: {', '.join(info['devices'])}"
                f"  float64: {'yes' if info['float64'] else 'no'}"
            )
        else:
            print(f"  {name:<17} not available ({info['reason'].splitlines()[0][:70]})")
    working = [name for name in backends.GPU_DEVICES if backends.gpu_backend_works(name)]
    choices = ", ".join(
        f"{job} → {backends.auto_backend(job, working)[0]}" for job in backends.AUTO_ORDER
    )
    print(
        f"--backend auto (GPU backends that work here: {', '.join(working) or 'none'}): {choices}"
    )
    return 0
