# %% [markdown]
# # Fitting a Gaussian to a height distribution — the Course 2 least-squares project
#
# The course's histogram of heights (100 bins of 2.5 cm, normalised to unit
# area) and the unit-area Gaussian `f(x; μ, σ) = exp(−(x−μ)²/2σ²) / (√(2π) σ)`.
# First the course's steepest descent on `χ² = Σ (y − f)²` — fixed steps of
# `−aggression · ∇χ²` (aggression 2000, 50 steps from μ = 155, σ = 6) — then
# Levenberg–Marquardt from where the descent stopped, with standard errors.
#
# Run: `python examples/fit_gaussian_heights.py [--backend torch]`

# %%
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import matplotlib

if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from array_api_compat import array_namespace

import m4ml_xp as mx
from m4ml_xp import backends

HERE = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--backend", default="numpy", choices=sorted(backends.BACKENDS))
parser.add_argument("--aggression", type=float, default=2000.0)
parser.add_argument("--steps", type=int, default=50)
args, _ = parser.parse_known_args()
xp, device = backends.resolve_backend(args.backend)
OUT = HERE / "out"
OUT.mkdir(exist_ok=True)

# %% [markdown]
# ## The data and the model

# %%
x, y = mx.heights_data(xp=xp, device=device, dtype=xp.float64)


def gaussian(x, p):
    """The course's unit-area Gaussian, p = (μ, σ)."""
    ns = array_namespace(x, p)
    return ns.exp(-((x - p[0]) ** 2) / (2 * p[1] ** 2)) / (math.sqrt(2 * math.pi) * p[1])


def chi2(p):
    return xp.sum((y - gaussian(x, p)) ** 2)


def chi2_gradient(p):
    """∇χ² = −2 Jᵀ (y − f), J = ∂f/∂(μ, σ) by central differences."""
    J = mx.jacobian(lambda q: gaussian(x, q), p, method="fd")
    return -2 * (xp.linalg.matrix_transpose(J) @ (y - gaussian(x, p)))


# %% [markdown]
# ## The course's steepest descent: fixed steps of −aggression · ∇χ²

# %%
start = xp.asarray([155.0, 6.0], dtype=xp.float64, device=device)
descent = mx.gradient_descent(chi2_gradient, start, lr=args.aggression, n_steps=args.steps)
path = backends.to_numpy(descent.path)
chi2_path = [float(chi2(descent.path[i, :])) for i in range(descent.path.shape[0])]
print(
    f"steepest descent: χ² {chi2_path[0]:.3e} → {chi2_path[-1]:.3e} after {args.steps} steps; "
    f"μ = {path[-1, 0]:.3f}, σ = {path[-1, 1]:.3f}"
)

# %% [markdown]
# ## Levenberg–Marquardt from there, with standard errors

# %%
fit = mx.curve_fit(gaussian, x, y, descent.x)
mu, sigma = (float(v) for v in backends.to_numpy(fit.params))
mu_err, sigma_err = (float(v) for v in backends.to_numpy(fit.stderr))
print(
    f"Levenberg–Marquardt: status {fit.result.status} ({fit.result.message}) after "
    f"{fit.result.n_iter} iterations: μ = {mu:.4f} ± {mu_err:.4f} cm, σ = {sigma:.4f} ± {sigma_err:.4f} cm; "
    f"χ² = {2 * fit.result.cost:.4e}"
)
assert fit.result.converged
assert 2 * fit.result.cost <= min(chi2_path)  # the solver ends below anything the descent reached

# %% [markdown]
# ## Plots: the χ² landscape with the descent path, the fit, the residuals

# %%
x_np, y_np = backends.to_numpy(x), backends.to_numpy(y)
mus, sigmas = np.linspace(150, 195, 121), np.linspace(4, 22, 121)
M, S = np.meshgrid(mus, sigmas)
model_grid = np.exp(-((x_np - M[..., None]) ** 2) / (2 * S[..., None] ** 2)) / (
    np.sqrt(2 * np.pi) * S[..., None]
)
landscape = ((y_np - model_grid) ** 2).sum(axis=-1)

fig, (ax_land, ax_fit, ax_res) = plt.subplots(1, 3, figsize=(15, 4.5))
ax_land.contourf(M, S, np.log10(landscape), levels=30, cmap="viridis")
ax_land.plot(path[:, 0], path[:, 1], ".-", color="white", ms=3, label="steepest descent")
ax_land.plot([mu], [sigma], "*", color="red", ms=12, label="Levenberg–Marquardt")
ax_land.set(xlabel="μ [cm]", ylabel="σ [cm]", title="log₁₀ χ²(μ, σ)")
ax_land.legend(loc="upper right")

fine = np.linspace(140, 215, 400)
fitted = np.exp(-((fine - mu) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
after_descent = np.exp(-((fine - path[-1, 0]) ** 2) / (2 * path[-1, 1] ** 2)) / (
    np.sqrt(2 * np.pi) * path[-1, 1]
)
ax_fit.bar(x_np, y_np, width=2.5, color="lightsteelblue", edgecolor="steelblue", label="heights")
ax_fit.plot(fine, after_descent, ":", color="grey", label="after the descent")
ax_fit.plot(fine, fitted, "-", color="crimson", label=f"fit μ={mu:.1f}, σ={sigma:.1f}")
ax_fit.set(xlim=(140, 215), xlabel="height [cm]", ylabel="density", title="data and fit")
ax_fit.legend()

residuals = y_np - backends.to_numpy(gaussian(x, fit.params))
window = (x_np > 150) & (x_np < 210)
ax_res.axhline(0, color="black", lw=0.8)
ax_res.plot(x_np[window], residuals[window], "o-", color="crimson", ms=4)
ax_res.set(xlabel="height [cm]", ylabel="y − f(x)", title="residuals")
fig.tight_layout()
fig.savefig(OUT / "fit_gaussian_heights.png", dpi=100)
print("wrote", OUT / "fit_gaussian_heights.png")
