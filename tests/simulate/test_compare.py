"""prepare_theory's cache is content-addressed: a changed problem is recomputed, an unchanged one reloaded
exactly, a file whose stored key does not match is never served."""

import importlib

import jax
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.features import realise
from rfdiff.simulate.compare import prepare_theory

D, K_MAX = 12, 8  # tiny: p = 24, n = 12; explicit Mehler order (the automatic check refuses such small d)


def _problem(var2):
    mix = GaussianMixture.create([0.5, 0.5], [1.0, var2])
    return realise(jax.random.key(0), mix, RFModel(2.0, 1.0, 0.05, "tanh"), D)


def _arrays(th):
    return [np.asarray(x) for x in (th.curves.cf.lam, th.curves.cf.P, th.curves.cf.b, th.curves.S, th.curves.gam2)]


def test_changed_problem_recomputes_unchanged_reloads(tmp_path, monkeypatch):
    a = prepare_theory(_problem(4.0), cache=tmp_path, k_max=K_MAX)
    b = prepare_theory(_problem(2.0), cache=tmp_path, k_max=K_MAX)  # old behaviour: `a` came back from the file
    fresh_b = prepare_theory(_problem(2.0), k_max=K_MAX)
    for x, y in zip(_arrays(b), _arrays(fresh_b)):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(_arrays(a)[0], _arrays(b)[0])
    assert len(list(tmp_path.glob("theory_*.npz"))) == 2
    # the Mehler order is part of the key too
    prepare_theory(_problem(2.0), cache=tmp_path, k_max=K_MAX - 2)
    assert len(list(tmp_path.glob("theory_*.npz"))) == 3

    # an unchanged problem is served from the cache: computing would raise
    def boom(*a, **k):
        raise AssertionError("recomputed a cached theory")

    # (the module, not the function of the same name that rfdiff.finite re-exports)
    monkeypatch.setattr(importlib.import_module("rfdiff.finite.closed_form"), "finite_curves", boom)
    again = prepare_theory(_problem(4.0), cache=tmp_path, k_max=K_MAX)
    for x, y in zip(_arrays(a), _arrays(again)):
        np.testing.assert_array_equal(x, y)


def test_stored_key_is_verified(tmp_path):
    from rfdiff.io import load_result, save_result

    prob = _problem(4.0)
    a = prepare_theory(prob, cache=tmp_path, k_max=K_MAX)
    (path,) = tmp_path.glob("theory_*.npz")
    arrays, attrs = load_result(path)
    save_result(path, {k: 0 * v for k, v in arrays.items()}, {**attrs, "key": "0" * 64})  # a colliding name
    b = prepare_theory(prob, cache=tmp_path, k_max=K_MAX)
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="cache must be a directory"):
        prepare_theory(prob, cache=tmp_path / "theory.npz", k_max=K_MAX)


def test_simulated_gd_crosses_no_earlier_than_the_spectral_times(tmp_path):
    """One class: the simulated train curve is 1 − Σ_k m_k h(λ_k τ) with h ≤ min(2x, 1) on the GD clock, so the
    exact-noise simulation reaches the memorisation and onset levels no earlier than the realisation's spectral
    times (up to one log-grid spacing of the simulation's logs, where its crossing is interpolated); the
    spectral times travel unchanged through theory.nc into the comparison."""
    from rfdiff.finite.features import train_moments
    from rfdiff.simulate.compare import compare_timescales, load_curves, theory_file, theory_spectral
    from rfdiff.simulate.train import TrainConfig, train_rf

    mix = GaussianMixture.create([1.0], [2.0])
    prob = realise(jax.random.key(1), mix, RFModel(2.0, 1.0, 0.05, "tanh"), D)
    mom = train_moments(prob, k_max=K_MAX)
    th = prepare_theory(prob, moments=mom, k_max=K_MAX)
    lr, steps, logs = 0.9 / th.lam_max, 200_000, 240
    log = train_rf(prob, TrainConfig(lr=lr, steps=steps, noise="exact", dtype="float64", num_logs=logs, n_test=20),
                   moments=mom, progress=False)
    cmp = compare_timescales(th, log)
    sp, sim = cmp["spectral"], cmp["sim"]
    assert sp["mass_spec"][0] > 1.0  # the class memorises: τ_mem is defined on both sides
    ratio = float(np.max(np.diff(np.log(log.tau[log.tau > 0]))))
    for name in ("tau_mem", "tau_onset"):
        t_sim, t_spec = float(sim[name][0]), float(sp[f"{name}_spec"][0])
        assert np.isfinite(t_sim) and np.isfinite(t_spec), name
        assert t_sim >= t_spec * np.exp(-ratio), (name, t_sim, t_spec)
    # through the file: theory.nc carries them, load_curves and compare_timescales pass them on
    path = theory_file(tmp_path / "theory.nc", th, lr, steps, num=50)
    again = compare_timescales(load_curves(path), log)["spectral"]
    for k, v in theory_spectral(th).items():
        np.testing.assert_array_equal(again[k], v)
