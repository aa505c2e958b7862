# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # rfdiff tutorial: from a mixture to its per-class learning window
#
# A plain-text notebook (jupytext "percent" format: open it in Jupyter with jupytext, in VS Code or Spyder as
# cells, or run it as a script: `python examples/tutorial.py`). It uses only the public Python API,
# `import rfdiff as rd` — arrays in, arrays out — at a size that takes about 30 s of CPU time, and
# CI runs it (`tests/test_tutorial.py`), so every cell here works with the installed version.
#
# The setting (`theory_notes/01_model.md`): data from a K-class Gaussian mixture, noised by the
# Ornstein–Uhlenbeck forward process to time t, and a random-features score model
# `s_A(x) = A σ(W x/√d)/√p` with p = ψ_p d features and n = ψ_n d training points, trained by gradient descent
# on the denoising score-matching loss. Each class c learns on its own clock: it *generalises* at τ_gen,c and
# starts *memorising* at τ_mem,c.

# %%
import jax
import matplotlib.pyplot as plt  # headless (a script, CI) matplotlib falls back to its Agg backend by itself
import numpy as np

import rfdiff as rd

jax.config.update("jax_enable_x64", True)  # the theory runs in float64

# %% [markdown]
# ## 1. A class-imbalanced mixture
#
# Two isotropic classes: a majority (π = 0.8, variance 1) and a minority (π = 0.2, variance 4), centred (no
# centroid term) so the only difference between classes is their scale. The RF model has ψ_p = 4 features
# and ψ_n = 2 training points per dimension, at diffusion time t = 0.01.

# %%
mix = rd.GaussianMixture.create([0.8, 0.2], [1.0, 4.0])
model = rd.RFModel(psi_p=4.0, psi_n=2.0, t=0.01, activation="tanh")
print(mix.num_classes, "classes, proportions", np.asarray(mix.proportions))

# %% [markdown]
# ## 2. The spectrum of the feature covariance
#
# Gradient descent on a quadratic loss moves along the eigenvectors of the feature covariance U; its
# spectrum, split into per-class parts, sets the per-class timescales. `rd.spectral_density` solves the
# self-consistent equations of its Stieltjes transform on a log-λ grid (`theory_notes/03_spectrum.md`).

# %%
lam = np.geomspace(1e-4, 1e2, 300)
spec = rd.spectral_density(mix, model, lam)
print(f"atom of mass {spec.atom_mass:.3f} at λ = {spec.atom_location:.3g}; bulk intervals:",
      np.round(np.asarray(spec.edges), 4).tolist())

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.loglog(lam, np.asarray(spec.density), "k", label="total")
for c in range(mix.num_classes):
    ax.loglog(lam, np.asarray(spec.class_density)[..., c], "--", label=f"class {c + 1}")
ax.set(xlabel="eigenvalue λ of U", ylabel="density", ylim=(1e-4, None))
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## 3. Per-class learning curves and times (d → ∞ theory)
#
# `rd.theory_curves` gives the per-class normalised test and train errors ε^te_c(τ), ε^tr_c(τ) on a τ grid
# (exact gradient-flow clock by default, `theory_notes/09_gradient_flow.md`; `clock="ridge"` gives the ridge-time
# proxy of `theory_notes/04_dynamics.md`): 1 untrained, 0 the exact class score, ε^tr < 0 means the
# model is fitting the training points themselves. `rd.curve_timescales` reads the times off the curves.

# %%
taus = np.geomspace(1e-3, 1e6, 64)
cur = rd.theory_curves(mix, model, taus)
ts = rd.curve_timescales(taus, cur["eps_test"], cur["eps_train"], cur["eps_train_inf"])
for c in range(mix.num_classes):
    print(f"class {c + 1}: tau_gen = {float(ts.tau_gen[c]):.3g}, tau_mem = {float(ts.tau_mem[c]):.3g}")

fig, ax = plt.subplots(figsize=(5, 3.2))
for c in range(mix.num_classes):
    (line,) = ax.semilogx(taus, np.asarray(cur["eps_test"])[c], label=f"class {c + 1} test")
    ax.semilogx(taus, np.asarray(cur["eps_train"])[c], ":", color=line.get_color(), label=f"class {c + 1} train")
ax.axhline(0.0, color="grey", lw=0.5)
ax.set(xlabel="training time τ", ylabel="normalised error ε")
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## 4. When to stop: the window
#
# Training should stop after every class has generalised and before any memorises: the common window
# [max_c τ_gen,c, min_c τ_mem,c] (`theory_notes/08_window.md`). Negative width means a disparity: one class
# memorises before another has generalised.

# %%
w = rd.disparity_window(mix, model, taus)
print(f"window [{float(w.lo):.3g}, {float(w.hi):.3g}], width {float(w.width_decades):.2f} decades, "
      f"exists: {bool(w.exists)}")

# %% [markdown]
# ## 5. A small phase diagram
#
# `rd.timescale_fn` turns a parameter dict into per-class times (pure and jittable); `rd.phase_diagram`
# evaluates it over a grid (vmapped, chunked, sharded over the local devices). The axes act on the *first*
# class (class 1 here; the code indexes it 0): `sigma_ratio` = σ_1/σ_2 (class 1's standard deviation over
# class 2's) and `pi1` = π_1 (the others rescaled). Our mixture is the point σ_1/σ_2 = 0.5, π_1 = 0.8 of a
# 6 × 4 grid; the colour is the window width.

# %%
axes = {"sigma_ratio": np.linspace(0.25, 1.5, 6), "pi1": np.linspace(0.6, 0.9, 4)}
fn = rd.window_fn(mix, model, taus=taus, grid=axes)
with jax.enable_x64(True):
    pd = rd.phase_diagram(fn, axes, chunk_size=16, progress=False)
width = np.asarray(pd["window_width"])  # (6, 4); per-class outputs such as pd["tau_gen"] are (6, 4, 2)
print("window width (decades), rows σ_1/σ_2, columns π_1:\n", np.round(width, 2))
print(f"at our mixture: {width[1, 2]:.3f} decades (section 4: {float(w.width_decades):.3f})")

fig, ax = plt.subplots(figsize=(4.5, 3.2))
im = ax.pcolormesh(axes["pi1"], axes["sigma_ratio"], width, shading="nearest", cmap="RdBu")
fig.colorbar(im, ax=ax, label="window width (decades)")
ax.plot([0.8], [0.5], "k*")  # our mixture
ax.set(xlabel="proportion of class 1, π_1", ylabel="σ_1 / σ_2")
fig.tight_layout()

# %% [markdown]
# The same grid as a labelled `xarray.Dataset` (named dimensions, units, provenance; what every CLI command
# writes as netCDF and `rd.open_result` reads back) and its standard figure, drawn by `rd.plot_result` in
# the package's style (`rd.save_figure(fig, "stem")` would write `stem.pdf` and a 300-dpi `stem.png`):

# %%
with jax.enable_x64(True):
    ds = rd.phase_diagram(fn, axes, chunk_size=16, progress=False, as_dataset=True)  # same compiled batches
print(ds["window_width"].dims, ds["tau_gen"].dims, ds["tau_gen"].attrs["units"])
fig = rd.plot_result(ds, variable="window_width")

# %% [markdown]
# ## 6. Against a simulation at finite d
#
# A realised problem (`rd.realise`: W, training set) at d = 40, trained by full-batch gradient descent with
# the exact noise average (`rd.train_rf`, learning rate in the theory's τ units). Its logged per-class train
# errors (estimated with 64 noise draws per training point) follow the closed-form finite-d GD curves
# (`rd.finite_curves`, exact for this quadratic loss); the d → ∞ theory of section 3 is the limit they approach.

# %%
d = 40
prob = rd.realise(jax.random.key(0), mix, model, d)
mom = rd.train_moments(prob, "exact", k_max=12)
lr = 0.5 / float(np.linalg.eigvalsh(np.asarray(mom.U))[-1])  # a stable GD step (τ units)
log = rd.train_rf(prob, rd.TrainConfig(lr=lr, steps=400, noise="exact", dtype="float64", num_logs=12,
                                       n_test=2000, n_eval_noise=64), moments=mom, progress=False)
fc = rd.finite_curves(prob, mom, rd.population_moments(prob, k_max=12))
tt = np.asarray(log.tau)[1:]  # logged times (step 0 left out: τ = 0 is off a log axis)
closed = np.asarray(fc(tt, kind="gd", step=lr)["eps_train"])  # (K, T)
sim = np.asarray(log.eps_train)[1:].T  # (K, T)
print("max |simulation − closed form| of ε^tr per class:", np.round(np.max(np.abs(sim - closed), axis=1), 3))

fig, ax = plt.subplots(figsize=(5, 3.2))
for c in range(mix.num_classes):
    (line,) = ax.semilogx(tt, sim[c], "o", ms=3, label=f"class {c + 1} simulation")
    ax.semilogx(tt, closed[c], "-", color=line.get_color(), label=f"class {c + 1} closed form")
ax.set(xlabel="training time τ", ylabel="train error ε^tr")
ax.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## Where next
#
# * the command line does all of this from spec files: `rfdiff --help`, `examples/*.toml`;
# * speciation of the backward diffusion per class: `rd.speciation_times`, `rd.backward_sde`;
# * derivations: `theory_notes/`; validation reports: `validation/`.
