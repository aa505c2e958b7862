"""Speciation checkpoints are content-addressed: a changed input recomputes (or, with resume=True, is refused
naming the change), a killed run resumes bit-identically, and a completed run leaves no checkpoint behind."""

import jax
import numpy as np
import pytest

import rfdiff
import rfdiff.simulate.speciation as spc
from rfdiff.simulate.sampling import geometric_grid
from rfdiff.simulate.speciation import simulate_posteriors, speciation_vs_ratio

TS = geometric_grid(6.0, 1e-2, 30)
D, N, CHUNK = 16, 50, 20  # three chunks (20, 20, 10)


def two_class(sq_norm, p_min=0.3):
    mix = rfdiff.GaussianMixture.create([1.0 - p_min, p_min], [1.0, 1.0])
    return mix.with_strong_centroids([sq_norm, sq_norm], [[1.0, -1.0], [-1.0, 1.0]])


def _run(mix, ck=None, **kw):
    mu = mix.centroids(jax.random.key(1), D)
    return simulate_posteriors(None, mix, mu, jax.random.key(4), TS, N, chunk=CHUNK, checkpoint_dir=ck, **kw)


class Killed(Exception):
    pass


def _kill_after(monkeypatch, calls: int):
    """Make the backward SDE raise after ``calls`` chunks (a run killed mid-way); returns the call counter."""
    real, count = spc.backward_sde, [0]

    def sde(*a, **k):
        if count[0] >= calls:
            raise Killed
        count[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(spc, "backward_sde", sde)
    return count


def test_changed_mixture_in_the_same_checkpoint_recomputes(tmp_path):
    ck = tmp_path / "ck"
    a = _run(two_class(1.0), ck, keep_checkpoint=True)
    assert len(list(ck.glob("chunk_*.npz"))) == 3
    b = _run(two_class(2.0), ck, keep_checkpoint=True)  # old behaviour: the chunks of `a` came back
    fresh = _run(two_class(2.0))
    np.testing.assert_array_equal(b.log_post, fresh.log_post)
    assert not np.array_equal(a.log_post, b.log_post)
    # an unchanged problem reuses the kept chunks without simulating anything
    with pytest.MonkeyPatch.context() as mp:
        count = _kill_after(mp, 0)
        again = _run(two_class(2.0), ck, resume=True)
        assert count[0] == 0
    np.testing.assert_array_equal(again.log_post, fresh.log_post)
    assert not ck.exists()  # completed without keep_checkpoint: removed


def test_kill_and_resume_is_bit_identical_and_cleans_up(tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    full = _run(two_class(1.0))
    _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        _run(two_class(1.0), ck)
    assert sorted(p.name for p in ck.glob("chunk_*.npz")) == ["chunk_00000.npz", "chunk_00001.npz"]
    monkeypatch.undo()
    count = _kill_after(monkeypatch, 10)
    resumed = _run(two_class(1.0), ck, resume=True)
    assert count[0] == 1  # only the missing chunk was simulated
    np.testing.assert_array_equal(resumed.log_post, full.log_post)
    assert not ck.exists()


@pytest.mark.parametrize("change, name", [({"mix": two_class(2.0)}, "mixture"), ({"ts": TS[:-1]}, "t_grid"),
                                          ({"n": N + 1}, "n"), ({"method": "euler"}, "method")])
def test_explicit_resume_with_changed_input_names_it(tmp_path, monkeypatch, change, name):
    ck = tmp_path / "ck"
    _kill_after(monkeypatch, 1)
    with pytest.raises(Killed):
        _run(two_class(1.0), ck)
    monkeypatch.undo()
    mix = change.get("mix", two_class(1.0))
    mu = mix.centroids(jax.random.key(1), D)
    with pytest.raises(ValueError, match=rf"cannot resume .*changed: [^)]*\b{name}\b"):
        simulate_posteriors(None, mix, mu, jax.random.key(4), change.get("ts", TS), change.get("n", N),
                            chunk=CHUNK, method=change.get("method", "exponential"), checkpoint_dir=ck,
                            resume=True)
    assert (ck / "chunk_00000.npz").is_file()  # refused, not cleared


def test_custom_score_needs_a_score_key(tmp_path):
    mix = two_class(1.0)
    mu = mix.centroids(jax.random.key(1), D)
    with pytest.raises(ValueError, match="score_key"):
        simulate_posteriors(lambda x, t: -x, mix, mu, jax.random.key(4), TS, N, checkpoint_dir=tmp_path / "ck")
    a = simulate_posteriors(lambda x, t: -x, mix, mu, jax.random.key(4), TS, N, chunk=CHUNK,
                            checkpoint_dir=tmp_path / "ck", score_key="standard normal", keep_checkpoint=True)
    b = simulate_posteriors(lambda x, t: -2.0 * x, mix, mu, jax.random.key(4), TS, N, chunk=CHUNK,
                            checkpoint_dir=tmp_path / "ck", score_key="scaled by 2")
    c = simulate_posteriors(lambda x, t: -2.0 * x, mix, mu, jax.random.key(4), TS, N, chunk=CHUNK)
    np.testing.assert_array_equal(b.log_post, c.log_post)
    assert not np.array_equal(a.log_post, b.log_post)


def test_speciation_vs_ratio_rerun_with_changed_centroids_gives_fresh_numbers(tmp_path, monkeypatch):
    # the measured bug: same --out, changed centroid norm, the old trajectories' times came back
    kw = dict(theta=0.9, n=60, t_max=6.0, t_min=1e-2, num_steps=30, chunk=25, n_boot=20)
    ck = tmp_path / "out.ckpt"
    _kill_after(monkeypatch, 4)  # ratio 0 complete (3 chunks), ratio 1 killed after one chunk
    with pytest.raises(Killed):
        speciation_vs_ratio(two_class(1.0), D, [1.0, 4.0], checkpoint_dir=ck, **kw)
    monkeypatch.undo()
    assert {p.name for p in ck.iterdir()} == {"ratio_000", "ratio_001"}
    with pytest.raises(ValueError, match=r"changed: centroids, mixture\)"):
        speciation_vs_ratio(two_class(2.0), D, [1.0, 4.0], checkpoint_dir=ck, resume=True, **kw)
    new = speciation_vs_ratio(two_class(2.0), D, [1.0, 4.0], checkpoint_dir=ck, **kw)
    fresh = speciation_vs_ratio(two_class(2.0), D, [1.0, 4.0], **kw)
    old = speciation_vs_ratio(two_class(1.0), D, [1.0, 4.0], **kw)
    for k in ("sim", "se", "counts"):
        np.testing.assert_array_equal(new[k], fresh[k])
    assert not np.array_equal(new["sim"], old["sim"])
    assert not ck.exists()
