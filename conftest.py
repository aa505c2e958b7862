"""Pytest configuration for the whole repository (``tests/`` and the doctests of ``rfdiff/``).

The tests and the docstring examples run under the same JAX settings: float64 enabled, strict dtype promotion
and rank promotion as an error (so an implicit upcast or broadcast in the library fails loudly), and four
virtual CPU devices for the sharding code. XLA_FLAGS must be set before JAX initialises its backend, so it is
set at import of this file, which pytest loads before any test module.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")
# CLI subprocesses of the tests do not write the user's compilation cache (tests/cli/test_compile_cache.py
# sets its own)
os.environ.setdefault("RFDIFF_JAX_CACHE", "0")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Without this the full suite crashed twice with a segfault inside XLA:CPU compilation at the same test (86 %),
    a test whose module passes alone; with it the full run passes. The likely cause is accumulation: each loaded
    executable holds its own memory mappings (measured: 3.2 per tiny program, released by ``jax.clear_caches``),
    against the kernel's vm.max_map_count = 65530; with the release the suite's process stayed between 2 000 and
    11 000 mappings. Modules share no compiled state that a test relies on.
    """
    yield
    jax.clear_caches()
