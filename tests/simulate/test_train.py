"""Tests of the jitted RF trainer (rfdiff.simulate.train) against closed forms and brute force.

Reference problem: two isotropic classes σ² = (1, 4), balanced, tanh, t = 0.01, ψ_p = 4, ψ_n = 2 at d = 30
(p = 120, n = 60), exact noise-averaged moments from rfdiff.finite.features (float64).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.closed_form import finite_curves, iterate_gd
from rfdiff.finite.features import loss_from_moments, population_moments, realise, train_moments
from rfdiff.simulate.train import TrainConfig, TrainLog, fresh_noise_excess, log_steps, train_rf

T = 0.01
DELTA = float(-np.expm1(-2 * T))


@pytest.fixture(scope="module")
def setup():
    mix = GaussianMixture.create([0.5, 0.5], [1.0, 4.0])
    prob = realise(jax.random.key(0), mix, RFModel(4.0, 2.0, T, "tanh"), 30)
    # explicit Mehler orders: at d = 30 the automatic order check of rfdiff.finite.features refuses the population moments
    # (tanh, Γ² up to 4); order 8 for the train moments (Δ|W̃W̃ᵀ| ≲ 0.02) and 16 for the population ones is far
    # inside the accuracy the tests need (checked by the Monte Carlo test below).
    mom = train_moments(prob, k_max=8)
    pop = population_moments(prob, k_max=16)
    lam_max = float(np.linalg.eigvalsh(np.asarray(mom.U))[-1])
    return prob, mom, pop, lam_max


def _class_losses(A, prob, mom):
    return np.array([float(loss_from_moments(jnp.asarray(A), mom.U_class[c], mom.V_class[c], T, prob.p, prob.d))
                     for c in range(prob.mixture.num_classes)])


def test_exact_noise_trainer_matches_closed_form(setup):
    prob, mom, pop, lam_max = setup
    lr, steps = 0.9 / lam_max, 300
    cfg = TrainConfig(lr=lr, steps=steps, noise="exact", dtype="float64", num_logs=5, n_test=50)
    log = train_rf(prob, cfg, moments=mom, progress=False)
    # weights: brute-force GD on the exact gradient (dynamics.iterate_gd), float64 rounding only
    A_ref = np.asarray(iterate_gd(mom.U, mom.V, lr, [steps], delta=DELTA, p=prob.p)[0])
    assert np.max(np.abs(log.A - A_ref)) <= 1e-9 * np.max(np.abs(A_ref))
    # per-class train losses: closed-form GD curve (spectral formula), relative error < 1e-6
    fc = finite_curves(prob, mom, pop)
    with jax.numpy_dtype_promotion("standard"):  # dynamics' GD kind mixes int and float powers
        ref = np.asarray(fc(np.array([steps * lr]), kind="gd", step=lr)["loss_train"])[:, 0]
    got = _class_losses(log.A, prob, mom)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert np.all(np.diff(log.step) > 0) and log.step[0] == 0 and log.step[-1] == steps


def test_logged_losses_are_unbiased_estimates(setup):
    """Logged train/test losses (fixed evaluation noise, fresh test set) vs exact moments at the same A.

    Tolerance: 5 standard errors of the per-row estimator, measured from the rows themselves (scales 1/√(n_c d)).
    """
    prob, mom, pop, lam_max = setup
    cfg = TrainConfig(lr=0.9 / lam_max, steps=100, noise="exact", dtype="float64", num_logs=2, n_test=4000,
                      n_eval_noise=64)
    log = train_rf(prob, cfg, moments=mom, progress=False)
    exact_tr = _class_losses(log.A, prob, mom)
    exact_te = np.array([float(loss_from_moments(jnp.asarray(log.A), pop[0][c], pop[1][c], T, prob.p, prob.d))
                         for c in range(2)])
    S = log.bayes_drop
    # in normalised units the estimator's spread is ~ Γ·√(Δ/d)/S per row; allow 5σ with rows = n_c·m or n_test
    tol_tr = 5 * np.sqrt(4 * DELTA * log.gamma2 / prob.d / (30 * 64)) / S + 1e-9
    tol_te = 5 * np.sqrt(4 * DELTA * log.gamma2 / prob.d / 4000) / S * 5
    assert np.all(np.abs(log.eps_train[-1] - (exact_tr - 1 + S) / S) < tol_tr + 0.05 * np.abs((exact_tr - 1 + S) / S))
    assert np.all(np.abs(log.eps_test[-1] - (exact_te - 1 + S) / S) < tol_te + 0.05 * np.abs((exact_te - 1 + S) / S))


@pytest.mark.slow
def test_fresh_noise_bias_and_control_variates(setup):
    """Fresh-noise GD (m = 1, η̂ = 0.5/λ_max, 100 steps), mean over 3 seeds, against exact GD (normalised units).

    * "linear" control variate: |excess| < 0.02 for both classes (the seed spread is ~1e-3);
    * "simple" and "none": the excess matches the linear-noise prediction ``fresh_noise_excess`` within 50%
      and 20% respectively (noise covariance E(φ−φ̄)(φ−φ̄)ᵀ by brute-force Monte Carlo, and U);
    * ordering: none > 10 × simple > 10 × |linear|.
    """
    prob, mom, pop, lam_max = setup
    lr, steps = 0.5 / lam_max, 100
    A_ref = np.asarray(iterate_gd(mom.U, mom.V, lr, [steps], delta=DELTA, p=prob.p)[0])
    L_ref = _class_losses(A_ref, prob, mom)
    S = DELTA / np.asarray(prob.mixture.variances * np.exp(-2 * T) + DELTA)
    excess = {}
    for cv in ("linear", "simple", "none"):
        Ls = []
        for seed in range(3):
            cfg = TrainConfig(lr=lr, steps=steps, noise="fresh", control_variate=cv, dtype="float64", num_logs=2,
                              n_test=10, seed=seed)
            Ls.append(_class_losses(train_rf(prob, cfg, progress=False).A, prob, mom))
        excess[cv] = (np.mean(Ls, axis=0) - L_ref) / S
    rng = np.random.default_rng(3)
    Wt = np.asarray(prob.W) / np.sqrt(prob.d)
    x0 = np.asarray(prob.x0)
    phibar = np.tanh(np.exp(-T) * x0 @ Wt.T)
    U_cv = 0.0
    for _ in range(40):
        phi = np.tanh((np.exp(-T) * x0 + np.sqrt(DELTA) * rng.standard_normal(x0.shape)) @ Wt.T)
        U_cv = U_cv + (phi - phibar).T @ (phi - phibar) / (40 * prob.n)
    pred_simple = np.asarray(fresh_noise_excess(mom.U, mom.U_class, U_cv, lr, prob.n, 1, [steps]))[:, 0] / S
    pred_none = np.asarray(fresh_noise_excess(mom.U, mom.U_class, mom.U, lr, prob.n, 1, [steps]))[:, 0] / S
    assert np.all(np.abs(excess["linear"]) < 0.02)
    np.testing.assert_allclose(excess["simple"], pred_simple, rtol=0.5)
    np.testing.assert_allclose(excess["none"], pred_none, rtol=0.2)
    assert np.all(excess["none"] > 10 * excess["simple"])
    assert np.all(excess["simple"] > 10 * np.abs(excess["linear"]))


@pytest.mark.parametrize("optimizer,noise,batch", [("gd", "fresh", 20), ("adam", "fixed", None)])
def test_kill_and_resume_is_bit_identical(setup, tmp_path, optimizer, noise, batch):
    prob, mom, pop, lam_max = setup
    cfg = TrainConfig(lr=0.5 / lam_max if optimizer == "gd" else 1e-2, steps=60, optimizer=optimizer,
                      noise=noise, n_noise=2, batch_size=batch, num_logs=8, n_test=20, dtype="float32",
                      checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=7, seed=5)
    full = train_rf(prob, dataclasses.replace(cfg, checkpoint_dir=None), progress=False)
    part = train_rf(prob, cfg, progress=False, max_segments=4)  # "killed" after 4 compiled segments
    assert part.step[-1] < cfg.steps
    resumed = train_rf(prob, cfg, progress=False)
    np.testing.assert_array_equal(resumed.A, full.A)
    np.testing.assert_array_equal(resumed.step, full.step)
    np.testing.assert_array_equal(resumed.train_loss, full.train_loss)
    np.testing.assert_array_equal(resumed.test_loss, full.test_loss)
    # a checkpoint from another config is refused, not silently continued
    with pytest.raises(ValueError, match="checkpoint"):
        train_rf(prob, dataclasses.replace(cfg, seed=6), progress=False)


def test_trainlog_roundtrip(setup, tmp_path):
    prob, mom, pop, lam_max = setup
    log = train_rf(prob, TrainConfig(lr=0.1, steps=5, num_logs=3, n_test=5), progress=False)
    back = TrainLog.load(log.save(tmp_path / "log.npz"))
    for a, b in zip(log, back):
        np.testing.assert_array_equal(a, b)


def test_log_steps():
    s = log_steps(1000, 20)
    assert s[0] == 0 and s[-1] == 1000 and np.all(np.diff(s) > 0)
    assert log_steps(1, 5).tolist() == [0, 1]


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1.0, steps=10), "lr"), (dict(lr=0.1, steps=0), "steps"), (dict(lr=0.1, steps=5, noise="x"), "noise"),
    (dict(lr=0.1, steps=5, optimizer="sgdm"), "optimizer"), (dict(lr=0.1, steps=5, batch_size=0), "batch_size"),
    (dict(lr=0.1, steps=5, noise="exact", batch_size=4), "batch_size"), (dict(lr=0.1, steps=5, dtype="int8"), "dtype"),
    (dict(lr=float("nan"), steps=5), "lr"), (dict(lr=0.1, steps=5, n_noise=0), "n_noise"),
    (dict(lr=0.1, steps=5, control_variate="yes"), "control_variate"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_inputs_and_divergence(setup):
    prob, mom, pop, lam_max = setup
    with pytest.raises(ValueError, match="moments"):
        train_rf(prob, TrainConfig(lr=0.1, steps=5, noise="exact"), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        train_rf(prob, TrainConfig(lr=0.1, steps=5, batch_size=10_000), progress=False)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_rf(prob, TrainConfig(lr=5.0 / lam_max, steps=400, noise="exact", dtype="float64", n_test=5),
                 moments=mom, progress=False)
    with pytest.raises(ValueError, match="lr"):
        fresh_noise_excess(mom.U, mom.U_class, mom.U, 3.0 / lam_max, prob.n, 1, [10])
