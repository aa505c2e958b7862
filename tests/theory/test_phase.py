"""Phase-diagram times: timescale_fn against theory_curves + curve_timescales at single points, the point
parametrisation, and float64 whatever the caller's x64 setting."""

import jax
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.theory.curves import theory_curves
from rfdiff.theory.phase import default_taus, point_arrays, timescale_fn
from rfdiff.theory.timescales import curve_timescales

BASE = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
MODEL = RFModel(4.0, 2.0, 0.01, "tanh")
TAUS = default_taus(32)


@pytest.mark.parametrize("params", [{"sigma_ratio": 2.0, "pi1": 0.5}, {"sigma_ratio": 0.7, "pi1": 0.8,
                                                                        "psi_n": 3.0}])
def test_timescale_fn_equals_curves_then_timescales(params):
    """The jittable point function = building the point's mixture/model by hand, theory_curves, then
    curve_timescales (same equations, same grid: agreement to rounding, 1e-10)."""
    fn = timescale_fn(BASE, MODEL, taus=TAUS, coef_nodes=128)
    got = fn(params)
    r, pi1 = params["sigma_ratio"], params["pi1"]
    mix = GaussianMixture.create([pi1, 1 - pi1], [r**2, 1.0])
    model = RFModel(MODEL.psi_p, params.get("psi_n", MODEL.psi_n), MODEL.t, "tanh")
    out = theory_curves(mix, model, TAUS, coef_nodes=128, clock="ridge")
    ts = curve_timescales(TAUS, out["eps_test"], out["eps_train"], out["eps_train_inf"])
    for k in ("tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf"):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(getattr(ts, k)), rtol=1e-10, err_msg=k)
    assert float(got["residual"]) < 1e-8


def test_point_arrays_parametrisation_and_validation():
    mix = GaussianMixture.create([0.2, 0.3, 0.5], [1.0, 2.0, 4.0])
    with jax.enable_x64(True):
        props, var, gram, psi_p, psi_n, t = point_arrays(mix, MODEL, {"sigma_ratio": 3.0, "pi1": 0.6,
                                                                      "separation": 2.0, "t": 0.1})
    np.testing.assert_allclose(np.asarray(var), [9 * 2.0, 2.0, 4.0])  # σ_0² = r² σ_1²
    np.testing.assert_allclose(np.asarray(props), [0.6, 0.4 * 0.375, 0.4 * 0.625])  # rest keeps its ratios
    np.testing.assert_allclose(np.asarray(gram), 2.0 * np.eye(3))
    assert (float(psi_p), float(psi_n), float(t)) == (4.0, 2.0, 0.1)
    with pytest.raises(ValueError, match="unknown phase-diagram parameter"):
        point_arrays(mix, MODEL, {"sigma": 2.0})
    with pytest.raises(ValueError, match="sigma_ratio needs at least two classes"):
        point_arrays(GaussianMixture.create([1.0], [1.0]), MODEL, {"sigma_ratio": 2.0})
    with pytest.raises(ValueError, match="taus"):
        timescale_fn(BASE, MODEL, taus=[1.0, 0.5])


def test_timescale_fn_is_float64_with_x64_off():
    """Built and called with x64 off (conftest turns it on globally), the result equals the x64 result to
    1e-12: the τ grid and the solve never drop to float32 (the old fn built its τ grid as float32 here).
    Under a caller's jit the caller must enable x64 itself: JAX cannot switch it inside a trace."""
    params = {"sigma_ratio": 2.0, "pi1": 0.25}  # exact in float32 too: the jit sees float32 inputs
    with jax.enable_x64(True):
        ref = timescale_fn(BASE, MODEL, coef_nodes=64)(params)
    with jax.enable_x64(False):
        fn = timescale_fn(BASE, MODEL, coef_nodes=64)
        eager = fn(params)
    for got in (eager,):
        for k in ("tau_gen", "tau_mem", "tau_onset", "eps_test_min"):
            assert np.asarray(got[k]).dtype == np.float64, k
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(ref[k]), rtol=1e-12, err_msg=k)


@pytest.mark.parametrize("sep, nq", [(0.0, 1), (16.0, 32)])
def test_population_table_equals_per_point_populations(sep, nq):
    """Built with ``grid``, fn looks its population up from a table of the distinct (σ-ratio, t) values; under
    the sweep's jit(vmap) this equals rebuilding the population at every point (no grid) to 1e-12, in both
    regimes; the separation only fixed (one value) and t an axis too."""
    from rfdiff.sweep import phase_diagram

    axes = {"sigma_ratio": [0.7, 1.3], "pi1": [0.2, 0.6], "t": [0.01, 0.05]}
    with jax.enable_x64(True):
        outs = []
        for grid in (None, {**axes, "separation": [sep]}):
            raw = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=nq, grid=grid)
            outs.append(phase_diagram(lambda q, raw=raw: raw({**q, "separation": np.float64(sep)}), axes,
                                      progress=False, chunk_size=3))
    for k in ("tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf"):
        np.testing.assert_allclose(outs[1][k], outs[0][k], rtol=1e-12, err_msg=k)  # NaN (no onset) at the same points
    assert np.all(np.isfinite(outs[1]["tau_gen"]))
    assert float(np.max(outs[1]["residual"])) < 1e-12


def test_population_table_refuses_points_outside_it():
    with jax.enable_x64(True):
        fn = timescale_fn(BASE, MODEL, taus=TAUS, grid={"sigma_ratio": [1.0, 2.0], "pi1": [0.5]})
        with pytest.raises(ValueError, match="sigma_ratio=1.5"):
            fn({"sigma_ratio": 1.5, "pi1": 0.5})
        with pytest.raises(ValueError, match="population parameters"):
            fn({"sigma_ratio": 1.0, "pi1": 0.5, "t": 0.02})
        out = jax.jit(fn)({"sigma_ratio": np.float64(1.5), "pi1": np.float64(0.5)})  # traced: flagged
        assert np.isinf(float(out["residual"])) and np.all(np.isnan(np.asarray(out["tau_gen"])))
        ok = jax.jit(fn)({"sigma_ratio": np.float64(2.0), "pi1": np.float64(0.5)})
        assert float(ok["residual"]) < 1e-12
    with pytest.raises(ValueError, match="unknown phase-diagram parameter"):
        timescale_fn(BASE, MODEL, grid={"sigma": [1.0]})


def test_chunk_size_rule_bounds_batch_bytes():
    """The chunk is the largest power of two with points × nodes × K × 8 B within the budget, clipped to
    [16, 1024]; so the batch's node arrays never exceed max(budget, 16 × nodes × K × 8 B)."""
    from rfdiff.theory.phase import chunk_size_for

    assert chunk_size_for(256, 2) == 16 and chunk_size_for(64, 2) == 64 and chunk_size_for(1, 2) == 1024
    assert chunk_size_for(4096, 8) == 16  # floor: a huge population still gets a useful batch
    assert chunk_size_for(256, 2, devices=2) == 32 and chunk_size_for(1, 2, devices=4) == 1024  # hi in all
    for nq in (1, 3, 32, 100, 256, 1000, 4096):
        for k in (1, 2, 3, 5, 10):
            c = chunk_size_for(nq, k)
            assert 16 <= c <= 1024 and c & (c - 1) == 0
            assert c * nq * k * 8 <= max(1 << 16, 16 * nq * k * 8)
            assert c == 1024 or c == 16 or 2 * c * nq * k * 8 > 1 << 16  # the largest that fits
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_quad"):
            chunk_size_for(bad, 2)
        with pytest.raises(ValueError, match="devices"):
            chunk_size_for(16, 2, devices=bad)
    with pytest.raises(ValueError, match="num_classes"):
        chunk_size_for(16, 0)


def test_separation_never_runs_on_a_single_default_node():
    """A separation axis needs shift nodes: the default counts it, and a defaulted single node refuses it (the
    old default gave one node at m = 0 for a zero base Gram, silently dropping the centroid shifts)."""
    from rfdiff.theory.phase import default_n_quad

    base = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
    assert default_n_quad(base) == 1
    assert default_n_quad(base, {"pi1": [0.3, 0.5]}) == 1
    assert default_n_quad(base, {"separation": [0.0, 4.0]}) == 256
    assert default_n_quad(base.with_strong_centroids([1.0, 1.0])) == 256
    fn = timescale_fn(base, RFModel(2.0, 1.0, 0.01, "tanh"), taus=np.logspace(-2, 3, 12))
    with pytest.raises(ValueError, match="separation needs shift nodes"):
        fn({"separation": np.float64(4.0)})


# ---------------------------------------------------------------- centroid geometry and psi_ratio (issue #12 item 4)
def test_point_arrays_centroid_geometry_gram():
    """norm_ratio ρ, cosine κ on a strong base Gram diag(s_0, s_1): M = [[ρ² s_1, κρ s_1], [κρ s_1, s_1]] (class 2's
    norm kept, from separation when given); psi_ratio q gives ψ_p = q ψ_n."""
    mix = GaussianMixture.create([0.5, 0.5], [1.0, 1.0]).with_strong_centroids([9.0, 4.0])
    with jax.enable_x64(True):
        _, _, gram, psi_p, psi_n, _ = point_arrays(mix, MODEL, {"norm_ratio": 0.5, "cosine": -0.3,
                                                                "psi_ratio": 32.0, "psi_n": 0.25})
        np.testing.assert_allclose(np.asarray(gram), [[1.0, -0.3 * 0.5 * 4.0], [-0.3 * 0.5 * 4.0, 4.0]], rtol=1e-14)
        assert float(psi_p) == 8.0 and float(psi_n) == 0.25
        _, _, gram, _, _, _ = point_arrays(mix, MODEL, {"separation": 2.0, "norm_ratio": 3.0})
        np.testing.assert_allclose(np.asarray(gram), [[18.0, 0.0], [0.0, 2.0]], rtol=1e-14)
        _, _, gram, _, _, _ = point_arrays(mix, MODEL, {"cosine": 0.5})  # norms kept: M_01 = 0.5·3·2
        np.testing.assert_allclose(np.asarray(gram), [[9.0, 3.0], [3.0, 4.0]], rtol=1e-14)


@pytest.mark.parametrize("params, match", [
    ({"cosine": 1.2}, "cosine must be in"), ({"norm_ratio": 0.0}, "norm_ratio must be"),
    ({"norm_ratio": np.nan}, "norm_ratio must be"), ({"psi_ratio": -1.0}, "psi_ratio must be"),
    ({"psi_ratio": 2.0, "psi_p": 4.0}, "psi_ratio"),
])
def test_point_arrays_geometry_validation(params, match):
    mix = GaussianMixture.create([0.5, 0.5], [1.0, 1.0]).with_strong_centroids([4.0, 4.0])
    with jax.enable_x64(True), pytest.raises(ValueError, match=match):
        point_arrays(mix, MODEL, params)


def test_geometry_needs_a_centroid_and_a_psd_gram():
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match="norm_ratio needs a non-zero centroid"):
            point_arrays(BASE, MODEL, {"norm_ratio": 2.0})
        mix3 = GaussianMixture.create([0.3, 0.3, 0.4], [1.0, 1.0, 1.0]).with_strong_centroids(
            [4.0, 4.0, 4.0], [[1, 0, 0.7], [0, 1, 0.7], [0.7, 0.7, 1]])
        with pytest.raises(ValueError, match="^cosine gives a centroid Gram that is not positive semi-definite"):
            point_arrays(mix3, MODEL, {"cosine": -0.9})  # C has eigenvalue 1 - 0.9·... < 0 (det < 0)
        with pytest.raises(ValueError, match="^cosine gives"):  # a grid is checked before it is traced
            timescale_fn(mix3, MODEL, taus=TAUS, n_quad=8, grid={"cosine": [0.0, -0.9]})
        with pytest.raises(ValueError, match="^cosine must be in"):
            timescale_fn(mix3, MODEL, taus=TAUS, n_quad=8, grid={"cosine": [0.0, 1.5]})


@pytest.mark.parametrize("regime", ["weak", "strong"])
def test_geometry_point_equals_curves_on_the_built_mixture(regime):
    """A phase-diagram point with norm_ratio/cosine (population from the grid table) = theory_curves then
    curve_timescales on the mixture built with those centroids (with_*_centroids): same equations, same nodes,
    1e-10."""
    d = 500
    base = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    base = base.with_weak_centroids([4.0, 4.0], d) if regime == "weak" else base.with_strong_centroids([4.0, 4.0])
    rho, kappa, nq = 0.5, 0.4, 32
    fn = timescale_fn(base, MODEL, taus=TAUS, n_quad=nq, coef_nodes=128,
                      grid={"norm_ratio": [rho, 1.0], "cosine": [kappa]})
    got = fn({"norm_ratio": rho, "cosine": kappa})
    sq = np.array([rho**2 * 4.0, 4.0])
    cos = [[1.0, kappa], [kappa, 1.0]]
    mix = base.with_weak_centroids(sq, d, cos) if regime == "weak" else base.with_strong_centroids(sq, cos)
    out = theory_curves(mix, MODEL, TAUS, n_quad=nq, coef_nodes=128, clock="ridge")
    ts = curve_timescales(TAUS, out["eps_test"], out["eps_train"], out["eps_train_inf"])
    for k in ("tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf"):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(getattr(ts, k)), rtol=1e-10, err_msg=k)


def test_unit_norm_ratio_and_zero_cosine_reproduce_separation():
    """norm_ratio = 1, cosine = 0 on separation s is M = s·I: the same times as separation alone (to rounding)."""
    fn = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=32, coef_nodes=128,
                      grid={"separation": [4.0], "norm_ratio": [1.0], "cosine": [0.0], "sigma_ratio": [2.0]})
    ref = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=32, coef_nodes=128,
                       grid={"separation": [4.0], "sigma_ratio": [2.0]})
    got = fn({"separation": 4.0, "norm_ratio": 1.0, "cosine": 0.0, "sigma_ratio": 2.0})
    want = ref({"separation": 4.0, "sigma_ratio": 2.0})
    for k in ("tau_gen", "tau_mem", "tau_onset"):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-12, err_msg=k)
    assert np.all(np.isfinite(np.asarray(got["tau_gen"])))
