"""Measurement helpers shared by the benchmarks and the GPU protocol (``validation/gpu/protocol.py``).

* :func:`rf_step_flops` — FLOPs of one fresh-noise GD step of :mod:`rfdiff.simulate.train`, counted per matmul
  (an (a×b)·(b×c) product is 2abc); checked against XLA's own count of the step in
  ``tests/test_gpu_protocol.py``.
* :func:`matmul_rates` / :func:`matmul_rate` — the achieved rate of one large square matmul on the default
  device (the "peak" that a trainer's FLOP rate is divided by), per wall-clock and per CPU second. A benchmark
  calls it *alternately* with the timing it compares. Measured once, at another moment, a peak can read lower
  than a trainer timed later and give fractions above 100 %; on a shared CPU even alternation is not enough
  (the load changes within seconds), and the CPU-time rates (:func:`best_times`) are the fair comparison.
* :func:`peak_memory` — peak device bytes in use of this process (``jax`` ``memory_stats``), None where the
  backend keeps no statistics (CPU).

Example::

    >>> rf_step_flops(n=250, d=500, p=500, control_variate="simple")   # 10·ndp + 2dp at m = 1
    625500000
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["rf_step_flops", "matmul_rate", "matmul_rates", "peak_memory", "xla_flops", "best_time", "best_times",
           "median"]


def rf_step_flops(n: int, d: int, p: int, m: int = 1, control_variate: str = "linear") -> int:
    """FLOPs of one GD step of ``rfdiff.simulate._steps.grad_sampled`` on n points, m noise draws each.

    Matmuls only (elementwise work, the activation and the noise generation are O(n m (d + p)), a fraction
    O(1/d + 1/p) of the total). Per step, with h̄ = e^{-t} x₀W̃ᵀ, η = √Δ ξW̃ᵀ, φ = σ(h̄ + η):

    * "none":   h̄ (2ndp) + η (2nmdp) + φAᵀ (2nmdp) + Σ(φAᵀ + cξ)ᵀφ (2nmdp)           = 2ndp + 6nmdp
    * "simple": "none" + c(Σ_j ξ_j)ᵀφ̄ (2ndp)                                           = 4ndp + 6nmdp
    * "linear": h̄, η, φAᵀ, (φAᵀ)ᵀφ, ξᵀ·resid, δAᵀ, δAᵀ·φ̄, φ̄Aᵀ (2ndp), (φ̄Aᵀ)ᵀδ          = 4ndp + 14nmdp

    The update A − η̂G adds 2dp. Rows padded up to a multiple of ``chunk`` are extra work not counted here:
    choose ``chunk`` dividing n.
    """
    for name, v in (("n", n), ("d", d), ("p", p), ("m", m)):
        if int(v) < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    per = {"none": (2, 6), "simple": (4, 6), "linear": (4, 14)}
    if control_variate not in per:
        raise ValueError(f"control_variate must be one of {tuple(per)}, got {control_variate!r}")
    a, b = per[control_variate]
    n, d, p, m = int(n), int(d), int(p), int(m)
    return a * n * d * p + b * n * m * d * p + 2 * d * p


def best_times(fn, reps: int = 3) -> tuple[float, float]:
    """Shortest (wall time, CPU time) over ``reps`` calls of ``fn`` (which must block until its result is ready).

    CPU time is that of this process, all its threads together (``time.process_time``). On a CPU shared with
    other jobs, the CPU time of a compute-bound call barely depends on the load while its wall time does, so
    CPU-time rates of two computations compare fairly even when the load changes between them; on a GPU only
    wall time means anything.
    """
    if int(reps) < 1:
        raise ValueError(f"reps must be ≥ 1, got {reps}")
    walls, cpus = [], []
    for _ in range(reps):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def best_time(fn, reps: int = 3, clock: str = "wall") -> float:
    """Shortest time of ``reps`` calls of ``fn``; ``clock`` "wall" or "cpu" (see :func:`best_times`)."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    return best_times(fn, reps)[0 if clock == "wall" else 1]


_MATMULS: dict = {}


def matmul_rates(size: int = 4096, dtype=jnp.float32, reps: int = 3) -> tuple[float, float]:
    """FLOP/s of a jitted ``a @ b`` of two (size × size) ``dtype`` matrices (warm), per wall and per CPU second.

    Each is the best of ``reps`` products (:func:`best_times`). The inputs and the compiled product are kept
    between calls, so calling it between trainer timings costs only the products. Default precision (on GPUs
    with tensor cores XLA may use TF32 for float32; the trainer's matmuls run under the same setting, so the
    fraction compares like with like).
    """
    if int(size) < 1:
        raise ValueError(f"size must be positive, got {size}")
    key = (int(size), jnp.dtype(dtype).name)
    if key not in _MATMULS:
        ka, kb = jax.random.split(jax.random.key(0))
        a = jax.random.normal(ka, (size, size), dtype)
        b = jax.random.normal(kb, (size, size), dtype)
        f = jax.jit(lambda x, y: x @ y)
        f(a, b).block_until_ready()  # compile and warm up
        _MATMULS[key] = (f, a, b)
    f, a, b = _MATMULS[key]
    wall, cpu = best_times(lambda: f(a, b).block_until_ready(), reps)
    return 2.0 * size**3 / wall, 2.0 * size**3 / max(cpu, 1e-9)


def matmul_rate(size: int = 4096, dtype=jnp.float32, reps: int = 3) -> float:
    """Wall-clock FLOP/s of :func:`matmul_rates` (the peak a GPU rate is divided by)."""
    return matmul_rates(size, dtype, reps)[0]


def peak_memory() -> int | None:
    """Peak bytes in use on the default device since the process started, or None (backend keeps none)."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats or "peak_bytes_in_use" not in stats else int(stats["peak_bytes_in_use"])


def xla_flops(jitted, *args) -> float:
    """XLA's FLOP count of ``jitted`` (a ``jax.jit``/``eqx.filter_jit`` function) for ``args``.

    Read from the lowered (not yet optimised) computation: no compilation, so it is cheap also for a network
    whose compile takes minutes. Fusion does not change the arithmetic of dots and convolutions, which dominate.
    """
    lowered = jitted.lower(*args)
    lowered = getattr(lowered, "lowered", lowered)  # equinox wraps jax's Lowered
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    if not cost or "flops" not in cost:
        raise RuntimeError("this backend reports no FLOP count (cost_analysis has no 'flops')")
    return float(cost["flops"])


def median(xs) -> float:
    """Median of a sequence of timings or rates, as a float."""
    return float(np.median(np.asarray(xs, dtype=np.float64)))
