"""U-Net costs as ratios: float32 vs bfloat16 training step; DDIM as a Python loop over one jitted step (the
library's choice) vs the same sampler as one jitted ``lax.scan`` (baseline, defined here).

Runs the variants side by side in one process, interleaved (A B A B ...) so machine load affects both alike,
and writes the medians and ratios to benchmarks/results/unet.md. ``--size`` picks the network/image size.

    python benchmarks/bench_unet.py [--reps 20] [--size cpu|gpu]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from rfdiff.unet.model import ddim_sample, make_schedule
from rfdiff.unet.training import UNetConfig, init_state, train_step

SIZES = {"cpu": dict(downsample=2, channels=(16, 32), batch_size=32, sample_steps=20, n_samples=200),
         "gpu": dict(downsample=1, channels=(32, 64, 128), batch_size=128, sample_steps=50, n_samples=500)}


@eqx.filter_jit
def _ddim_scan(model, noise, alpha_bar, num_steps: int, sample_steps: int):
    """Baseline: the whole DDIM trajectory inside one jitted lax.scan (same arithmetic as ddim_sample)."""
    ks = np.unique(np.round(np.linspace(num_steps, 0, sample_steps + 1)).astype(np.int64))[::-1]

    def body(x, kk):
        k, kp = kk[0], kk[1]
        s = jnp.full((x.shape[0],), k, dtype=jnp.float32) / num_steps
        eps = jax.vmap(model)(x, s)
        x0 = jnp.clip((x - jnp.sqrt(1.0 - alpha_bar[k]) * eps) / jnp.sqrt(alpha_bar[k]), -1.0, 1.0)
        return jnp.sqrt(alpha_bar[kp]) * x0 + jnp.sqrt(1.0 - alpha_bar[kp]) * eps, None

    return jax.lax.scan(body, noise, jnp.asarray(np.stack([ks[:-1], ks[1:]], axis=1)))[0]


def _timed(fn, *args):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--size", choices=sorted(SIZES), default="cpu")
    args = ap.parse_args(argv)
    cfgs = {dt: UNetConfig(**SIZES[args.size], dtype=dt) for dt in ("float32", "bfloat16")}
    cfg = cfgs["float32"]
    ab = jnp.asarray(make_schedule(cfg.schedule, cfg.num_steps), jnp.float32)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (80, 1, cfg.image_size, cfg.image_size)), jnp.float32)
    model, opt_state, key, _ = init_state(cfg)
    noise = jax.random.normal(jax.random.key(1), (cfg.n_samples, 1, cfg.image_size, cfg.image_size), jnp.float32)

    def step(c):
        return train_step(model, opt_state, key, x, ab, c)[3]

    def ddim(model, noise, ab, cfg):  # the library's sampler exactly as the trainer's evaluation calls it
        return ddim_sample(model, noise, ab, cfg.num_steps, cfg.sample_steps, True, jnp.float32)

    for c in cfgs.values():  # compile outside the timing
        step(c).block_until_ready()
    ddim(model, noise, ab, cfg).block_until_ready()
    ref = _ddim_scan(model, noise, ab, cfg.num_steps, cfg.sample_steps)
    gap = float(jnp.max(jnp.abs(ref - ddim(model, noise, ab, cfg))))
    times = {"step float32": [], "step bfloat16": [], "DDIM batch": [], "DDIM scan": []}
    for _ in range(args.reps):
        times["step float32"].append(_timed(step, cfgs["float32"]))
        times["step bfloat16"].append(_timed(step, cfgs["bfloat16"]))
    for _ in range(max(3, args.reps // 5)):
        times["DDIM batch"].append(_timed(ddim, model, noise, ab, cfg))
        times["DDIM scan"].append(_timed(_ddim_scan, model, noise, ab, cfg.num_steps, cfg.sample_steps))
    med = {k: float(np.median(v)) for k, v in times.items()}
    lines = [
        "# U-Net benchmark (`benchmarks/bench_unet.py`)",
        "",
        f"Device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {platform.machine()}; "
        f"jax {jax.__version__}; size '{args.size}': {SIZES[args.size]}; {args.reps} interleaved repetitions, medians. Load from other "
        "jobs affects absolute times; the ratios are the result.",
        "",
        "| quantity | median [ms] | ratio |",
        "|---|---|---|",
        f"| train step, float32 (baseline) | {1e3 * med['step float32']:.1f} | 1.00 |",
        f"| train step, bfloat16 compute | {1e3 * med['step bfloat16']:.1f} | "
        f"{med['step bfloat16'] / med['step float32']:.2f} |",
        "",
        "| DDIM sampler | median [ms] | ratio |",
        "|---|---|---|",
        f"| one jitted lax.scan (baseline), {cfg.n_samples} samples × {cfg.sample_steps} steps | "
        f"{1e3 * med['DDIM scan']:.1f} | 1.00 |",
        f"| Python loop over one jitted step (rfdiff) | {1e3 * med['DDIM batch']:.1f} | "
        f"{med['DDIM batch'] / med['DDIM scan']:.2f} |",
        "",
        f"Max |difference| between the two samplers' outputs: {gap:.1e}.",
    ]
    out = Path(__file__).resolve().parent / "results" / "unet.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
