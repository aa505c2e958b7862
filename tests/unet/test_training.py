"""U-Net module: schedules, loss, DDIM, evaluation metrics, and the resumable pipeline on tiny IDX data."""

from __future__ import annotations

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from rfdiff.unet import evaluate as ev
from rfdiff.unet.model import UNet, ddim_sample, eps_loss, init_unet, make_schedule, ou_time
from rfdiff.cli.main import main
from rfdiff.spec import SpecError, load_spec
from rfdiff.unet.training import UNetConfig, eval_steps, summarise, target_step, train

from _fmnist_fixture import write_tiny_fmnist


def test_schedules():
    for kind in ("cosine", "linear"):
        ab = make_schedule(kind, 200)
        assert ab[0] == 1.0 and np.all(np.diff(ab) < 0) and 0 < ab[-1] < 1e-2
        assert np.all(np.diff(ou_time(ab)) > 0)
    # cosine: the product of (1 − β_k) telescopes to f(k)/f(0) wherever β is not clipped
    t = 1000
    f = np.cos((np.arange(t + 1) / t + 0.008) / 1.008 * np.pi / 2) ** 2
    ab = make_schedule("cosine", t)
    np.testing.assert_allclose(ab[:900], (f / f[0])[:900], rtol=1e-10)
    # linear (Ho et al.): β_1 = 1e-4, β_T = 0.02
    ab = make_schedule("linear", t)
    assert 1 - ab[1] == pytest.approx(1e-4) and 1 - ab[-1] / ab[-2] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("sigmoid", 10)


def _new_unet(key, channels, image_size):
    return init_unet(int(jax.random.randint(key, (), 0, 1000)), channels, image_size)
_jit_loss = eqx.filter_jit(eps_loss)


def test_unet_shapes_and_validation():
    net = _new_unet(jax.random.key(0), channels=(4, 8), image_size=6)
    out = eqx.filter_jit(lambda m, x, s: jax.vmap(m)(x, s))(net, jnp.ones((3, 1, 6, 6), jnp.float32),
                                                             jnp.full((3,), 0.3, jnp.float32))
    assert out.shape == (3, 1, 6, 6) and out.dtype == jnp.float32
    with pytest.raises(ValueError, match="image_size"):
        UNet(jax.random.key(0), channels=(4, 8, 8), image_size=14)
    with pytest.raises(ValueError, match="channels"):
        UNet(jax.random.key(0), channels=(), image_size=14)
    # host initialisation: same structure as equinox's, weights within ±1/√fan_in, GroupNorm scale 1
    ref = eqx.filter_eval_shape(UNet, jax.random.key(0), (4, 8), 6)
    assert jax.tree_util.tree_structure(net) == jax.tree_util.tree_structure(ref)
    fan_in = net.conv_out.in_channels * 9
    assert float(jnp.abs(net.conv_out.weight).max()) <= 1 / np.sqrt(fan_in)
    assert float(jnp.abs(net.conv_out.weight).max()) > 0.5 / np.sqrt(fan_in)
    assert bool(jnp.all(net.norm_out.weight == 1)) and bool(jnp.all(net.norm_out.bias == 0))
    a, b = init_unet(3, (4, 8), 6), init_unet(3, (4, 8), 6)
    assert all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _zero_output(net):
    return eqx.tree_at(lambda m: (m.conv_out.weight, m.conv_out.bias), net,
                       (jnp.zeros_like(net.conv_out.weight), jnp.zeros_like(net.conv_out.bias)))


def test_eps_loss_of_zero_predictor_is_noise_power():
    # same network shape and batch as the other tests, so the compiled functions are shared
    net = _zero_output(_new_unet(jax.random.key(1), channels=(4, 8), image_size=6))
    ab = jnp.asarray(make_schedule("cosine", 100), jnp.float32)
    eps = jax.random.normal(jax.random.key(2), (4, 1, 6, 6), jnp.float32)
    x0 = jax.random.uniform(jax.random.key(3), (4, 1, 6, 6), jnp.float32, -1, 1)
    loss = _jit_loss(net, x0, jnp.array([1, 20, 80, 100]), eps, ab, 100)
    np.testing.assert_allclose(np.asarray(loss), np.mean(np.asarray(eps) ** 2, axis=(1, 2, 3)), rtol=1e-6)


def test_bf16_forward_close_to_float32():
    net = _new_unet(jax.random.key(4), channels=(4, 8), image_size=6)
    ab = jnp.asarray(make_schedule("cosine", 100), jnp.float32)
    x0 = jax.random.uniform(jax.random.key(5), (4, 1, 6, 6), jnp.float32, -1, 1)
    eps = jax.random.normal(jax.random.key(6), (4, 1, 6, 6), jnp.float32)
    k = jnp.array([5, 30, 60, 90])
    l32 = _jit_loss(net, x0, k, eps, ab, 100)
    l16 = _jit_loss(net, x0, k, eps, ab, 100, jnp.bfloat16)
    np.testing.assert_allclose(np.asarray(l16), np.asarray(l32), rtol=3e-2)  # bf16 has an 8-bit mantissa


class _PointMassOracle(eqx.Module):
    """Exact ε-predictor of the point mass x_0 = c: ε̂ = (x_k − √ᾱ_k c)/√(1 − ᾱ_k)."""

    c: jax.Array
    ab: jax.Array
    t: int = eqx.field(static=True)

    def __call__(self, x, s):
        a = self.ab[jnp.round(s * self.t).astype(jnp.int32)]
        return (x - jnp.sqrt(a) * self.c) / jnp.sqrt(1.0 - a)


def test_ddim_recovers_point_mass_from_any_noise():
    t = 100
    ab = jnp.asarray(make_schedule("cosine", t), jnp.float32)
    c = jax.random.uniform(jax.random.key(7), (1, 5, 5), jnp.float32, -0.9, 0.9)
    noise = jax.random.normal(jax.random.key(8), (6, 1, 5, 5), jnp.float32)
    # the first step divides by √ᾱ_T: float32 rounding of x_T − √(1−ᾱ_T) ε̂ is amplified by 1/√ᾱ_T (≈ 2000 here)
    atol = 4 * 2.0 ** -23 * float(jnp.abs(noise).max()) / float(jnp.sqrt(ab[-1]))
    for steps in (1, 7, 100):
        out = ddim_sample(_PointMassOracle(c, ab, t), noise, ab, t, steps, clip=False)
        np.testing.assert_allclose(np.asarray(out), np.broadcast_to(np.asarray(c), out.shape), atol=atol)
    with pytest.raises(ValueError, match="sample_steps"):
        ddim_sample(_PointMassOracle(c, ab, t), noise, ab, t, 0)


def test_gaussian_reference_and_normalisation():
    t = np.array([0.01, 0.1, 1.0])
    var = 0.3
    s = ev.gaussian_reference(np.full((2, 50), var), t)
    dlt = 1 - np.exp(-2 * t)
    np.testing.assert_allclose(s, np.broadcast_to(dlt / (np.exp(-2 * t) * var + dlt), (2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ev.normalised_error(np.ones(3), s[0]), 1.0)  # zero predictor
    np.testing.assert_allclose(ev.normalised_error(1 - s[0], s[0]), 0.0, atol=1e-12)  # exact Gaussian denoiser
    with pytest.raises(ValueError, match="times"):
        ev.gaussian_reference(np.ones((1, 3)), np.array([0.0]))


def test_frechet_distance_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(150, 6)) * 2 + 1
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert ev.frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    assert abs(ev.frechet_distance(a, a)) < 1e-8
    shift = np.arange(6.0)
    assert ev.frechet_distance(a, a + shift) == pytest.approx(np.sum(shift ** 2), rel=1e-8)
    assert np.isfinite(ev.frechet_distance(a[:3], b))  # fewer points than features: finite, biased
    assert np.isnan(ev.frechet_distance(a[:1], b))


TINY = dict(classes=(8, 7), counts=(6, 6), downsample=4, channels=(4,), num_steps=50, batch_size=4, lr=1e-3,
            train_steps=10, first_eval=2, n_eval=3, n_samples=12, sample_steps=3, n_test_per_class=6,
            loss_draws=1, checkpoint_every=3, loss_times=(0.05, 0.5))


def _assert_same(a, b, skip=("wall",)):
    assert sorted(a) == sorted(b)
    for k in a:
        if k not in skip:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.slow
def test_pipeline_cli_resume_and_summary(tmp_path, monkeypatch):
    data = write_tiny_fmnist(tmp_path / "data", gz=False)  # uncompressed names carry no published checksum
    monkeypatch.setenv("RFDIFF_FASHION_MNIST", str(data))
    spec = tmp_path / "tiny.toml"
    body = "\n".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in TINY.items())
    spec.write_text("[unet]\n" + body + f'\nclassifier_cache = "{tmp_path / "clf.eqx"}"\n')
    full = tmp_path / "full"
    assert main(["simulate", "unet", str(spec), "--out", str(full), "--quiet"]) == 0
    from rfdiff.io import load_result

    a, attrs = load_result(full / "metrics.npz")
    assert a["step"].tolist() == eval_steps(UNetConfig(**TINY)).tolist() == [2, 4, 10]
    assert a["eps_test"].shape == (3, 2, 2) and a["mem_fraction"].shape == (3, 2)
    assert attrs["coords"]["class"] == [8, 7] and len(attrs["coords"]["time"]) == 2
    assert np.all(np.isfinite(a["loss_train"])) and np.all(a["mem_count"].sum(1) == 12)
    # an existing run is not overwritten without --resume; a different config is refused
    assert main(["simulate", "unet", str(spec), "--out", str(full), "--quiet"]) == 2
    cfg = load_spec({"unet": {**TINY, "classifier_cache": str(tmp_path / "clf.eqx")}}).unet
    with pytest.raises(ValueError, match="different config"):
        train(UNetConfig(**{**TINY, "lr": 2e-3}), full, resume=True, progress=False)
    # killed after step 5 (between evaluations), resumed: identical checkpoints and metrics
    part = tmp_path / "part"
    train(cfg, part, stop_at=5, progress=False)
    assert load_result(part / "metrics.npz")[0]["step"].tolist() == [2, 4]
    train(cfg, part, resume=True, progress=False)
    _assert_same(a, load_result(part / "metrics.npz")[0])
    assert (full / "ckpt" / "latest.eqx").read_bytes() == (part / "ckpt" / "latest.eqx").read_bytes()
    assert (full / "ckpt" / "step_0000004.eqx").read_bytes() == (part / "ckpt" / "step_0000004.eqx").read_bytes()
    s = summarise(full)
    assert s["tau_gen"].shape == (2, 2) and s["tau_mem"].shape == (2,)
    # the theory's orders, recorded by training: the tiny class 8 is uniform noise, the larger variance
    assert s["predicted_order_gen"] == [8, 7] and s["rule"].startswith("d → ∞ theory")
    assert json.loads((full / "summary.json").read_text())["predicted_order_gen"] == [8, 7]


@pytest.mark.slow
def test_extension_until_memorised_is_a_prefix_exact_continuation(tmp_path, monkeypatch):
    """Raising max_train_steps on a finished run continues it exactly as a run started with the cap: same
    metrics rows, same final checkpoint; the target is the one target_step reads off the evaluations."""
    data = write_tiny_fmnist(tmp_path / "data", gz=False)
    monkeypatch.setenv("RFDIFF_FASHION_MNIST", str(data))
    clf = str(tmp_path / "clf.eqx")
    base = UNetConfig(**{**TINY, "classifier_cache": clf})
    capped = dataclasses.replace(base, max_train_steps=60)
    assert eval_steps(capped, extended=True).tolist() == [2, 4, 10, 22, 50]
    from rfdiff.io import load_result

    first = tmp_path / "first"
    train(base, first, progress=False)
    a0 = load_result(first / "metrics.npz")[0]
    with pytest.raises(ValueError, match="needs resume"):
        train(capped, first, progress=False)
    train(capped, first, resume=True, progress=False)
    fresh = tmp_path / "fresh"
    train(capped, fresh, progress=False)
    a, b = load_result(first / "metrics.npz")[0], load_result(fresh / "metrics.npz")[0]
    _assert_same(a, b)
    assert a["step"][:3].tolist() == a0["step"].tolist() == [2, 4, 10]
    _assert_same({k: v[:3] for k, v in a.items()}, a0)
    target = target_step(capped, a["step"], a["mem_fraction"])
    # the tiny network memorises nothing in 50 steps: the run goes on to the last grid point under the cap
    assert not np.any(np.nan_to_num(a["mem_fraction"]) >= 0.5)
    assert a["step"].tolist() == [2, 4, 10, 22, 50] and target == 50
    assert (first / "ckpt" / "latest.eqx").read_bytes() == (fresh / "ckpt" / "latest.eqx").read_bytes()
    assert json.loads((first / "config.json").read_text())["provenance"]["extensions"][0]["from_max_train_steps"] \
        is None
    # lowering the cap, or changing anything else with it, is refused
    with pytest.raises(ValueError, match="different config"):
        train(dataclasses.replace(capped, max_train_steps=30), first, resume=True, progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(dataclasses.replace(capped, max_train_steps=90, lr=2e-3), first, resume=True, progress=False)


def test_target_step_extends_only_while_a_class_has_not_memorised():
    cfg = UNetConfig(train_steps=100, first_eval=1, n_eval=3, max_train_steps=5000)
    assert eval_steps(cfg, extended=True).tolist() == [1, 10, 100, 1000]
    assert eval_steps(dataclasses.replace(cfg, max_train_steps=None), extended=True).tolist() == [1, 10, 100]
    # not yet at train_steps: the target is train_steps
    assert target_step(cfg, [1, 10], [[0.9, 0.9], [0.9, 0.9]]) == 100
    # at train_steps, class 1 never reached 1/2 (NaN = no sample counts as 0): extend to the next grid point
    assert target_step(cfg, [1, 10, 100], [[0, np.nan], [0.2, 0.1], [0.7, 0.49]]) == 1000
    # memorised once (then dropped below) counts: τ_mem is a first crossing
    assert target_step(cfg, [1, 10, 100], [[0, 0.6], [0.2, 0.1], [0.7, 0.4]]) == 100
    # the cap: no grid point past 1000 fits under 5000, so the run ends there whatever the fractions
    assert target_step(cfg, [1, 10, 100, 1000], [[0, 0], [0, 0], [0, 0], [0, 0]]) == 1000
    with pytest.raises(ValueError, match="max_train_steps"):
        UNetConfig(train_steps=100, max_train_steps=50)


def test_summarise_on_constructed_curves(tmp_path):
    from rfdiff.io import save_result

    steps = np.array([10, 100, 1000, 10000])
    eps_te = np.array([[0.8, 0.9], [0.2, 0.5], [-0.4, 0.1], [0.0, -0.2]])[:, :, None]  # (checkpoint, class, time)
    eps_tr = np.array([[0.8, 0.9], [0.0, 0.5], [-2.0, 0.0], [-3.0, -1.5]])[:, :, None]
    mem = np.array([[0.0, 0.0], [0.25, 0.0], [0.75, 0.1], [1.0, 0.7]])
    count = np.array([[40, 0], [40, 30], [40, 30], [40, 30]])  # class 7: no sample assigned at the first checkpoint
    save_result(tmp_path / "metrics.npz", {"step": steps, "eps_test": eps_te, "eps_train": eps_tr,
                                           "mem_fraction": mem, "mem_count": count,
                                           "mem_ci_low": np.zeros((4, 2)), "mem_ci_high": np.zeros((4, 2))},
                {"coords": {"class": [8, 7], "time": [0.02]}, "predicted_order_gen": [8, 7],
                 "predicted_order_mem": [8, 7], "rule": "r", "stats": {}})
    s = summarise(tmp_path)
    # τ_gen: levels (1 + min)/2 = 0.3 (class 8) and 0.4 (class 7), interpolated linearly in log(step)
    np.testing.assert_allclose(s["tau_gen"][:, 0], [10 * 10 ** (5 / 6), 100 * 10 ** 0.25], rtol=1e-12)
    np.testing.assert_allclose(s["tau_onset"][:, 0], [100 * 10 ** 0.5, 1000 * 10 ** (2 / 3)], rtol=1e-12)
    np.testing.assert_allclose(s["tau_mem"], [100 * 10 ** 0.5, 1000 * 10 ** (2 / 3)], rtol=1e-12)
    assert s["tau_best"][0, 0] == 1000 and np.isnan(s["tau_best"][1, 0])  # class 7 still improving at the end
    assert s["order_gen"] == [[8, 7]] and s["order_onset"] == [[8, 7]] and s["order_mem"] == [8, 7]
    assert s["order_best"] == [None]
    # intervals recomputed from the counts (Clopper–Pearson), whatever the file stored (here a collapsed [0, 0]):
    # nothing memorised of 40 still has an upper bound (1 − 0.025^(1/40) = 0.0881), no sample gives NaN
    from rfdiff.simulate.metrics import binomial_interval

    lo, hi = binomial_interval(np.rint(mem[1:] * count[1:]).astype(int), count[1:])
    np.testing.assert_array_equal(s["arrays"]["mem_ci_high"][1:], hi)
    np.testing.assert_array_equal(s["arrays"]["mem_ci_low"][1:], lo)
    assert s["arrays"]["mem_ci_high"][0, 0] == pytest.approx(1 - 0.025 ** (1 / 40), rel=1e-10)
    assert np.isnan(s["arrays"]["mem_ci_high"][0, 1])
    # never reached: +inf; reached at the first checkpoint: NaN (unresolved); both leave the order unresolved
    mem2 = np.array([[0.6, 0.0], [0.7, 0.0], [0.8, 0.1], [0.9, 0.2]])
    save_result(tmp_path / "metrics.npz", {"step": steps, "eps_test": eps_te, "eps_train": eps_tr,
                                           "mem_fraction": mem2, "mem_count": count},
                {"coords": {"class": [8, 7], "time": [0.02]}, "predicted_order_gen": [8, 7],
                 "predicted_order_mem": [8, 7], "rule": "r", "stats": {}})
    s2 = summarise(tmp_path)
    assert np.isnan(s2["tau_mem"][0]) and s2["tau_mem"][1] == np.inf and s2["order_mem"] is None


def test_config_validation():
    with pytest.raises(SpecError, match="did you mean 'channels'"):
        load_spec({"unet": {"chanels": [4]}})
    with pytest.raises(ValueError, match="dtype"):
        UNetConfig(dtype="float16")
    with pytest.raises(ValueError, match="downsample"):
        UNetConfig(downsample=3)
    with pytest.raises(ValueError, match="first_eval"):
        UNetConfig(first_eval=10, train_steps=5)


def test_prediction_is_the_theory_map_and_says_when_unresolved(monkeypatch):
    """Training records the theory's orders (rfdiff.unet.theory_map.theory_prediction with the run's d, n, smallest
    loss time and loss weights); a theory that cannot resolve a time gives None orders and the reason."""
    from rfdiff.unet import theory_map
    from rfdiff.unet.fmnist import ClassStatistics
    from rfdiff.unet.training import UNetConfig, prediction

    st = ClassStatistics(np.array([8, 7]), np.array([10, 10]), np.array([0.5, 0.5]), np.array([0.26, 0.09]),
                         np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2))
    cfg = UNetConfig(classes=(8, 7), downsample=2, loss_times=(0.1, 0.02))
    got = prediction(cfg, st)
    ref = theory_map.theory_prediction(st, d=196, n=20, t=0.02)
    assert got["predicted_order_gen"] == ref.order_gen.tolist() == [8, 7]
    assert got["predicted_order_mem"] == ref.order_mem.tolist() and "t = 0.02" in got["rule"]

    def fail(*a, **k):
        raise ValueError("tau_mem not resolved on the grid")

    monkeypatch.setattr(theory_map, "theory_prediction", fail)
    miss = prediction(cfg, st)
    assert miss["predicted_order_gen"] is None and "unresolved (tau_mem not resolved" in miss["rule"]
