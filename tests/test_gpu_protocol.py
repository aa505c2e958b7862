"""The GPU protocol (validation/gpu/protocol.py) and its FLOP count: the analytic count of an RF trainer step
against XLA's count of the compiled step, and a CPU dry run of the whole protocol at tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from rfdiff import GaussianMixture, RFModel
from rfdiff.finite.features import realise
from rfdiff.simulate.train import TrainConfig, _build

from _fmnist_fixture import write_tiny_fmnist

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not part of the installed package
    sys.path.insert(0, str(ROOT))
from benchmarks._measure import rf_step_flops, xla_flops  # noqa: E402


def _xla_step_flops(d, cv):
    prob = realise(jax.random.key(0), GaussianMixture.create([0.5, 0.5], [4.0, 1.0]),
                   RFModel(2.0, 0.5, 0.05, "tanh"), d)
    cfg = TrainConfig(lr=1e-3, steps=1, noise="fresh", control_variate=cv, dtype="float32", chunk=prob.n)
    run, _, data, state = _build(prob, cfg, None)
    fl = xla_flops(jax.jit(lambda s, dd: run(s, dd, jnp.asarray(0), jnp.asarray(1))), state, data)
    return fl, rf_step_flops(prob.n, d, prob.p, 1, cv)


def test_rf_step_flops_against_xla_count():
    # XLA counts every operation of one step; the analytic count has the matmuls only. The excess (activation,
    # noise generation, elementwise terms) is O(n(d + p)) against O(ndp): measured +4.4 % (none), +3.9 %
    # (simple), +2.9 % (linear) at d = 128, p = 256, and +1.5 % (linear) at d = 256, p = 512 — it halves when d
    # and p double; bounds 10 % and 0.6× (the count is deterministic).
    excess = {}
    for cv in ("none", "simple", "linear"):
        xla, ours = _xla_step_flops(128, cv)
        excess[cv] = xla / ours - 1
        assert 0 <= excess[cv] < 0.10, (cv, excess[cv])
    xla, ours = _xla_step_flops(256, "linear")
    assert 0 <= xla / ours - 1 < 0.6 * excess["linear"]
    with pytest.raises(ValueError, match="control_variate"):
        rf_step_flops(10, 10, 10, 1, "quadratic")
    with pytest.raises(ValueError, match="^d must"):
        rf_step_flops(10, 0, 10)


@pytest.mark.slow
def test_protocol_smoke_run(tmp_path):
    """The prepared command at tiny sizes on CPU: every part runs and the results are complete and coherent."""
    data = write_tiny_fmnist(tmp_path / "data", gz=False)
    out = tmp_path / "out"
    env = {**os.environ, "RFDIFF_FASHION_MNIST": str(data), "PYTHONPATH": str(ROOT), "OUT": str(out)}
    res = subprocess.run([sys.executable, str(ROOT / "validation" / "gpu" / "protocol.py"), "--smoke"],
                         capture_output=True, text=True, env=env, timeout=1800, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads((out / "protocol.json").read_text())
    assert r["smoke"] and not r["errors"], r["errors"]
    thr = r["unet_throughput"]
    assert thr["s_per_step"] > 0 and thr["flops_per_step"] > 0 and thr["n_evals"] == 3
    assert thr["projected_total_s"] == pytest.approx(thr["train_steps"] * thr["s_per_step"]
                                                     + thr["n_evals"] * thr["s_per_eval"])
    (rf,) = r["rf"]
    assert "error" not in rf, rf
    assert rf["steps_per_s"] > 0 and 0 < rf["fraction"] and rf["peak_memory_bytes"] is None  # CPU: no stats
    assert rf["flops_per_step"] == rf_step_flops(rf["n"], rf["d"], rf["p"], 1, "linear")
    run = r["unet_run"]
    assert run["complete"] and run["reached_step"] == 10 and run["evals_done"] == 3 and run["cli_rc"] == 0
    md = (out / "protocol.md").read_text()
    assert "n/a on this backend" in md and "smoke run" in md and "reached step 10 of 10 (complete)" in md


def test_marginal_rate_survives_timer_noise():
    """k / (t(2k) − t(k)) is exact for an affine clock, and when short loops time no longer than shorter ones (a
    loaded CPU; the CI failure that gave NaN steps/s) k doubles until the loop is resolved."""
    sys.path.insert(0, str(ROOT / "validation" / "gpu"))
    try:
        from protocol import _marginal_rate
    finally:
        sys.path.pop(0)
    assert _marginal_rate(lambda k: 0.5 + 1e-3 * k, 10) == pytest.approx(1e3)
    # below 80 steps the launch overhead hides the loop; above it the loop costs 1 ms a step
    seen = []

    def flat_then_linear(k):
        seen.append(k)
        return 0.5 + 1e-3 * max(k - 80, 0)
    assert _marginal_rate(flat_then_linear, 10) == pytest.approx(1e3)  # resolved at k = 80: t(160) − t(80) = 80 ms
    assert max(seen) == 160
    with pytest.raises(RuntimeError, match="cannot resolve"):
        _marginal_rate(lambda k: 0.5, 10)
