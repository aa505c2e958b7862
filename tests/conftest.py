"""Test fixtures. The JAX settings (float64, strict promotion, virtual devices) are in the root conftest.py."""

import jax
import pytest


@pytest.fixture
def key():
    return jax.random.key(0)
