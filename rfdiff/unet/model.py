"""Small time-conditioned U-Net, DDPM noise schedules, ε-prediction loss and the DDIM sampler.

Conventions (theory_notes/07_unet.md §2): a discrete DDPM schedule ``ᾱ_k``, k = 1..T, noises an image as
``x_k = √ᾱ_k x_0 + √(1 − ᾱ_k) ε``; this is the project's forward process ``x_t = e^{−t} x_0 + √Δ_t ξ`` at
OU time ``t_k = −½ log ᾱ_k`` (then Δ_t = 1 − ᾱ_k). The network predicts ε and the loss is the per-pixel
mean ``||ε̂(x_k, k) − ε||² / d`` — exactly the project's L = (1/d) E||√Δ s(x_t) + ξ||² with s = −ε̂/√Δ.

Schedules: ``"linear"`` (Ho et al. 2020: β_k linear from 1e-4 to 0.02, T = 1000) and ``"cosine"`` (Nichol &
Dhariwal 2021: ᾱ(s) = cos²((s + 0.008)/1.008 · π/2)/cos²(0.008/1.008 · π/2), β clipped at 0.999).
Sampler: DDIM with η = 0 (Song et al. 2021, eq. 12), deterministic given the initial noise.

Example::

    >>> import jax
    >>> from rfdiff.unet.model import UNet, make_schedule
    >>> net = UNet(jax.random.key(0), channels=(4, 8), image_size=8)
    >>> sched = make_schedule("cosine", 100)
    >>> net(jax.numpy.zeros((1, 8, 8), "float32"), jax.numpy.asarray(0.5, "float32")).shape
    (1, 8, 8)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["UNet", "init_unet", "make_schedule", "eps_loss", "ddim_sample", "ou_time"]


def _groups(c: int) -> int:
    # GroupNorm needs groups | channels; 8 groups when possible, else the largest divisor ≤ 8.
    return max(g for g in range(1, min(8, c) + 1) if c % g == 0)


class _ResBlock(eqx.Module):
    norm1: eqx.nn.GroupNorm
    conv1: eqx.nn.Conv2d
    temb: eqx.nn.Linear
    norm2: eqx.nn.GroupNorm
    conv2: eqx.nn.Conv2d
    skip: eqx.nn.Conv2d | None

    def __init__(self, cin: int, cout: int, tdim: int, key):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = eqx.nn.GroupNorm(_groups(cin), cin, dtype=jnp.float32)
        self.conv1 = eqx.nn.Conv2d(cin, cout, 3, padding=1, key=k1, dtype=jnp.float32)
        self.temb = eqx.nn.Linear(tdim, cout, key=k2, dtype=jnp.float32)
        self.norm2 = eqx.nn.GroupNorm(_groups(cout), cout, dtype=jnp.float32)
        self.conv2 = eqx.nn.Conv2d(cout, cout, 3, padding=1, key=k3, dtype=jnp.float32)
        self.skip = eqx.nn.Conv2d(cin, cout, 1, key=k4, dtype=jnp.float32) if cin != cout else None

    def __call__(self, x, temb):
        h = self.conv1(jax.nn.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, None, None]
        h = self.conv2(jax.nn.silu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class UNet(eqx.Module):
    """ε-prediction U-Net for single-channel ``image_size × image_size`` images, unbatched ``(1, H, W)``.

    ``channels[i]`` is the width at resolution ``image_size / 2^i``; one residual block per level on the way
    down and up (skip connections by concatenation), nearest-neighbour upsampling, sinusoidal time embedding of
    the continuous time ``s = k/T ∈ (0, 1]``. ``image_size`` must be divisible by ``2^(len(channels) − 1)``.
    """

    conv_in: eqx.nn.Conv2d
    t_mlp: tuple[eqx.nn.Linear, eqx.nn.Linear]
    down: tuple[_ResBlock, ...]
    downsample: tuple[eqx.nn.Conv2d, ...]
    mid: _ResBlock
    up: tuple[_ResBlock, ...]
    upconv: tuple[eqx.nn.Conv2d, ...]
    norm_out: eqx.nn.GroupNorm
    conv_out: eqx.nn.Conv2d
    tdim: int = eqx.field(static=True)

    def __init__(self, key, channels: Sequence[int] = (32, 64, 128), image_size: int = 28, tdim: int | None = None):
        channels = tuple(int(c) for c in channels)
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be positive integers, got {channels}")
        if image_size % (2 ** (len(channels) - 1)):
            raise ValueError(f"image_size={image_size} is not divisible by 2^(len(channels)-1)="
                             f"{2 ** (len(channels) - 1)}")
        tdim = int(tdim or 4 * channels[0])
        keys = iter(jax.random.split(key, 4 * len(channels) + 6))
        self.tdim = tdim
        self.conv_in = eqx.nn.Conv2d(1, channels[0], 3, padding=1, key=next(keys), dtype=jnp.float32)
        self.t_mlp = (eqx.nn.Linear(channels[0], tdim, key=next(keys), dtype=jnp.float32),
                      eqx.nn.Linear(tdim, tdim, key=next(keys), dtype=jnp.float32))
        down, ds = [], []
        cprev = channels[0]
        for i, c in enumerate(channels):
            down.append(_ResBlock(cprev, c, tdim, next(keys)))
            if i < len(channels) - 1:
                ds.append(eqx.nn.Conv2d(c, c, 3, stride=2, padding=1, key=next(keys), dtype=jnp.float32))
            cprev = c
        self.down, self.downsample = tuple(down), tuple(ds)
        self.mid = _ResBlock(cprev, cprev, tdim, next(keys))
        up, uc = [], []
        for i in reversed(range(len(channels))):
            c = channels[i]
            up.append(_ResBlock(cprev + c, c, tdim, next(keys)))
            if i > 0:
                uc.append(eqx.nn.Conv2d(c, channels[i - 1], 3, padding=1, key=next(keys), dtype=jnp.float32))
            cprev = c if i == 0 else channels[i - 1]
        self.up, self.upconv = tuple(up), tuple(uc)
        self.norm_out = eqx.nn.GroupNorm(_groups(channels[0]), channels[0], dtype=jnp.float32)
        self.conv_out = eqx.nn.Conv2d(channels[0], 1, 3, padding=1, key=next(keys), dtype=jnp.float32)

    def _embed(self, s):
        half = self.conv_in.out_channels // 2
        freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
        arg = (1000.0 * s).astype(jnp.float32) * freqs
        emb = jnp.concatenate([jnp.sin(arg), jnp.cos(arg)])
        emb = jnp.pad(emb, (0, self.conv_in.out_channels - 2 * half))
        return self.t_mlp[1](jax.nn.silu(self.t_mlp[0](emb.astype(self.t_mlp[0].weight.dtype))))

    def __call__(self, x, s):
        """x (1, H, W), s scalar in (0, 1] → ε̂ (1, H, W)."""
        temb = self._embed(s)
        h = self.conv_in(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, temb)
        for j, block in enumerate(self.up):
            h = block(jnp.concatenate([h, skips.pop()], axis=0), temb)
            if j < len(self.upconv):
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
                h = self.upconv[j](h)
        return self.conv_out(jax.nn.silu(self.norm_out(h)))


def init_unet(seed: int, channels: Sequence[int] = (32, 64, 128), image_size: int = 28) -> UNet:
    """A :class:`UNet` with weights drawn on the host by numpy (``default_rng(seed)``).

    Same distributions as equinox's defaults (Linear/Conv2d weight and bias ~ U(±1/√fan_in), GroupNorm
    scale 1 and shift 0). The structure comes from ``eqx.filter_eval_shape`` (tracing only): drawing the
    weights with ``jax.random`` would compile one threefry kernel per weight shape, tens of seconds on a
    loaded CPU, for a one-off initialisation.
    """
    skeleton = eqx.filter_eval_shape(UNet, jax.random.key(0), channels, image_size)
    rng = np.random.default_rng(seed)

    def draw(layer):
        if isinstance(layer, eqx.nn.GroupNorm):
            return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                               (jnp.ones(layer.weight.shape, jnp.float32), jnp.zeros(layer.bias.shape, jnp.float32)))
        if isinstance(layer, eqx.nn.Conv2d):
            fan_in = layer.in_channels // layer.groups * int(np.prod(layer.kernel_size))
        elif isinstance(layer, eqx.nn.Linear):
            fan_in = layer.in_features
        else:
            return layer
        lim = 1.0 / math.sqrt(fan_in)
        return eqx.tree_at(lambda m: (m.weight, m.bias), layer,
                           tuple(jnp.asarray(rng.uniform(-lim, lim, a.shape), jnp.float32)
                                 for a in (layer.weight, layer.bias)))

    return jax.tree_util.tree_map(draw, skeleton,
                                  is_leaf=lambda x: isinstance(x, (eqx.nn.Conv2d, eqx.nn.Linear, eqx.nn.GroupNorm)))


def make_schedule(kind: str = "cosine", num_steps: int = 1000) -> np.ndarray:
    """ᾱ_k for k = 0..T (float64, ᾱ_0 = 1, strictly decreasing)."""
    if num_steps < 2:
        raise ValueError(f"num_steps must be ≥ 2, got {num_steps}")
    k = np.arange(num_steps + 1, dtype=np.float64)
    if kind == "linear":
        # Ho et al. set β for T = 1000; rescale to keep the same total noise for other T.
        scale = 1000.0 / num_steps
        betas = np.linspace(scale * 1e-4, scale * 0.02, num_steps)
    elif kind == "cosine":
        f = np.cos((k / num_steps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)
    else:
        raise ValueError(f"schedule must be 'linear' or 'cosine', got {kind!r}")
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def ou_time(alpha_bar) -> np.ndarray:
    """OU time t = −½ log ᾱ of the project's forward process (theory_notes/01_model.md)."""
    return -0.5 * np.log(np.asarray(alpha_bar, dtype=np.float64))


def _cast(tree, dtype):
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def eps_loss(model: UNet, x0, k, eps, alpha_bar, num_steps: int, dtype=jnp.float32):
    """Per-example ε-prediction loss ``||ε̂ − ε||²/d`` for x0 (B, 1, H, W), k (B,) int, eps like x0 → (B,).

    ``dtype`` is the compute dtype of the forward pass (e.g. bfloat16); the loss is reduced in float32.
    """
    a = alpha_bar[k].astype(jnp.float32)[:, None, None, None]
    xk = jnp.sqrt(a) * x0 + jnp.sqrt(1.0 - a) * eps
    s = k.astype(jnp.float32) / num_steps
    net = _cast(model, dtype) if dtype != jnp.float32 else model
    pred = jax.vmap(net)(xk.astype(dtype), s.astype(dtype)).astype(jnp.float32)
    return jnp.mean((pred - eps) ** 2, axis=(1, 2, 3))


@eqx.filter_jit
def _ddim_step(net, x, k, kp, ab, num_steps: int, clip: bool, dtype):
    s = jnp.full((x.shape[0],), k, dtype=jnp.float32) / num_steps
    eps = jax.vmap(net)(x.astype(dtype), s.astype(dtype)).astype(jnp.float32)
    x0 = (x - jnp.sqrt(1.0 - ab[k]) * eps) / jnp.sqrt(ab[k])
    x0 = jnp.clip(x0, -1.0, 1.0) if clip else x0
    return jnp.sqrt(ab[kp]) * x0 + jnp.sqrt(1.0 - ab[kp]) * eps


def ddim_sample(model: UNet, noise, alpha_bar, num_steps: int, sample_steps: int = 50, clip: bool = True,
                dtype=jnp.float32):
    """Deterministic DDIM (η = 0) from ``noise`` (B, 1, H, W) with ``sample_steps`` evenly spaced steps.

    x̂_0 = (x_k − √(1−ᾱ_k) ε̂)/√ᾱ_k (clipped to [−1, 1] when ``clip``), x_{k'} = √ᾱ_{k'} x̂_0 + √(1−ᾱ_{k'}) ε̂.
    The last step returns x̂_0 at k' = 0. The steps run as a Python loop over one compiled step (k, k' traced):
    on CPU, XLA runs the convolutions of a ``lax.scan`` body about an order of magnitude slower than the same
    step jitted alone (measured: benchmarks/results/unet.md).
    """
    if not 1 <= sample_steps <= num_steps:
        raise ValueError(f"sample_steps must be in [1, {num_steps}], got {sample_steps}")
    ks = np.unique(np.round(np.linspace(num_steps, 0, sample_steps + 1)).astype(np.int64))[::-1]
    net = _cast(model, dtype) if dtype != jnp.float32 else model
    ab = jnp.asarray(alpha_bar, dtype=jnp.float32)
    x = jnp.asarray(noise, dtype=jnp.float32)
    for k, kp in zip(ks[:-1], ks[1:]):
        # k, k' as arrays, so they are traced and the step compiles once
        x = _ddim_step(net, x, jnp.asarray(k, jnp.int32), jnp.asarray(kp, jnp.int32), ab, num_steps, clip, dtype)
    return x
