"""The project's GPU check: the suite on every GPU backend, then every GPU benchmark row.

One run on a one-GPU machine stays within 8 minutes: each phase runs as its own process
group under a time budget (killed, and reported as such, when it overruns) and the whole
run under ``--total`` seconds.  Everything printed goes to ``--out`` (default ``$OUT``,
else ``gpu-check-out``): one log per phase, ``gpu_check.log`` with all of it, and
``summary.md``; the benchmarks print Markdown tables ready for ``benchmarks/RESULTS.md``.

Without network, carry the pure-Python wheels the image lacks and pass their folder::

    pip download --no-deps --only-binary=:all: --python-version 3.12 -d wheels \\
        array-api-compat array-api-extra array-api-strict
    python scripts/gpu_check.py --wheels wheels --out "$OUT"      # or: nox -s gpu -- --wheels wheels

They are installed with ``pip install --no-index --no-deps --target SITE`` and SITE is
put on ``PYTHONPATH`` for every phase.  ``wheels/`` is git-ignored: a remote runner that
copies the working tree must be told to carry it.  asv is not needed by the check (for
``asv run`` on the GPU afterwards, carry asv and asv-runner built for the machine too).
One phase again, e.g. after a timeout: ``--only tests-jax --total 300``.  ``--dry-run`` prints the phases, their budgets
and commands, and which would be skipped here (every GPU phase when no NVIDIA GPU is
found), and runs nothing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
#: what the suite runs on: (phase suffix, M4ML_XP_BACKENDS value)
TEST_BACKENDS = (("cupy", "cupy"), ("torch", "torch"), ("jax", "jax.numpy"))


@dataclass
class Phase:
    """One step of the check: commands run in turn under one time budget."""

    name: str
    budget: float  # seconds
    commands: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)
    needs_gpu: bool = True
    about: str = ""


def default_data() -> str | None:
    """MNIST: ``$M4ML_XP_DATA``, else ``shared/data/mnist`` beside or inside the checkout."""
    if os.environ.get("M4ML_XP_DATA"):
        return os.environ["M4ML_XP_DATA"]
    for candidate in (
        ROOT / "shared" / "data" / "mnist",
        ROOT.parent / "shared" / "data" / "mnist",
    ):
        if candidate.is_dir():
            return str(candidate)
    return None


def gpu_names() -> list[str]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists (none without the tool or a driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.startswith("GPU ")]


def plan(args: argparse.Namespace, gpus: Sequence[str] = ("GPU",)) -> list[Phase]:
    """The phases in order, with their budgets (seconds) and commands (`gpus`: those found)."""
    py = sys.executable
    cli = [py, "-m", "m4ml_xp.cli"]
    data = ["--data", args.data] if args.data else []
    workers = str(args.workers)
    phases = [
        Phase(
            "env",
            25,
            [
                *(
                    [["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"]]
                    if gpus
                    else []
                ),
                [py, __file__, "--versions"],  # and `m4ml-xp info`, in one process
                [*cli, "pca", "--backend", "auto", *data, "--no-plots"],
            ],
            needs_gpu=False,
            about="the machine, the versions, what m4ml-xp sees, the main job on --backend auto",
        )
    ]
    phases.append(
        Phase(
            "augment",
            20,
            [
                [
                    *cli,
                    "pca",
                    "--backend",
                    "torch",
                    "--device",
                    "cuda",
                    *data,
                    # 8M digits (25 GB float32): 800 copies of t10k, 4,000 of the sample
                    "--augment",
                    "800" if args.data else "4000",
                    "--no-plots",
                ],
            ],
            about="the main job at MNIST-8M scale: 8M augmented digits made and streamed on "
            "torch CUDA (goal: well under a minute)",
        )
    )
    for suffix, backend in TEST_BACKENDS:
        env = {"M4ML_XP_BACKENDS": backend}
        if suffix == "torch":
            env["M4ML_XP_TORCH_DEVICE"] = "cuda"
        phases.append(
            Phase(
                f"tests-{suffix}",
                {"cupy": 65, "torch": 60, "jax": 75}[suffix],
                [
                    [
                        py,
                        "-m",
                        "pytest",
                        "tests",
                        "-q",
                        "-n",
                        workers,
                        "-p",
                        "no:benchmark",
                        "-p",
                        "no:cacheprovider",
                        "-rfE",
                        "--durations=5",
                    ],
                ],
                env,
                about=f"the test suite on {backend} (the GPU), xdist -n {workers}",
            )
        )
    phases += [
        Phase(
            "pca",
            50,
            [
                [
                    *cli,
                    "bench",
                    "pca",
                    *data,
                    "--rows",
                    "1000000",
                    "--targets",
                    "gpu",
                    "--repeat",
                    "2",
                    "--markdown",
                ],
            ],
            {"SCIPY_ARRAY_API": "1"},  # scikit-learn's array-API dispatch (on torch CUDA)
            about="PCA, k = 50: t10k, 70k, 1M rows; ours, eigh(XcᵀXc) by hand, scikit-learn",
        ),
        Phase(
            "pagerank",
            50,
            [
                [
                    *cli,
                    "bench",
                    "pagerank",
                    "--nodes",
                    "10000000",
                    "--edges",
                    "100000000",
                    "--targets",
                    "gpu",
                    "--no-networkx",
                    "--dtype",
                    "float32",
                    "--steady-iters",
                    "21",
                    "--repeat",
                    "2",
                    "--bandwidth",
                    str(args.bandwidth),
                    "--markdown",
                ],
            ],
            about=f"PageRank, 10M nodes / 100M edges: ms/iter vs the floor at {args.bandwidth:g} TB/s",
        ),
        Phase(
            "lsq",
            60,
            [
                [
                    *cli,
                    "bench",
                    "lsq",
                    "--fits",
                    "1000000",
                    "--scipy-fits",
                    "2000",
                    "--single-points",
                    "10000",
                    "--repeat",
                    "2",
                    "--targets",
                    "gpu",
                    "--markdown",
                ],
            ],
            about="1M batched Gaussian LM fits (optimistix beside where it imports)",
        ),
        Phase(
            "stream",
            35,
            [
                [
                    *cli,
                    "bench",
                    "pca",
                    "--stream",
                    str(args.stream_gb),
                    "--workers",
                    workers,
                    "--backend",
                    backend,
                    *device,
                    "--markdown",
                ]
                for backend, device in (("cupy", []), ("torch", ["--device", "cuda"]))
            ],
            about=f"streaming PCA of {args.stream_gb:g} GB of host rows through CuPy and torch CUDA",
        ),
        Phase(
            "nn",
            40,
            [[*cli, "bench", "nn", *data, "--repeat", "2", "--markdown"]],
            about="an MLP epoch: ours vs torch autograd (CUDA) and JAX lax.scan (GPU)",
        ),
    ]
    chosen = [p for p in phases if (not args.only or p.name in args.only)]
    return [p for p in chosen if p.name not in args.skip]


def print_versions() -> None:
    """The Python, the machine and the versions of every library the check uses."""
    import importlib
    import platform

    print(platform.python_version(), platform.machine(), os.cpu_count(), "cores")
    names = ("numpy", "scipy", "sklearn", "cupy", "torch", "jax", "optimistix",
             "array_api_compat", "array_api_extra", "array_api_strict", "xdist", "asv")  # fmt: skip
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            print(f"{name:18} not importable ({type(exc).__name__}: {exc})")
            continue
        print(f"{name:18} {getattr(module, '__version__', '?')}")
    from m4ml_xp.cli import main

    main(["info"])


class Tee:
    """Write to the terminal, the run's log and (while a phase runs) the phase's log."""

    def __init__(self, log: TextIO):
        self.log = log
        self.phase: TextIO | None = None
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            for stream in (sys.stdout, self.log, self.phase):
                if stream is not None:
                    stream.write(text)
                    stream.flush()


def run_command(command: Sequence[str], env: dict[str, str], seconds: float, tee: Tee) -> str:
    """Run `command` in its own process group for at most `seconds`; return its status."""
    tee.write(f"$ {shlex.join(command)}\n")
    try:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        tee.write(f"could not start: {exc}\n")
        return "failed to start"
    pump = threading.Thread(target=lambda: [tee.write(line) for line in process.stdout])
    pump.start()
    try:
        code = process.wait(timeout=max(seconds, 1))
        status = "ok" if code == 0 else f"exit {code}"
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the whole group: xdist workers too
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        status = f"TIMEOUT after {seconds:.0f} s (killed)"
    pump.join(timeout=10)
    tee.write(f"-> {status}\n")
    return status


def install_wheels(wheels: Path, site: Path, tee: Tee) -> str:
    """``pip install --no-index --no-deps --target site`` every wheel in `wheels`."""
    found = sorted(str(w) for w in wheels.glob("*.whl"))
    if not found:
        tee.write(f"no wheels in {wheels}\n")
        return "no wheels"
    site.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
               "--upgrade", "--target", str(site), *found]  # fmt: skip
    return run_command(command, dict(os.environ), 120, tee)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or with ``--dry-run`` print) the GPU check; returns 0 unless a phase failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out",
                        help="folder for the logs (default $OUT, else gpu-check-out)")  # fmt: skip
    parser.add_argument("--wheels", type=Path, help="folder of wheels to install first")
    parser.add_argument("--site", type=Path, default=Path("/tmp/m4ml-xp-gpu-site"),
                        help="where --wheels are installed (put on PYTHONPATH)")  # fmt: skip
    parser.add_argument("--data", default=default_data(), help="MNIST folder (t10k)")
    parser.add_argument("--workers", type=int, default=min(14, os.cpu_count() or 1),
                        help="xdist workers and stream generator threads")  # fmt: skip
    parser.add_argument("--bandwidth", type=float, default=4.3,
                        help="the GPU's memory bandwidth, TB/s (4.3: an H200)")  # fmt: skip
    parser.add_argument("--stream-gb", type=float, default=8.0, help="GB per streaming run")
    parser.add_argument("--total", type=float, default=480.0,
                        help="seconds for the whole run; phases get what is left")  # fmt: skip
    parser.add_argument("--only", type=lambda t: t.split(","), default=[], help="phases to run")
    parser.add_argument("--skip", type=lambda t: t.split(","), default=[], help="phases to skip")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    parser.add_argument("--versions", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.versions:  # the env phase's second command
        print_versions()
        return 0
    start = time.monotonic()
    gpus = gpu_names()
    phases = plan(args, gpus)
    no_gpu = "no NVIDIA GPU found (nvidia-smi is missing or lists none): skipped"
    if args.dry_run:
        print(f"GPU: {', '.join(gpus) if gpus else 'none'}; MNIST: {args.data or 'random data'}")
        total = sum(p.budget for p in phases)
        for phase in phases:
            skipped = phase.needs_gpu and not gpus
            print(f"phase {phase.name} (budget {phase.budget:.0f} s): {phase.about}")
            if skipped:
                print(f"  {no_gpu}")
            for key, value in phase.env.items():
                print(f"  env {key}={value}")
            for command in phase.commands:
                print(f"  $ {shlex.join(command)}")
        print(f"budgets add up to {total:.0f} s; the run stops at --total {args.total:.0f} s")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "gpu_check.log", "w", encoding="utf-8") as log:
        tee = Tee(log)
        tee.write(f"gpu_check: {', '.join(gpus) or 'no GPU'}; logs in {out.resolve()}\n")
        env = dict(os.environ)
        paths = [str(ROOT)]
        if args.wheels is not None:
            install_wheels(args.wheels, args.site, tee)
            paths.insert(0, str(args.site))
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX, CuPy, torch share it
        env.setdefault("MPLBACKEND", "Agg")
        if args.data:
            env["M4ML_XP_DATA"] = args.data
        results = []
        for phase in phases:
            if phase.needs_gpu and not gpus:
                tee.write(f"== {phase.name}: {no_gpu}\n")
                results.append((phase, "skipped: no GPU", 0.0))
                continue
            left = args.total - (time.monotonic() - start)
            if left < 5:
                tee.write(f"== {phase.name}: no time left of --total {args.total:.0f} s\n")
                results.append((phase, "not run: out of time", 0.0))
                continue
            budget = min(phase.budget, left)
            tee.write(f"== {phase.name} (budget {budget:.0f} s): {phase.about}\n")
            began = time.monotonic()
            with open(out / f"{phase.name}.log", "w", encoding="utf-8") as phase_log:
                tee.phase = phase_log
                statuses = []
                for command in phase.commands:
                    remaining = budget - (time.monotonic() - began)
                    if remaining < 1:
                        statuses.append("not run: phase budget spent")
                        break
                    statuses.append(run_command(command, {**env, **phase.env}, remaining, tee))
                tee.phase = None
            status = "ok" if all(s == "ok" for s in statuses) else "; ".join(statuses)
            results.append((phase, status, time.monotonic() - began))
        lines = ["| phase | status | seconds | budget |", "|---|---|---|---|"]
        lines += [f"| {p.name} | {s} | {t:.0f} | {p.budget:.0f} |" for p, s, t in results]
        summary = "\n".join(lines) + f"\n\ntotal {time.monotonic() - start:.0f} s\n"
        (out / "summary.md").write_text(summary, encoding="utf-8")
        tee.write("\n" + summary)
    failed = [p for p, s, _ in results if s not in ("ok", "skipped: no GPU")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
