"""Sharded, chunked, resumable phase diagrams: sharded == single device, resume == uninterrupted, shard merge."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff.io import load_result
from rfdiff.results import open_result
from rfdiff.sweep import merge_shards, phase_diagram, shard_range

AXES = {"x": np.linspace(0.1, 2.0, 7), "y": np.logspace(-1, 1, 5)}


def _fn(q):
    # a non-trivial float64 computation with a trailing class axis: a few fixed-point steps of a cosine map
    z = jnp.stack([q["x"], q["y"]])
    for _ in range(20):
        z = jnp.cos(z * q["x"]) + q["y"] * 0.1
    return {"z": z, "s": q["x"] ** 2 + jnp.log(q["y"])}


def _reference():
    X, Y = np.meshgrid(AXES["x"], AXES["y"], indexing="ij")
    return X**2 + np.log(Y)


def test_four_virtual_devices_present():
    assert len(jax.devices()) >= 4  # conftest forces 4 host devices; the sharded path is really exercised


def test_grid_values_labels_and_sharded_equals_single(tmp_path):
    one = phase_diagram(_fn, AXES, out_dims={"z": ("class",)}, chunk_size=8, devices=jax.devices()[:1],
                        progress=False)
    many = phase_diagram(_fn, AXES, out_dims={"z": ("class",)}, chunk_size=8, progress=False,
                         path=tmp_path / "pd.nc")
    np.testing.assert_allclose(one["s"], _reference(), rtol=1e-14)
    assert many["z"].shape == (7, 5, 2)
    for k in one:
        np.testing.assert_array_equal(one[k], many[k])  # identical, not just close
    ds = open_result(tmp_path / "pd.nc")
    assert ds["z"].dims == ("x", "y", "class") and ds["s"].dims == ("x", "y")
    np.testing.assert_array_equal(ds["y"].values, AXES["y"])  # float64 coordinates survive netCDF exactly
    assert ds["class"].values.tolist() == [1, 2] and ds.attrs["rfdiff_kind"] == "phase_diagram"
    np.testing.assert_array_equal(ds["z"].values, many["z"])
    as_ds = phase_diagram(_fn, AXES, out_dims={"z": ("class",)}, chunk_size=8, progress=False, as_dataset=True)
    np.testing.assert_array_equal(as_ds["z"].values, many["z"])
    assert not (tmp_path / "pd.nc.partial.npz").exists()
    with pytest.raises(ValueError, match=r"\.nc"):
        phase_diagram(_fn, AXES, progress=False, path=tmp_path / "pd.npz")


def test_resume_after_interruption_gives_identical_result(tmp_path):
    full = phase_diagram(_fn, AXES, chunk_size=4, progress=False)
    path = tmp_path / "r.nc"
    assert phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, max_chunks=3, key={"f": "_fn"}) is None
    part, _ = load_result(str(path) + ".partial.npz")
    assert part["__done__"].sum() == 3 and not path.exists()
    resumed = phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, key={"f": "_fn"})
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k])


def _scaled(scale):
    # fn's output depends on a value the grid does not show (as the CLI's fixed parameters, spec, τ grid)
    return lambda q: {"s": q["x"] ** 2 + jnp.log(q["y"]) * scale}


def test_changed_key_recomputes_same_key_resumes(tmp_path):
    path = tmp_path / "k.nc"
    f1, f3 = _scaled(1.0), _scaled(3.0)
    old = phase_diagram(f1, AXES, chunk_size=4, progress=False, key={"scale": 1.0})
    assert phase_diagram(f1, AXES, chunk_size=4, path=path, progress=False, max_chunks=3,
                         key={"scale": 1.0}) is None
    fresh = phase_diagram(f3, AXES, chunk_size=4, progress=False, key={"scale": 3.0})
    with pytest.raises(ValueError, match=r"cannot resume .*changed: key\)"):
        phase_diagram(f3, AXES, chunk_size=4, path=path, progress=False, key={"scale": 3.0}, resume=True)
    assert phase_diagram(f3, AXES, chunk_size=4, path=path, progress=False, max_chunks=2,
                         key={"scale": 3.0}) is None  # old behaviour: the 3 chunks of scale 1 were kept
    part, attrs = load_result(str(path) + ".partial.npz")
    assert part["__done__"].sum() == 2 and set(attrs["key_inputs"]) == {"axes", "range", "chunk", "devices", "key",
                                                                     "version"}
    resumed = phase_diagram(f3, AXES, chunk_size=4, path=path, progress=False, key={"scale": 3.0}, resume=True)
    np.testing.assert_array_equal(resumed["s"], fresh["s"])  # bit-identical to an uninterrupted run
    np.testing.assert_allclose(fresh["s"] - old["s"], np.broadcast_to(2 * np.log(AXES["y"]), (7, 5)), atol=1e-13)
    assert not (tmp_path / "k.nc.partial.npz").exists()


def test_resume_on_other_devices_is_refused(tmp_path):
    """A batch's solves run in lock step, so the device split moves the last bits: a partial computed on two
    devices is not resumed on one (resume=True names the change; the default recomputes)."""
    devs = jax.local_devices()
    assert len(devs) >= 2  # the root conftest's virtual CPU devices
    path = tmp_path / "d.nc"
    key = {"scale": 1.0}
    assert phase_diagram(_scaled(1.0), AXES, chunk_size=4, path=path, progress=False, max_chunks=2, key=key,
                         devices=devs[:2]) is None
    with pytest.raises(ValueError, match=r"changed: devices"):
        phase_diagram(_scaled(1.0), AXES, chunk_size=4, path=path, progress=False, key=key, resume=True,
                      devices=devs[:1])
    out = phase_diagram(_scaled(1.0), AXES, chunk_size=4, path=path, progress=False, key=key, devices=devs[:1])
    np.testing.assert_array_equal(out["s"], phase_diagram(_scaled(1.0), AXES, chunk_size=4, progress=False,
                                                          key=key, devices=devs[:1])["s"])


def test_shards_merge_to_full_grid(tmp_path):
    full = phase_diagram(_fn, AXES, chunk_size=8, progress=False)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"s{i}.nc")
        phase_diagram(_fn, AXES, chunk_size=8, path=paths[-1], shard=i, num_shards=3, progress=False)
    merged = merge_shards(paths[::-1], out=tmp_path / "merged.nc")
    for k in full:
        np.testing.assert_array_equal(full[k], merged[k].values)
    assert merged["z"].dims[:2] == ("x", "y") and open_result(tmp_path / "merged.nc").identical(merged)
    with pytest.raises(ValueError, match="tile|cover"):
        merge_shards(paths[:2])
    # a shard of another problem (different key) is refused, naming what differs
    other = tmp_path / "other.nc"
    phase_diagram(_fn, AXES, chunk_size=8, path=other, shard=2, num_shards=3, progress=False, key={"spec": "b"})
    with pytest.raises(ValueError, match=r"another problem .*changed: key\)"):
        merge_shards([paths[0], paths[1], other])


def test_shard_range_tiles_and_validates():
    cuts = [shard_range(35, i, 4) for i in range(4)]
    assert cuts[0][0] == 0 and cuts[-1][1] == 35 and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    with pytest.raises(ValueError, match="shard"):
        shard_range(10, 4, 4)
    with pytest.raises(ValueError, match="axis"):
        phase_diagram(_fn, {"x": [], "y": [1.0]}, progress=False)


def test_without_a_key_no_partial_is_reused(tmp_path):
    """fn cannot be hashed: without key= a partial file (possibly of another fn) is never resumed."""
    path = tmp_path / "pd.nc"
    assert phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, max_chunks=3, key={"f": 1}) is None
    other = lambda q: {"s": 10.0 * _fn(q)["s"]}  # noqa: E731  (another function, same grid)
    got = phase_diagram(other, AXES, chunk_size=4, path=path, progress=False)
    np.testing.assert_array_equal(got["s"], phase_diagram(other, AXES, chunk_size=4, progress=False)["s"])
    with pytest.raises(ValueError, match="needs key="):
        phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, resume=True)
    with pytest.raises(ValueError, match="needs key="):
        phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, max_chunks=1)



def test_devices_run_their_blocks_without_collectives():
    """Each device evaluates its own block: the compiled chunk of a fn with a data-dependent while_loop has no
    cross-device all-reduce (under jit(vmap) on sharded inputs every loop predicate was one, the devices
    advanced in lock step and two XLA:CPU host devices with 1024 points each deadlocked in it)."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from rfdiff.sweep import _batched

    def halvings(q):  # iterations depend on the point
        n, _ = jax.lax.while_loop(lambda s: s[1] > q["a"], lambda s: (s[0] + 1, s[1] / 2), (0, jnp.float64(1.0)))
        return {"n": n}

    devs = jax.local_devices()[:2]
    mesh = Mesh(np.array(devs), ("grid",))
    a = jax.device_put(jnp.array([0.3, 1e-3, 0.1, 1e-6]), NamedSharding(mesh, PartitionSpec("grid")))
    fn = _batched(halvings, mesh)
    assert "all-reduce" not in fn.lower({"a": a}).compile().as_text()
    assert np.asarray(fn({"a": a})["n"]).tolist() == [2, 10, 4, 20]
    naive = jax.jit(jax.vmap(halvings)).lower({"a": a}).compile().as_text()
    assert "all-reduce" in naive  # what the shard_map avoids (the property above can fail)


def test_theory_sweep_without_the_global_x64_switch_equals_the_float64_run():
    """A user's process does not switch x64 on globally (the tests do). The sweep of a theory point function used
    to fail there to lower (int32/int64 mismatch inside the batch); now it runs in float64 itself and returns the
    same numbers as under the switch."""
    from rfdiff import GaussianMixture, RFModel
    from rfdiff.theory.phase import timescale_fn

    fn = timescale_fn(GaussianMixture.create([0.5, 0.5], [4.0, 1.0]), RFModel(2.0, 1.0, 0.01, "tanh"),
                      taus=np.logspace(-3, 6, 40))
    axes = {"sigma_ratio": np.array([1.0, 2.0]), "pi1": np.array([0.3, 0.7])}
    with jax.enable_x64(False):
        out = phase_diagram(fn, axes, chunk_size=4, progress=False)
    ref = phase_diagram(fn, axes, chunk_size=4, progress=False)
    assert out["tau_gen"].dtype == np.float64 and out["tau_gen"].shape == (2, 2, 2)
    np.testing.assert_array_equal(out["tau_gen"], ref["tau_gen"])
    np.testing.assert_array_equal(out["tau_mem"], ref["tau_mem"])


def test_checkpoint_is_time_based_and_kept_on_interruption(tmp_path, monkeypatch):
    """The partial file is rewritten at most every CHECKPOINT_EVERY_S seconds (not after each chunk), before an
    early return, and when an exception interrupts the loop; the interrupted run resumes to the same result."""
    import rfdiff.sweep as sw
    import rfdiff.io

    writes = []
    real_save = rfdiff.io.save_result
    monkeypatch.setattr(sw, "save_result", lambda *a, **k: (writes.append(1), real_save(*a, **k))[1])
    full = phase_diagram(_fn, AXES, chunk_size=4, progress=False)
    path = tmp_path / "t.nc"
    # a finished run within the period never writes a partial file (only the result)
    monkeypatch.setattr(sw, "CHECKPOINT_EVERY_S", 1e9)
    phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, key={"f": "_fn"})
    assert writes == [] and path.exists()
    # every chunk past a zero period is saved; an error in the 4th chunk leaves the first 3 in the partial file
    path.unlink()
    monkeypatch.setattr(sw, "CHECKPOINT_EVERY_S", 0.0)
    calls = {"n": 0}

    def failing(q):
        return _fn(q)

    real_batched = sw._batched

    def batched_failing(fn, mesh):
        inner = real_batched(fn, mesh)

        def run(params):
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt
            return inner(params)
        return run

    monkeypatch.setattr(sw, "_batched", batched_failing)
    with pytest.raises(KeyboardInterrupt):
        phase_diagram(failing, AXES, chunk_size=4, path=path, progress=False, key={"f": "_fn"})
    part, _ = load_result(str(path) + ".partial.npz")
    assert part["__done__"].sum() == 3 and len(writes) == 3
    monkeypatch.setattr(sw, "_batched", real_batched)
    monkeypatch.setattr(sw, "CHECKPOINT_EVERY_S", 1e9)
    resumed = phase_diagram(failing, AXES, chunk_size=4, path=path, progress=False, key={"f": "_fn"})
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k])
    assert not (tmp_path / "t.nc.partial.npz").exists()
