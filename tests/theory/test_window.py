"""The stopping window: constructed times against hand values, vmap against a loop, symmetric classes, and
disparity_window / window_fn against theory_curves + curve_timescales computed directly."""

import jax
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.theory.curves import theory_curves
from rfdiff.theory.phase import default_taus
from rfdiff.theory.timescales import curve_timescales
from rfdiff.theory.window import disparity_window, resolve_times, window_fn, window_from_times

MODEL = RFModel(2.0, 1.0, 0.01, "tanh")
TAUS = default_taus(48)
INF, NAN = np.inf, np.nan


@pytest.mark.parametrize("gen, end, lo, hi, exists, first_mem, last_gen", [
    ([0.1, 0.3], [60.0, 20.0], 0.3, 20.0, True, 1, 1),  # window opened and closed by class 1
    ([0.1, 5.0], [2.0, 40.0], 5.0, 2.0, False, 0, 1),  # class 0 memorises before class 1 generalises
    ([1.0, 1.0], [10.0, 10.0], 1.0, 10.0, True, 0, 0),  # ties: lowest index
    ([2.0, 0.5, 1.0], [30.0, 8.0, INF], 2.0, 8.0, True, 1, 0),  # K = 3, class 2 never memorises
    ([2.0, 0.5, 9.0], [30.0, 8.0, INF], 9.0, 8.0, False, 1, 2),  # K = 3, disparity
    ([1.0, 2.0], [INF, INF], 2.0, INF, True, 0, 1),  # no class memorises: unbounded window
    ([1.0, 3.0], [3.0, 7.0], 3.0, 3.0, False, 0, 1),  # a single instant is not a window (strict <)
])
def test_window_from_constructed_times(gen, end, lo, hi, exists, first_mem, last_gen):
    w = window_from_times(np.array(gen), np.array(end))
    assert float(w.lo) == lo and float(w.hi) == hi and bool(w.exists) is exists
    assert int(w.first_memorising) == first_mem and int(w.last_generalising) == last_gen
    want = np.log10(hi) - np.log10(lo)
    assert float(w.width_decades) == pytest.approx(want, rel=1e-12) if np.isfinite(want) else \
        float(w.width_decades) == want
    assert (float(w.width_decades) > 0) is exists


def test_unresolved_time_propagates_nan_never_a_window():
    for gen, end in [([NAN, 1.0], [10.0, 10.0]), ([0.1, 1.0], [10.0, NAN])]:
        w = window_from_times(np.array(gen), np.array(end))
        assert np.isnan(float(w.lo)) or np.isnan(float(w.hi))
        assert np.isnan(float(w.width_decades)) and not bool(w.exists)


def test_window_from_times_vmap_equals_loop():
    rng = np.random.default_rng(0)
    gen = 10 ** rng.uniform(-2, 1, (50, 3))
    end = 10 ** rng.uniform(-0.5, 3, (50, 3))
    end[::7, 1] = INF  # a class that never memorises
    end[::11, 2] = NAN  # unresolved
    with jax.enable_x64(True):
        batched = jax.jit(jax.vmap(window_from_times))(gen, end)
        for i in range(gen.shape[0]):
            one = window_from_times(gen[i], end[i])
            for name, a, b in zip(one._fields, batched, one):
                # jit fuses log10(hi) − log10(lo) differently from eager: measured 1 ulp (1.7e-16 relative)
                np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-15, atol=0,
                                           err_msg=f"{name} at row {i}")
    assert 0 < int(np.sum(np.asarray(batched.exists))) < 50  # both outcomes occur in the sample


def test_resolve_times_conventions():
    gen = np.array([0.1, INF, NAN])
    mem = np.array([NAN, NAN, INF])  # NaN: no memorisation (class 0) or met at the first point (class 1)
    onset = np.array([INF, 2.0, INF])
    inf_ = np.array([0.5, -3.0, -0.5])
    g, e = resolve_times(gen, mem, onset, inf_)
    np.testing.assert_array_equal(np.asarray(g), [0.1, NAN, NAN])  # tau_gen off the grid: unresolved
    np.testing.assert_array_equal(np.asarray(e), [INF, NAN, NAN])  # only ε^tr(∞) ≥ 0 means "never"
    _, e = resolve_times(gen, mem, onset, inf_, memorisation="tau_onset")
    np.testing.assert_array_equal(np.asarray(e), [INF, 2.0, INF])  # ε^tr(∞) = −0.5 > −1: never reaches onset
    with pytest.raises(ValueError, match="memorisation"):
        resolve_times(gen, mem, onset, inf_, memorisation="onset")


@pytest.mark.parametrize("memorisation", ["tau_mem", "tau_onset"])
def test_disparity_window_equals_curves_then_timescales(memorisation):
    mix = GaussianMixture.create([0.3, 0.7], [4.0, 1.0])
    w = disparity_window(mix, MODEL, TAUS, memorisation=memorisation)
    out = theory_curves(mix, MODEL, TAUS, clock="ridge")
    ts = curve_timescales(TAUS, out["eps_test"], out["eps_train"], out["eps_train_inf"])
    gen, end = np.asarray(ts.tau_gen), np.asarray(getattr(ts, memorisation))
    assert np.all(np.isfinite(gen)) and np.all(np.isfinite(end))  # this point is resolved on the grid
    np.testing.assert_allclose(w.tau_gen, gen, rtol=1e-12)
    np.testing.assert_allclose(w.tau_end, end, rtol=1e-12)
    assert float(w.lo) == pytest.approx(gen.max(), rel=1e-12) and float(w.hi) == pytest.approx(end.min(), rel=1e-12)
    assert float(w.width_decades) == pytest.approx(np.log10(end.min() / gen.max()), rel=1e-10)
    assert int(w.last_generalising) == int(np.argmax(gen)) and int(w.first_memorising) == int(np.argmin(end))


def test_equal_classes_share_one_interval_which_is_the_window():
    """Identical variances and proportions: the equations are symmetric in the classes, so the per-class times
    agree to rounding (measured relative spread ≤ 1.8e-15) and the window is each class's own interval."""
    mix = GaussianMixture.create([1 / 3] * 3, [2.0, 2.0, 2.0])
    for memorisation in ("tau_mem", "tau_onset"):
        w = disparity_window(mix, MODEL, TAUS, memorisation=memorisation)
        np.testing.assert_allclose(w.tau_gen, w.tau_gen[0], rtol=1e-12)
        np.testing.assert_allclose(w.tau_end, w.tau_end[0], rtol=1e-12)
        assert float(w.lo) == pytest.approx(w.tau_gen[0], rel=1e-12)
        assert float(w.hi) == pytest.approx(w.tau_end[0], rel=1e-12)
        assert bool(w.exists) and float(w.width_decades) > 0


def test_disparity_window_refuses_an_unresolving_grid_and_bad_input():
    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    with pytest.raises(ValueError, match="tau_gen of class 0 is not resolved .*lower the grid's start"):
        disparity_window(mix, MODEL, np.logspace(0, 6, 30))
    with pytest.raises(ValueError, match="tau_mem of class 0 is not resolved .*extend the grid"):
        disparity_window(mix, MODEL, np.logspace(-3, 1, 30))
    with pytest.raises(ValueError, match="memorisation must be one of tau_mem, tau_onset, got 'onset'"):
        disparity_window(mix, MODEL, TAUS, memorisation="onset")
    with pytest.raises(ValueError, match="memorisation"):
        window_fn(mix, MODEL, memorisation="mem")


def test_window_fn_equals_disparity_window_at_a_point():
    base = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
    fn = window_fn(base, MODEL, taus=TAUS, coef_nodes=128, memorisation="tau_onset")
    with jax.enable_x64(True):
        got = jax.jit(fn)({"sigma_ratio": 3.0, "pi1": 0.2})
    w = disparity_window(GaussianMixture.create([0.2, 0.8], [9.0, 1.0]), MODEL, TAUS, memorisation="tau_onset")
    for k, v in [("window_lo", w.lo), ("window_hi", w.hi), ("window_width", w.width_decades)]:
        np.testing.assert_allclose(float(got[k]), float(v), rtol=1e-10, err_msg=k)
    assert float(got["first_memorising"]) == int(w.first_memorising)
    assert float(got["last_generalising"]) == int(w.last_generalising)
