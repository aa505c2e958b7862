"""The float64 policy is one mechanism (rfdiff.precision): no module switches precision by itself, and the
switch is scoped (the caller's setting survives)."""

from __future__ import annotations

import ast
from pathlib import Path

import jax
import jax.numpy as jnp

from rfdiff.precision import float64, x64

ROOT = Path(__file__).resolve().parents[1] / "rfdiff"


def _switches(path: Path) -> list[int]:
    """Lines calling jax.enable_x64 or config.update('jax_enable_x64', ...)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name == "enable_x64":
                bad.append(node.lineno)
            if name == "update" and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value == "jax_enable_x64":
                bad.append(node.lineno)
    return bad


def test_no_module_switches_precision_outside_the_policy():
    offenders = {str(p.relative_to(ROOT)): lines for p in ROOT.rglob("*.py")
                 if p.name != "precision.py" and (lines := _switches(p))}
    assert not offenders, f"use rfdiff.precision.float64 / x64 instead: {offenders}"


def test_scoped_switch_leaves_the_callers_setting():
    @float64
    def f():
        return jnp.ones(2).dtype

    with jax.enable_x64(False):
        assert f() == jnp.float64
        with x64():
            assert jnp.zeros(1).dtype == jnp.float64
        assert jnp.zeros(1).dtype == jnp.float32  # restored
