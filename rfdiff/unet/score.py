"""A trained ε-prediction U-Net as a score function of the project's OU time, and a classifier posterior.

DDPM ↔ OU map (theory_notes/07_unet.md §2): the schedule step k noises as x_k = √ᾱ_k x_0 + √(1 − ᾱ_k) ε, which
is the OU forward process x_t = e^{−t} x_0 + √Δ_t ξ at t_k = −½ log ᾱ_k (Δ_t = 1 − e^{−2t} = 1 − ᾱ_k). The network
is trained to predict ε, and the minimiser of E||ε̂ − ε||² is ε̂ = −√Δ_t ∇ log p_t, hence the score

    s(x, t) = −ε̂(x, k(t)) / √Δ_t ,      k(t) = the (continuous) schedule step with −½ log ᾱ = t,

k(t) interpolated linearly between the schedule's OU times (the network's time input is s = k/T, continuous).
With this, :func:`rfdiff.simulate.sampling.backward_sde` samples the U-Net in OU time, and the speciation
measurements of :mod:`rfdiff.simulate.speciation` take it as any other ``score_fn``. States are flattened
images, x (n, H·W).

Example (an untrained network; shapes only)::

    >>> from rfdiff.unet.model import init_unet, make_schedule
    >>> sc = unet_score_fn(init_unet(0, (4, 8), 8), make_schedule("cosine", 100), 8)
    >>> sc(jnp.zeros((3, 64)), jnp.asarray(0.5)).shape
    (3, 64)
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .model import ou_time

__all__ = ["UNetScore", "unet_score_fn", "ClassifierPosterior", "classifier_posterior"]


class UNetScore(eqx.Module):
    """``score(x (n, d), t) = −ε̂(x, k(t))/√Δ_t`` for an ε-network ``net`` (unbatched (1, H, W), s = k/T).

    Any callable module ``net(x (1, H, W), s)`` works (a :class:`rfdiff.unet.model.UNet`, or a test network).
    ``ou_t`` (T + 1,) are the OU times of the schedule steps k = 0..T (increasing). Build with
    :func:`unet_score_fn`.
    """

    net: eqx.Module
    ou_t: jax.Array
    image_size: int = eqx.field(static=True)

    def eps(self, x: jax.Array, t: jax.Array) -> jax.Array:
        """ε̂ (n, d) at OU time t: the network at the continuous schedule step k(t)."""
        num = self.ou_t.shape[0] - 1
        t = jnp.asarray(t, jnp.float32)
        k = jnp.interp(t, self.ou_t, jnp.arange(num + 1, dtype=jnp.float32))
        s = jnp.full((x.shape[0],), k / num, jnp.float32)
        h = self.image_size
        out = jax.vmap(self.net)(x.reshape(x.shape[0], 1, h, h).astype(jnp.float32), s)
        return out.reshape(x.shape).astype(x.dtype)

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        t = jnp.asarray(t, x.dtype)
        return -self.eps(x, t) / jnp.sqrt(-jnp.expm1(-2.0 * t))


def unet_score_fn(net, alpha_bar, image_size: int) -> UNetScore:
    """The OU-time score of an ε-network trained with the schedule ``alpha_bar`` (ᾱ_k, k = 0..T) on
    ``image_size`` × ``image_size`` images (e.g. ``UNetConfig.image_size``)."""
    ab = np.asarray(alpha_bar, np.float64)
    if ab.ndim != 1 or ab.size < 3 or ab[0] != 1.0 or np.any(np.diff(ab) >= 0) or ab[-1] <= 0:
        raise ValueError("alpha_bar must be a schedule ᾱ_0 = 1 > ᾱ_1 > … > ᾱ_T > 0 (rfdiff.unet.model.make_schedule)")
    if int(image_size) != image_size or image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    return UNetScore(net, jnp.asarray(ou_time(ab), jnp.float32), int(image_size))


class ClassifierPosterior(eqx.Module):
    """``observe(x (n, d), t) -> log P(c | x)`` (n, K): a classifier's softmax restricted to ``classes``.

    With ``score`` set, the classifier sees the Tweedie denoised image x̂_0 = e^t (x + Δ_t s(x, t)) (the
    posterior mean of x_0), so the posterior is usable at t > 0; at t → 0, x̂_0 → x. The decision of a clean
    sample (cloning) is the argmax at the last grid time.
    """

    clf: eqx.Module
    classes: tuple[int, ...] = eqx.field(static=True)
    score: eqx.Module | None = None

    def __call__(self, x: jax.Array, t: jax.Array) -> jax.Array:
        if self.score is not None:
            t = jnp.asarray(t, x.dtype)
            x = jnp.exp(t) * (x - jnp.expm1(-2.0 * t) * self.score(x, t))
        logits = jax.vmap(self.clf)(x.astype(jnp.float32))[:, jnp.asarray(self.classes)]
        return jax.nn.log_softmax(logits, axis=-1).astype(x.dtype)


def classifier_posterior(clf, classes: Sequence[int], score: UNetScore | None = None) -> ClassifierPosterior:
    """Class posterior over ``classes`` (dataset labels, e.g. (8, 7)) from a classifier ``clf(x (d,)) -> logits``."""
    classes = tuple(int(c) for c in classes)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be at least 2 distinct labels, got {classes}")
    return ClassifierPosterior(clf, classes, score)
