"""Per-class evaluation of a U-Net diffusion model: normalised denoising errors, memorisation, a classifier
Fréchet distance, and the per-class times τ_gen,c / τ_onset,c / τ_mem,c read off the checkpoint curves.

Definitions (theory_notes/07_unet.md §3):

* per-class loss at OU time t: ``L_c(t) = mean over class-c images and fixed noise draws of ||ε̂ − ε||²/d``;
* Gaussian-class reference ``S_c(t) = (Δ_t/d) Σ_j 1/(e^{−2t} λ_{c,j} + Δ_t)`` with λ_{c,j} the eigenvalues of the
  class-c pixel covariance (isotropic case: Δ_t/Γ_c², theory_notes/01_model.md), and the normalised error
  ``ε_c = [L_c − (1 − S_c)]/S_c`` (1 = predicts zero, 0 = the class's Gaussian denoiser, < 0 beats it);
* ``τ_gen,c``: first step with ε_c^te ≤ (1 + min ε_c^te)/2; ``τ_onset,c``: first step with ε_c^tr ≤ −1;
  ``τ_mem,c``: first step where the memorised fraction of class-c samples reaches 1/2 (log-linear
  interpolation in the step between checkpoints) — computed by :mod:`rfdiff.theory.timescales`, the project's one
  implementation of the theory's definitions, with the gradient-flow time replaced by the optimiser step
  (+inf: never reached; NaN: already reached at the first checkpoint);
* classifier Fréchet distance ``CFD_c = ||m_g − m_r||² + Tr(C_g + C_r − 2 (C_g^{1/2} C_r C_g^{1/2})^{1/2})`` between
  Gaussian fits of penultimate-layer features (a small MLP classifier trained here on Fashion-MNIST) of the
  generated samples assigned to class c and of held-out class-c test images. It is *not* FID (no Inception
  network) and, like FID, biased upwards at small sample counts.

Example (a Gaussian class with pixel-covariance eigenvalues 1: S(t) = Δ_t)::

    >>> s = gaussian_reference(np.ones(4), [0.1, 1.0])
    >>> np.allclose(s, 1 - np.exp(-2 * np.array([0.1, 1.0])))
    True
"""

from __future__ import annotations

import io as _io
import json
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..io import atomic_write_bytes, load_result

__all__ = ["gaussian_reference", "normalised_error", "frechet_distance", "Classifier",
           "train_classifier", "load_or_train_classifier", "summarise"]


def gaussian_reference(cov_eigenvalues, t) -> np.ndarray:
    """S(t) = (Δ_t/d) Σ_j 1/(e^{−2t} λ_j + Δ_t) for eigenvalues (..., d) and times (n_t,) → (..., n_t)."""
    lam = np.asarray(cov_eigenvalues, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if np.any(t <= 0):
        raise ValueError(f"times must be > 0, got {t}")
    dlt = -np.expm1(-2.0 * t)
    return dlt * np.mean(1.0 / (np.exp(-2.0 * t) * lam[..., None] + dlt), axis=-2)


def normalised_error(loss, s_ref) -> np.ndarray:
    """ε = [L − (1 − S)]/S (theory_notes/01_model.md)."""
    loss, s_ref = np.asarray(loss, dtype=np.float64), np.asarray(s_ref, dtype=np.float64)
    return (loss - 1.0 + s_ref) / s_ref


def _sqrtm_psd(c):
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(feat_a, feat_b) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (m_a, D) and (m_b, D), float64.

    Uses the symmetric form Tr(C_a + C_b − 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2}), computed by eigendecompositions
    so a rank-deficient covariance (fewer samples than features) stays finite. NaN if a set has < 2 points.
    """
    a = np.asarray(feat_a, dtype=np.float64)
    b = np.asarray(feat_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature arrays must be (m, D) with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    sa = _sqrtm_psd(ca)
    cross = _sqrtm_psd(sa @ cb @ sa)
    return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca) + np.trace(cb) - 2.0 * np.trace(cross))


class Classifier(eqx.Module):
    """MLP d → hidden → features → 10 (GELU); ``features(x)`` is the Fréchet-distance embedding."""

    layers: tuple[eqx.nn.Linear, eqx.nn.Linear, eqx.nn.Linear]

    def __init__(self, key, d: int, hidden: int = 128, features: int = 32, num_classes: int = 10):
        k1, k2, k3 = jax.random.split(key, 3)
        f32 = jnp.float32  # float32 weights even when jax_enable_x64 is on
        self.layers = (eqx.nn.Linear(d, hidden, key=k1, dtype=f32), eqx.nn.Linear(hidden, features, key=k2, dtype=f32),
                       eqx.nn.Linear(features, num_classes, key=k3, dtype=jnp.float32))

    def features(self, x):
        return jax.nn.gelu(self.layers[1](jax.nn.gelu(self.layers[0](x.reshape(-1)))))

    def __call__(self, x):
        return self.layers[2](self.features(x))


def train_classifier(images, labels, test_images, test_labels, *, epochs: int = 4, batch: int = 256,
                     lr: float = 2e-3, seed: int = 0):
    """Train :class:`Classifier` on (n, H, W) float images in [−1, 1]; returns (model, test accuracy)."""
    x = jnp.asarray(images, dtype=jnp.float32).reshape(len(images), -1)
    y = jnp.asarray(labels, dtype=jnp.int32)
    key = jax.random.key(seed)
    key, sub = jax.random.split(key)
    model = eqx.filter_jit(Classifier)(sub, x.shape[1])  # one compile instead of many eager initialiser ops
    opt = optax.adam(lr)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state, xb, yb):
        def loss(m):
            logits = jax.vmap(m)(xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        g = eqx.filter_grad(loss)(model)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes a float with an int32 step count
            upd, state = opt.update(g, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, upd), state

    batch = min(batch, len(x))
    nb = len(x) // batch
    for _ in range(epochs):
        key, sub = jax.random.split(key)
        perm = jax.random.permutation(sub, len(x))[: nb * batch].reshape(nb, batch)
        for i in range(nb):
            model, state = step(model, state, x[perm[i]], y[perm[i]])
    pred = np.asarray(jnp.argmax(jax.jit(jax.vmap(model))(
        jnp.asarray(test_images, jnp.float32).reshape(len(test_images), -1)), axis=-1))
    return model, float(np.mean(pred == np.asarray(test_labels)))


def load_or_train_classifier(cache: Path, d: int, train_fn):
    """Load the classifier cached at ``cache`` (+ ``.json`` metadata) or train it with ``train_fn()`` and cache
    it atomically. The cache is keyed by the input dimension ``d``; a mismatch retrains."""
    cache = Path(cache)
    meta_path = cache.with_suffix(cache.suffix + ".json")
    if cache.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("d") == d:
            skeleton = eqx.filter_eval_shape(Classifier, jax.random.key(0), d)
            with open(cache, "rb") as fh:
                return eqx.tree_deserialise_leaves(fh, skeleton), meta
    model, acc = train_fn()
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, model)
    atomic_write_bytes(cache, buf.getvalue())
    meta = {"d": d, "test_accuracy": acc}
    atomic_write_bytes(meta_path, json.dumps(meta).encode())
    return model, meta


def measured_order(tau, classes) -> list[int] | None:
    """Classes (dataset labels) sorted by their measured times ``tau`` (K,), first first; None when unresolved:
    a NaN (reached before the first checkpoint), a tie between finite times, or more than one class never
    reaching the level (+inf)."""
    tau = np.asarray(tau, dtype=np.float64)
    fin = tau[np.isfinite(tau)]
    if np.any(np.isnan(tau)) or fin.size == 0 or len(np.unique(fin)) < fin.size or tau.size - fin.size > 1:
        return None
    return np.asarray(classes)[np.argsort(tau, kind="stable")].tolist()


def summarise(outdir) -> dict[str, Any]:
    """Per-class times from a results directory: τ_gen,c, τ_onset,c, τ_best,c (per loss time; arrays (K, n_t)),
    τ_mem,c (samples, (K,)), the measured orders (first first; None where unresolved: no crossing or a tie)
    and the predicted order."""
    arrays, attrs = load_result(Path(outdir) / "metrics.npz")
    from ..simulate.metrics import binomial_interval
    from ..theory.timescales import first_crossing, generalization_time, onset_time

    # memorised-fraction intervals from the counts (Clopper–Pearson, rfdiff.simulate.metrics.binomial_interval):
    # runs written before that switch stored percentile-bootstrap intervals, which collapse to [0, 0] when nothing
    # is memorised; recomputed here, old and new runs read alike (k = fraction × count memorised of count)
    count = arrays["mem_count"].astype(np.int64)
    seen = count > 0
    hits = np.rint(np.nan_to_num(arrays["mem_fraction"].astype(np.float64)) * count).astype(np.int64)
    lo, hi = np.full(count.shape, np.nan), np.full(count.shape, np.nan)
    lo[seen], hi[seen] = binomial_interval(hits[seen], count[seen])
    arrays = {**arrays, "mem_ci_low": lo, "mem_ci_high": hi}

    steps = arrays["step"].astype(np.float64)
    nt = arrays["eps_test"].shape[2]
    # curves as (class, time, checkpoint): the trailing axis is the clock, as rfdiff.theory.timescales expects
    eps_te = np.moveaxis(arrays["eps_test"].astype(np.float64), 0, -1)
    eps_tr = np.moveaxis(arrays["eps_train"].astype(np.float64), 0, -1)
    tau_gen = np.asarray(generalization_time(steps, eps_te))
    tau_onset = np.asarray(onset_time(steps, eps_tr))
    # memorised fraction rising to 1/2 = its negative falling to −1/2; no class sample yet (NaN) counts as 0
    mem = np.nan_to_num(arrays["mem_fraction"].astype(np.float64).T, nan=0.0)
    tau_mem = np.asarray(first_crossing(steps, -mem, np.full(mem.shape[0], -0.5)))
    # checkpoint of the best test error (reference §5.3 "also recorded"): after it, fitting the training set
    # costs test error; NaN when the minimum is at the last checkpoint (not yet turned)
    best = np.nanargmin(np.where(np.isfinite(arrays["eps_test"]), arrays["eps_test"], np.inf), axis=0)  # (K, n_t)
    tau_best = np.where(best < len(steps) - 1, steps[best], np.nan)
    classes = np.asarray(attrs["coords"]["class"])

    def order(tau):
        return measured_order(tau, classes)

    return {"classes": classes.tolist(), "times": attrs["coords"]["time"], "tau_gen": tau_gen,
            "tau_onset": tau_onset, "tau_mem": tau_mem, "tau_best": tau_best, "order_mem": order(tau_mem),
            "order_best": [order(tau_best[:, j]) for j in range(nt)],
            "order_gen": [order(tau_gen[:, j]) for j in range(nt)],
            "order_onset": [order(tau_onset[:, j]) for j in range(nt)],
            # the theory's orders recorded by training (rfdiff.unet.training.prediction); runs written before it
            # carry a retired heuristic instead, which is not passed on
            "predicted_order_gen": attrs.get("predicted_order_gen"),
            "predicted_order_mem": attrs.get("predicted_order_mem"),
            "rule": attrs["rule"] if "predicted_order_gen" in attrs else "not recorded", "stats": attrs["stats"],
            "arrays": arrays, "attrs": attrs}
