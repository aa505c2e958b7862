"""Numerical policy: theory in float64, scoped (the caller's global JAX config is left alone)."""

from __future__ import annotations

import functools

import jax

__all__ = ["float64"]


def float64(fn):
    """Run ``fn`` with ``jax_enable_x64`` switched on (a context, not a global flip).

    Theory functions (quadrature, spectrum, learning curves) are decorated with this so their results are
    float64 whatever the caller's setting; simulations are not, so they may run in float32 on a GPU.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper
