"""nox sessions: one test session per array backend, lint, examples, benchmarks.

    nox -t cpu                          # lint + every CPU backend + examples (what CI runs)
    nox -s "tests(backend='jax')"       # one backend
    nox -s dashboard                    # quick asv dashboard (tiny sizes), published and checked
    nox -s bench                        # asv at full sizes + dashboard + `m4ml-xp bench all`
    nox -s gpu -- --wheels DIR          # on a GPU machine: scripts/gpu_check.py (< 8 minutes)

What each backend needs is in backends/<name>.txt, the single place that says so.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.tags = ["cpu"]  # plain `nox` runs what CI runs; cupy needs a GPU

ROOT = Path(__file__).parent
BACKENDS_DIR = ROOT / "backends"

#: nox backend name -> the test-suite Backend values it covers (see tests/conftest.py)
BACKENDS = {
    "numpy": ["numpy", "numpy:readonly"],
    "array-api-strict": ["array_api_strict"],
    "jax": ["jax.numpy"],
    "torch": ["torch"],
    "dask": ["dask.array"],
    "cupy": ["cupy"],
}
GPU_ONLY = {"cupy"}


def backend_requirements(name: str) -> list[str]:
    return ["-r", str(BACKENDS_DIR / f"{name}.txt")]


def install(session: nox.Session, *args: str) -> None:
    """pip install without compiling bytecode: Python compiles what the run imports, once;
    pip would compile all of SciPy, JAX and torch up front (half of a fresh install)."""
    session.install("--no-compile", *args)


@nox.session(tags=["cpu"])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff==0.17.6")  # pinned: formatting must not drift between runs
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
@nox.parametrize(
    "backend",
    [nox.param(name, tags=[] if name in GPU_ONLY else ["cpu"]) for name in BACKENDS],
)
def tests(session: nox.Session, backend: str) -> None:
    """The test suite on one backend; a listed backend that fails to import is an error."""
    install(session, "-e", ".[test]", *backend_requirements(backend))
    # one worker per core: the suite is CPU-bound (JAX compiles, Dask schedules); `--dist
    # worksteal` evens out the long hypothesis tests.  Pass `-- -n 0` to run in one process.
    args = ["-n", "auto", "--dist", "worksteal", *session.posargs]
    if backend == "numpy":  # the backend-independent tests and the docstring examples
        args += ["tests", "m4ml_xp", "--doctest-modules"]
    session.run("pytest", *args, env={"M4ML_XP_BACKENDS": ",".join(BACKENDS[backend])})


@nox.session(tags=["cpu"])
def examples(session: nox.Session) -> None:
    """Run every course example end to end (plots written to examples/out/)."""
    install(session, "-e", ".[plot]", *backend_requirements("numpy"))
    for script in sorted((ROOT / "examples").glob("*.py")):
        session.run("python", str(script), env={"MPLBACKEND": "Agg"})


def _bench_environment(session: nox.Session) -> None:
    """Every backend this machine runs (CuPy with an NVIDIA GPU) and the reference tools."""
    names = [name for name in BACKENDS if name not in GPU_ONLY or shutil.which("nvidia-smi")]
    requirements = [arg for name in names for arg in backend_requirements(name)]
    install(session, "-e", ".[bench]", *requirements)


def _asv_dashboard(
    session: nox.Session, machine: str, *run_args: str, env: dict[str, str], check: str = "."
) -> None:
    """asv in this environment, its results kept (``--set-commit-hash``), published, checked."""
    commit = session.run("git", "rev-parse", "HEAD", external=True, silent=True).strip()
    session.run("asv", "machine", "--yes", "--machine", machine)
    session.run(
        "asv",
        "run",
        "--python=same",  # every backend installed here; no per-commit rebuilds
        "--launch-method=forkserver",  # import the suite once, not once per value
        f"--set-commit-hash={commit}",  # without it asv discards results from --python=same
        f"--machine={machine}",
        "--show-stderr",
        *run_args,
        *session.posargs,
        env=env,
    )
    session.run("asv", "publish")
    checker = str(ROOT / "scripts" / "check_dashboard.py")
    session.run("python", checker, ".asv/html", f"--bench={check}")
    session.log(
        "view: python -m http.server 8080 --bind 127.0.0.1 --directory .asv/html, "
        "then http://127.0.0.1:8080 (the page loads its scripts from the web)"
    )


@nox.session
def dashboard(session: nox.Session) -> None:
    """The quick asv dashboard: tiny sizes, one run per value, as machine ``quick``; checked.

    Every time and track benchmark on every installed implementation, published to
    .asv/html, then scripts/check_dashboard.py fails if one has no graph.  About 4 minutes
    of CPU time on 2 cores.
    """
    _bench_environment(session)
    # peakmem at tiny sizes measures the interpreter and its libraries, not the algorithm
    quick_benchmarks = r"^(?!.*\.peakmem_)"
    _asv_dashboard(
        session,
        "quick",
        "--quick",
        f"--bench={quick_benchmarks}",
        env={"M4ML_XP_BENCH_QUICK": "1"},
        check=quick_benchmarks,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """asv at full sizes on every installed backend, its dashboard, then `bench all`.

    ``M4ML_XP_BENCH_LARGE=1 nox -s bench`` adds the GPU sizes.
    """
    _bench_environment(session)
    _asv_dashboard(session, platform.node(), env={})
    session.run("m4ml-xp", "bench", "all", "--markdown", "--results", "benchmarks/RESULTS.md")
    session.log("goals: benchmarks/RESULTS.md")


@nox.session(venv_backend="none")
def gpu(session: nox.Session) -> None:
    """The GPU check, in this environment (a GPU image, often without network): tests + benchmarks.

    ``nox -s gpu -- --wheels DIR --out DIR`` (``--dry-run`` prints the plan); see
    scripts/gpu_check.py for the phases, their time budgets and what to carry.
    """
    session.run("python", str(ROOT / "scripts" / "gpu_check.py"), *session.posargs)
