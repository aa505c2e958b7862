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


def test_numpy_facing_theory_functions_return_float64_whatever_the_callers_setting():
    """The time definitions are fed float64 curves by callers that need not have x64 on (the CLI, a user's
    script): under the default float32 setting they silently returned float32 (``rfdiff timescales`` and
    ``rfdiff window`` wrote float32 times). Each value is compared with its closed form, which float32 misses
    by ~1e-8 relative."""
    import numpy as np

    from rfdiff.theory import timescales as ts
    from rfdiff.theory.window import resolve_times, window_from_times

    taus = np.logspace(-2, 3, 400)
    rate = np.array([1.0, 1.0 / 3.0])[:, None]
    eps_te = np.exp(-rate * taus)  # (2, T): min ε^te ≈ 0, half descent at τ = ln 2 / rate (log-linear grid error)
    eps_tr = eps_te - 2.0 * (1.0 - np.exp(-rate * taus / 100.0))
    with jax.enable_x64(False):
        out = {
            "first_crossing": ts.first_crossing(taus, eps_te, np.array([0.5, 0.5])),
            "generalization_time": ts.generalization_time(taus, eps_te),
            "memorization_time": ts.memorization_time(taus, eps_tr),
            "onset_time": ts.onset_time(taus, eps_tr),
            "curve_timescales": ts.curve_timescales(taus, eps_te, eps_tr).tau_mem,
            "spectral_times": ts.spectral_times(np.array([3.0]), np.array([1.0])).tau_gen_spec,
            "window_from_times": window_from_times(np.array([0.1, 0.2]), np.array([7.0, 9.0])).width_decades,
            "resolve_times": resolve_times(np.array([0.1, 0.2]), np.array([7.0, 9.0]), np.array([3.0, 4.0]),
                                           np.array([-1.0, -2.0]))[1],
        }
    assert {k: str(np.asarray(v).dtype) for k, v in out.items()} == {k: "float64" for k in out}
    # one atom λ = 3 of mass 1: C(τ) = min(6τ, 1) = ½ at τ = 1/12 exactly (1/12 is not a float32 number)
    assert abs(float(out["spectral_times"]) - 1.0 / 12.0) < 1e-16
    with x64():
        ref = ts.generalization_time(taus, eps_te)
    np.testing.assert_array_equal(out["generalization_time"], ref)
