# %% [markdown]
# # PageRank on a simulated internet — the Course 1 project
#
# The course builds a random "internet" (`generate_internet`), damps its link
# matrix and finds the principal eigenvector by power iteration. Here the same
# ranking comes from the dense link matrix (`pagerank`) and from the sparse edge
# list (`pagerank_edges`, NetworkX's semantics), on any array backend.
#
# Run: `python examples/pagerank_simulated_internet.py [--backend torch]`

# %%
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np

import m4ml_xp as mx
from m4ml_xp import backends

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--backend", default="numpy", choices=sorted(backends.BACKENDS))
parser.add_argument("--pages", type=int, default=1000)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = Path(__file__).parent / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## The course's tiny internet: six pages, one with no links
# Columns are "from", rows are "to"; the all-zero column links everywhere.

# %%
L = xp.asarray(
    np.array(
        [
            [0, 1 / 2, 1 / 3, 0, 0, 0],
            [1 / 3, 0, 0, 0, 1 / 2, 0],
            [1 / 3, 1 / 2, 0, 1, 0, 0],
            [1 / 3, 0, 1 / 3, 0, 1 / 2, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 1 / 3, 0, 0, 0],
        ]
    ),
    device=device,
    dtype=xp.float64,
)
small = mx.pagerank(L, damping=0.85)
print(
    "six-page scores:",
    np.round(np.asarray(backends.sync(small.scores).tolist()), 4),
    f"({small.n_iter} iterations)",
)

# %% [markdown]
# ## A simulated internet, dense and sparse

# %%
n = args.pages
src, dst = mx.generate_internet_edges(n, seed=0, xp=xp, device=device)
link_counts = np.zeros((n, n))
np.add.at(link_counts, (np.asarray(dst.tolist()), np.asarray(src.tolist())), 1.0)
sums = link_counts.sum(axis=0)
L_big = xp.asarray(
    np.divide(link_counts, sums, out=np.zeros_like(link_counts), where=sums > 0), device=device
)

start = time.perf_counter()
dense = backends.sync(mx.pagerank(L_big, damping=0.85, tol=1e-13))
dense_seconds = time.perf_counter() - start
start = time.perf_counter()
sparse = backends.sync(
    mx.pagerank_edges(
        src, dst, n_nodes=n, damping=0.85, tol=1e-13 / n, max_iter=1000, dtype=xp.float64
    )
)
sparse_seconds = time.perf_counter() - start
dense_scores = np.asarray(dense.scores.tolist())
sparse_scores = np.asarray(sparse.scores.tolist())
difference = np.abs(dense_scores - sparse_scores).max()
print(
    f"{n} pages, {int(src.shape[0])} links: dense {dense.n_iter} iterations in {dense_seconds * 1e3:.1f} ms, "
    f"sparse {sparse.n_iter} iterations in {sparse_seconds * 1e3:.1f} ms; max |difference| {difference:.1e}"
)
assert difference < 1e-10, "dense and sparse PageRank disagree"
assert np.array_equal(np.argsort(-dense_scores)[:10], np.argsort(-sparse_scores)[:10])

# %% [markdown]
# ## The ranking as a bar chart

# %%
top = np.argsort(-sparse_scores)[:25]
fig, (ax_all, ax_top) = plt.subplots(1, 2, figsize=(12, 4))
ax_all.vlines(np.arange(n), 0, sparse_scores, color="tab:blue", linewidth=1)  # every page visible
ax_all.set(title=f"PageRank of a simulated internet ({n} pages)", xlabel="page", ylabel="score")
ax_top.bar([str(p) for p in top], sparse_scores[top], color="tab:orange")
ax_top.set(title="the 25 highest-ranked pages", xlabel="page")
ax_top.tick_params(axis="x", rotation=90)
fig.tight_layout()
fig.savefig(OUT / "pagerank_simulated_internet.png", dpi=100)
print("wrote", OUT / "pagerank_simulated_internet.png")
