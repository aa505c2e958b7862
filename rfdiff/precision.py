"""Numerical policy: theory in float64, scoped (the caller's global JAX config is left alone).

One mechanism, two spellings: :func:`float64` decorates a function, :func:`x64` is the same switch as a
``with`` block (for code that traces a function built elsewhere, e.g. a phase-diagram point function under
``jit(vmap(...))``). Simulations use neither, so they may run in float32 or bf16 on a GPU.

Example::

    >>> import jax.numpy as jnp
    >>> with x64():
    ...     jnp.ones(2).dtype
    dtype('float64')
"""

from __future__ import annotations

import functools

import jax

__all__ = ["float64", "x64"]


def x64():
    """Context manager: ``jax_enable_x64`` on inside the block, restored after it."""
    return jax.enable_x64(True)


def float64(fn):
    """Run ``fn`` with ``jax_enable_x64`` switched on (a context, not a global flip).

    Theory functions (quadrature, spectrum, learning curves) are decorated with this so their results are
    float64 whatever the caller's setting; simulations are not, so they may run in float32 on a GPU.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with x64():
            return fn(*args, **kwargs)

    return wrapper
