"""Spectral per-class times (rfdiff.theory.timescales.spectral_times): closed forms on constructed spectra, the
ordering against curves that are exactly 1 − Σ m h(λτ), and theory vs the finite-d closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff.theory.timescales import curve_timescales, spectral_times


def test_one_atom_closed_form():
    # C(τ) = M min(2λτ, 1): level ℓ ≤ M is reached at τ = ℓ/(2λM)
    lam, M = 0.7, 6.0
    ts = spectral_times(np.array([lam]), np.array([M]))
    np.testing.assert_allclose([ts.tau_gen_spec, ts.tau_mem_spec, ts.tau_onset_spec, ts.mass_spec],
                               [0.5 / (2 * lam * M), 0.5 * (1 + M) / (2 * lam * M), 2.0 / (2 * lam * M), M],
                               rtol=1e-6)


def test_two_atoms_closed_form_and_undefined_levels():
    # atoms (λ, m) = (10, 1), (0.01, 3): C = 2τ·10.03 up to τ = 1/20, then 1 + 2τ·0.03 up to τ = 50
    lam = np.array([0.01, 10.0])
    ts = spectral_times(lam, np.array([[3.0, 1.0], [0.2, 0.3], [0.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(ts.tau_gen_spec)[0], 0.5 / 20.06, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ts.tau_mem_spec)[0], 1.5 / 0.06, rtol=1e-6)  # level (1 + 4)/2
    np.testing.assert_allclose(np.asarray(ts.tau_onset_spec)[0], 1.0 / 0.06, rtol=1e-6)
    # M = 0.5 reaches ½ exactly at the last breakpoint 1/(2·0.01); no memorisation (NaN); no onset (inf)
    np.testing.assert_allclose(np.asarray(ts.tau_gen_spec)[1], 50.0, rtol=1e-6)
    assert np.isnan(np.asarray(ts.tau_mem_spec)[1]) and np.isinf(np.asarray(ts.tau_onset_spec)[1])
    assert np.isinf(np.asarray(ts.tau_gen_spec)[2])


def test_order_of_atoms_and_null_directions_do_not_matter():
    rng = np.random.default_rng(0)
    lam, m = rng.lognormal(size=30), rng.exponential(size=30)
    ref = spectral_times(lam, m)
    perm = rng.permutation(30)
    got = spectral_times(np.concatenate([lam[perm], [0.0, -1e-15]]), np.concatenate([m[perm], [0.0, 0.0]]))
    for a, b in zip(ref, got):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12)


def test_brute_force_crossing_of_the_sharp_filter_curve():
    # the definition itself: first τ where Σ m min(2λτ, 1) reaches the level, by bisection
    rng = np.random.default_rng(1)
    lam, m = rng.lognormal(sigma=2.0, size=50), rng.exponential(size=50) * 0.2
    ts = spectral_times(lam, m)
    C = lambda tau: np.sum(m * np.minimum(2 * lam * tau, 1.0))  # noqa: E731
    for level, got in ((0.5, ts.tau_gen_spec), (0.5 * (1 + m.sum()), ts.tau_mem_spec), (2.0, ts.tau_onset_spec)):
        lo, hi = 0.0, 1e6
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if C(mid) < level else (lo, mid)
        np.testing.assert_allclose(float(got), hi, rtol=1e-10)


def test_jit_vmap_equal_loop():
    rng = np.random.default_rng(2)
    lam, m = rng.lognormal(size=(3, 20)), rng.exponential(size=(3, 20))
    with jax.enable_x64(True):
        batched = jax.jit(jax.vmap(spectral_times))(jnp.asarray(lam), jnp.asarray(m))
        for i in range(3):
            for a, b in zip(spectral_times(lam[i], m[i]), batched):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b)[i], rtol=1e-12)


@pytest.mark.parametrize("kind", ["flow", "ridge"])
def test_spectral_time_bounds_the_threshold_time_of_a_diagonal_curve(kind):
    # ε(τ) = 1 − Σ m h(λτ) with h ≤ min(2x, 1) on both clocks: each threshold is crossed no earlier than its
    # spectral time; for one atom the ratio is −ln(1−u)/u (flow) or 2((1−u)^{−1/2} − 1)/u (ridge), u = ℓ/M
    rng = np.random.default_rng(3)
    lam, m = rng.lognormal(sigma=2.0, size=40), rng.exponential(size=40) * 0.5
    taus = np.logspace(-6, 8, 6000)
    x = lam[None, :] * taus[:, None]
    h = -np.expm1(-2 * x) if kind == "flow" else 1 - 1 / (1 + x) ** 2
    eps = 1 - h @ m
    thr = curve_timescales(taus, eps, eps, 1 - m.sum())
    spec = spectral_times(lam, m)
    assert float(thr.tau_mem) >= float(spec.tau_mem_spec) * (1 - 2e-3)
    assert float(thr.tau_onset) >= float(spec.tau_onset_spec) * (1 - 2e-3)
    # one atom, u = ½: the ratio in closed form (grid error of the threshold time < 1e-4 at 6000 points)
    eps1 = 1 - (-np.expm1(-2 * 3.0 * taus) if kind == "flow" else 1 - 1 / (1 + 3.0 * taus) ** 2) * 1e3
    t1 = curve_timescales(taus, eps1, eps1, 1 - 1e3)
    s1 = spectral_times(np.array([3.0]), np.array([1e3]))
    u = 0.5 * (1 + 1e3) / 1e3
    want = -np.log1p(-u) / u if kind == "flow" else 2 * ((1 - u) ** -0.5 - 1) / u
    np.testing.assert_allclose(float(t1.tau_mem) / float(s1.tau_mem_spec), want, rtol=1e-3)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="mass"):
        spectral_times(np.array([1.0, 2.0]), np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="lam"):
        spectral_times(np.array([1.0, 2.0]), np.array([1.0, 1.0, 1.0]))


def _finite(mix, model, d, seed):
    from rfdiff.finite.closed_form import finite_curves
    from rfdiff.finite.features import population_moments, realise, train_moments

    prob = realise(jax.random.key(seed), mix, model, d)
    return prob, finite_curves(prob, train_moments(prob), population_moments(prob))


@pytest.mark.parametrize("kind", ["flow", "ridge"])
def test_finite_masses_reproduce_the_class_weighted_train_curve(kind):
    # Σ_c f_c S_c (1 − ε_c^tr(τ)) = Σ_c f_c S_c Σ_k m_c,k h(λ_kτ) exactly (U_X = U is diagonal in U's eigenbasis)
    from rfdiff import GaussianMixture, RFModel

    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    prob, fc = _finite(mix, RFModel(3.0, 1.0, 0.05, "tanh"), 30, 0)
    lam, m = (np.asarray(a) for a in fc.spectral_masses())
    taus = np.logspace(-3, 4, 15)
    x = lam[None, :] * taus[:, None]
    h = -np.expm1(-2 * x) if kind == "flow" else 1 - 1 / (1 + x) ** 2
    w = np.asarray(prob.class_fractions) * np.asarray(fc.S)
    got = w @ (1 - np.asarray(fc(taus, kind=kind)["eps_train"]))
    np.testing.assert_allclose(got, w @ (m @ h.T), rtol=1e-9, atol=1e-12)
    # and the total mass is the asymptote's: Σ_c f_c S_c M_c = Σ_c f_c S_c (1 − ε_c^tr(∞))
    np.testing.assert_allclose(w @ m.sum(1), w @ (1 - np.asarray(fc.asymptote()["eps_train"])[:, 0]), rtol=1e-9)


@pytest.mark.slow
def test_theory_spectral_times_match_finite_d():
    # σ² = (4, 1), ψ_p = 4, ψ_n = 1, tanh, t = 0.01. Measured (seeds 0, 1): |finite/theory − 1| ≤ 2.3 % for every
    # time and class at d = 200 and at d = 400 (seed scatter, no trend visible between the two d); the totals
    # M_c within 1.8 %. Tolerance 4 % at both d.
    from rfdiff import GaussianMixture, RFModel
    from rfdiff.theory.curves import theory_spectral_masses

    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    model = RFModel(4.0, 1.0, 0.01, "tanh")
    th = spectral_times(*theory_spectral_masses(mix, model))
    for d in (200, 400):
        _, fc = _finite(mix, model, d, 0)
        fi = spectral_times(*fc.spectral_masses())
        for a, b in zip(fi, th):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0.04)
