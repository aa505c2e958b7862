"""Gaussian surrogate data (rfdiff/unet/surrogate.py) and its plumbing into the U-Net data preparation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rfdiff.unet import training
from rfdiff.unet.fmnist import class_statistics
from rfdiff.unet.surrogate import class_moments, gaussian_surrogate, sample_class_gaussians
from rfdiff.unet.training import UNetConfig, prepare_data, train

from _fmnist_fixture import write_tiny_fmnist


def _singular_moments(d=6, rank=4, seed=0):
    """Two classes with rank-deficient covariances (like Fashion-MNIST's always-black border pixels)."""
    rng = np.random.default_rng(seed)
    means, covs = [], []
    for r in (rank, rank - 1):
        a = rng.normal(size=(d, r))
        means.append(rng.normal(size=d))
        covs.append(a @ a.T)
    from rfdiff.unet.surrogate import ClassMoments

    return ClassMoments(np.array([3, 5]), np.array([0, 0]), np.stack(means), np.stack(covs))


@pytest.mark.parametrize("n", [4_000, 64_000])
def test_draws_have_the_target_mean_and_covariance(n):
    m = _singular_moments()
    labels = np.repeat([3, 5], n)
    x = sample_class_gaussians(m, labels, seed=1)
    for c, mu, cov in zip(m.classes, m.mean, m.cov):
        xc = x[labels == c]
        # Gaussian sampling errors: sd(mean_i) = √(Σ_ii/n), sd(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²)/n); 5 sd per entry
        # (measured max |z| over the 6 means and 36 covariance entries: 2.2 at n = 4000, 1.8 at n = 64000)
        sd_mu = np.sqrt(np.diag(cov) / n)
        sd_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
        z_mu = np.abs(xc.mean(0) - mu) / sd_mu
        z_cov = np.abs(np.cov(xc, rowvar=False) - cov) / sd_cov
        assert z_mu.max() < 5 and z_cov.max() < 5, (c, z_mu.max(), z_cov.max())
        # no variance along the null directions of Σ beyond rounding: eigh returns the exact zeros as
        # ±1e-16 λ_max, the negative ones are clipped, so the draws' variance there is ≤ that rounding
        lam, v = np.linalg.eigh(cov)
        null = v[:, lam < 1e-9 * lam.max()]
        assert null.shape[1] == cov.shape[0] - np.linalg.matrix_rank(cov) > 0
        assert ((xc - mu) @ null).var(0).max() < 1e-13 * lam.max()


def test_moments_agree_with_class_statistics_and_brute_force():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(50, 3, 3)).astype(np.float32)
    y = np.repeat([8, 7], 25)
    m = class_moments(x, y, [8, 7])
    s = class_statistics(x, y, [8, 7])
    assert m.counts.tolist() == [25, 25]
    np.testing.assert_allclose(np.trace(m.cov, axis1=1, axis2=2) / 9, s.variance, rtol=1e-12)
    for i, c in enumerate([8, 7]):
        xc = x[y == c].reshape(25, -1).astype(np.float64)
        np.testing.assert_allclose(m.cov[i], np.cov(xc, rowvar=False), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m.mean[i], xc.mean(0), rtol=1e-12)


def test_surrogate_keeps_counts_and_order_and_is_seeded():
    rng = np.random.default_rng(0)
    pop = rng.normal(size=(300, 4, 4))
    pop_y = np.repeat([1, 2, 9], 100)
    y = np.array([2, 9, 9, 2, 2, 1])
    a = gaussian_surrogate(pop[:6], y, pop, pop_y, seed=5)
    assert a.shape == (6, 4, 4) and a.dtype == np.float32 and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, gaussian_surrogate(pop[:6], y, pop, pop_y, seed=5))
    assert not np.array_equal(a, gaussian_surrogate(pop[:6], y, pop, pop_y, seed=6))
    # row i is a draw of class y[i]: the draws of class 2 equal those made for a label vector of class 2 alone
    b = sample_class_gaussians(class_moments(pop, pop_y, [1, 2, 9]), y, seed=5).reshape(6, 4, 4)
    np.testing.assert_allclose(a, b.astype(np.float32))


def test_surrogate_errors_name_the_parameter():
    x, y = np.zeros((4, 2, 2)), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="labels"):
        gaussian_surrogate(x, y[:3], x, y, seed=0)
    with pytest.raises(ValueError, match="population_images"):
        gaussian_surrogate(x, y, np.zeros((4, 3, 3)), y, seed=0)
    with pytest.raises(ValueError, match="class 1 needs at least two"):
        class_moments(x[:3], y[:3], [0, 1])
    with pytest.raises(ValueError, match="labels \\[4\\] have no moments"):
        sample_class_gaussians(class_moments(x, y, [0, 1]), [0, 4], seed=0)
    with pytest.raises(ValueError, match="data must be"):
        UNetConfig(data="gauss")


def test_prepare_data_replaces_only_the_training_images(tmp_path, monkeypatch):
    monkeypatch.setenv("RFDIFF_FASHION_MNIST", str(write_tiny_fmnist(tmp_path / "d", n_train=40, gz=False)))
    cfg = UNetConfig(classes=(8, 7), counts=(12, 5), downsample=2, n_test_per_class=6)
    real, gauss = prepare_data(cfg), prepare_data(dataclasses.replace(cfg, data="gaussian"))
    for k in ("train_indices", "y_train", "x_test", "y_test", "cov_eigenvalues"):
        np.testing.assert_array_equal(real[k], gauss[k])
    assert np.bincount(gauss["y_train"]).tolist() == [12, 5]
    assert gauss["x_train"].shape == real["x_train"].shape and gauss["x_train"].dtype == np.float32
    assert not np.any(gauss["x_train"] == real["x_train"])
    # the draws use the population moments at the run's resolution (14×14): the stripe class (7) has zero
    # variance off its stripe rows up to its small noise, and its draws stay within a few sd of the mean there;
    # unclipped: the uniform-noise class (8) has pixel sd 0.58 around 0, so some of 12 × 196 draws leave [−1, 1]
    xa, ya = real["all_train"]
    m = class_moments(xa, ya, [8, 7])
    z = (gauss["x_train"][:, 0].reshape(17, -1) - m.mean[gauss["y_train"]]) / np.sqrt(
        np.diagonal(m.cov, axis1=1, axis2=2))[gauss["y_train"]]
    assert np.abs(z).max() < 6
    assert np.abs(gauss["x_train"]).max() > 1
    np.testing.assert_array_equal(gauss["x_train"], prepare_data(dataclasses.replace(cfg, data="gaussian"))["x_train"])


class _Stop(Exception):
    pass


def test_config_key_real_matches_old_runs_gaussian_does_not(tmp_path, monkeypatch):
    # a run directory written before the `data` field existed: its config has no "data" key
    cfg = UNetConfig(downsample=2, channels=(4, 8))
    old = dataclasses.asdict(cfg)
    del old["data"]
    del old["loss_weights"]
    del old["max_train_steps"]
    (tmp_path / "config.json").write_text(json.dumps({"config": old, "provenance": {}}))

    def stop(_cfg):
        raise _Stop  # the config check passed: train went on to load the data

    monkeypatch.setattr(training, "prepare_data", stop)
    with pytest.raises(_Stop):
        train(cfg, tmp_path, progress=False)
    # an uncapped run written with the field as an explicit null is the same run
    (tmp_path / "config.json").write_text(json.dumps({"config": {**old, "max_train_steps": None}, "provenance": {}}))
    with pytest.raises(_Stop):
        train(cfg, tmp_path, progress=False)
    with pytest.raises(ValueError, match="different config \\(changed: data\\)"):
        train(dataclasses.replace(cfg, data="gaussian"), tmp_path, progress=False)
