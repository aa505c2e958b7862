"""The float64 policy is one mechanism (rfdiff.precision): no module switches precision by itself, and the
switch is scoped (the caller's setting survives)."""

from __future__ import annotations

import ast
from pathlib import Path

import jax
import pytest
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


def _low_precision(out) -> list[str]:
    """dtypes of the floating leaves of ``out`` narrower than float64 / complex128."""
    import numpy as np

    bad = set()
    for leaf in jax.tree_util.tree_leaves(out):
        dt = np.dtype(getattr(leaf, "dtype", np.float64))
        if (dt.kind == "f" and dt.itemsize < 8) or (dt.kind == "c" and dt.itemsize < 16):
            bad.add(str(dt))
    return sorted(bad)


@pytest.mark.slow
def test_public_theory_and_finite_d_entry_points_return_float64_without_x64():
    """Every public theory and finite-d reference entry point, called by a process that has not switched x64 on
    (the CLI, a user's script), returns float64/complex128 arrays. The tests themselves run with x64 on, which
    hid two such paths (the time definitions, `phase_diagram`) and `point_arrays`, found by this probe."""
    import numpy as np

    from rfdiff import GaussianMixture, RFModel
    from rfdiff.finite.closed_form import finite_curves
    from rfdiff.finite.features import population_moments, realise, train_moments
    from rfdiff.theory import phase, reweight, spectrum, speciation
    from rfdiff.theory.curves import theory_curves, theory_spectral_masses
    from rfdiff.theory.window import disparity_window

    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0])
    strong = mix.with_strong_centroids([1.0, 1.0])
    model = RFModel(2.0, 1.0, 0.01, "tanh")
    taus = np.logspace(-3, 6, 40)

    def finite():
        prob = realise(jax.random.key(0), mix, model, 40)
        fc = finite_curves(prob, train_moments(prob), population_moments(prob))
        return prob, fc(taus), fc.asymptote(), fc.spectral_masses()

    calls = {
        "theory_curves (flow)": lambda: theory_curves(mix, model, taus),
        "theory_curves (ridge)": lambda: theory_curves(mix, model, taus, clock="ridge"),
        "theory_spectral_masses": lambda: theory_spectral_masses(mix, model),
        "spectral_density": lambda: spectrum.spectral_density(mix, model, np.geomspace(1e-3, 30, 100)),
        "resolvent": lambda: spectrum.resolvent(np.array([-0.1, 1 + 0.1j]), mix, model),
        "outliers": lambda: spectrum.outliers(strong, model, 200),
        "disparity_window": lambda: disparity_window(mix, model, taus),
        "class_times": lambda: reweight.class_times(mix, model, taus=taus),
        "speciation_times": lambda: speciation.speciation_times(strong, 100),
        "posterior_statistic": lambda: speciation.posterior_statistic(strong, np.array([0.1, 1.0]), 100),
        "point_arrays": lambda: phase.point_arrays(mix, model, {"sigma_ratio": 1.5, "pi1": 0.2}),
        "timescale_fn": lambda: phase.timescale_fn(mix, model, taus=taus)({"sigma_ratio": 1.5}),
        "finite-d closed form": finite,
    }
    with jax.enable_x64(False):
        assert jnp.ones(1).dtype == jnp.float32  # the setting under test
        low = {name: bad for name, f in calls.items() if (bad := _low_precision(f()))}
    assert not low, f"float32 results without x64: {low}"
