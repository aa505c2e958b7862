"""Sharded, chunked, resumable phase diagrams: sharded == single device, resume == uninterrupted, shard merge."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff.io import load_result
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
                         path=tmp_path / "pd.npz", out_coords={"class": [0, 1]})
    np.testing.assert_allclose(one["s"], _reference(), rtol=1e-14)
    assert many["z"].shape == (7, 5, 2)
    for k in one:
        np.testing.assert_array_equal(one[k], many[k])  # identical, not just close
    arrs, attrs = load_result(tmp_path / "pd.npz")
    assert attrs["dims"]["z"] == ["x", "y", "class"] and attrs["dims"]["s"] == ["x", "y"]
    np.testing.assert_allclose(attrs["coords"]["y"], AXES["y"])
    np.testing.assert_array_equal(arrs["z"], many["z"])
    assert not (tmp_path / "pd.npz.partial.npz").exists()


def test_resume_after_interruption_gives_identical_result(tmp_path):
    full = phase_diagram(_fn, AXES, chunk_size=4, progress=False)
    path = tmp_path / "r.npz"
    assert phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False, max_chunks=3) is None
    part, _ = load_result(str(path) + ".partial.npz")
    assert part["__done__"].sum() == 3 and not path.exists()
    resumed = phase_diagram(_fn, AXES, chunk_size=4, path=path, progress=False)
    for k in full:
        np.testing.assert_array_equal(full[k], resumed[k])


def test_shards_merge_to_full_grid(tmp_path):
    full = phase_diagram(_fn, AXES, chunk_size=8, progress=False)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"s{i}.npz")
        phase_diagram(_fn, AXES, chunk_size=8, path=paths[-1], shard=i, num_shards=3, progress=False)
    arrs, attrs = merge_shards(paths[::-1], out=tmp_path / "merged.npz")
    for k in full:
        np.testing.assert_array_equal(full[k], arrs[k])
    assert attrs["dims"]["z"][:2] == ["x", "y"]
    with pytest.raises(ValueError, match="tile|cover"):
        merge_shards(paths[:2])


def test_shard_range_tiles_and_validates():
    cuts = [shard_range(35, i, 4) for i in range(4)]
    assert cuts[0][0] == 0 and cuts[-1][1] == 35 and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    with pytest.raises(ValueError, match="shard"):
        shard_range(10, 4, 4)
    with pytest.raises(ValueError, match="axis"):
        phase_diagram(_fn, {"x": [], "y": [1.0]}, progress=False)


@pytest.mark.slow
def test_cli_phase_diagram_shards_merge_to_single_run(tmp_path):
    from rfdiff.cli.main import main

    spec = tmp_path / "s.toml"
    spec.write_text('[mixture]\nvariances = [1.0, 1.0]\n[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\n'
                    '[curves]\ntaus = [1e-3, 1e6, 40]\n')
    common = [str(spec), "--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:2", "--chunk-size", "4"]
    assert main(["phase-diagram", *common, "--out", str(tmp_path / "full.npz")]) == 0
    for i in range(2):
        assert main(["phase-diagram", *common, "--shard", str(i), "--num-shards", "2",
                     "--out", str(tmp_path / f"s{i}.npz")]) == 0
    merged, attrs = merge_shards([tmp_path / "s0.npz", tmp_path / "s1.npz"])
    full, fattrs = load_result(tmp_path / "full.npz")
    assert fattrs["dims"]["tau_gen"] == ["sigma_ratio", "pi1", "class"] == attrs["dims"]["tau_gen"]
    for k in full:
        np.testing.assert_array_equal(full[k], merged[k])
    # weak centroids: the higher-variance class (class 0 when σ_1/σ_2 > 1) generalises first
    assert np.all(full["tau_gen"][-1, :, 0] < full["tau_gen"][-1, :, 1])
    assert main(["phase-diagram", str(spec), "--axis", "bogus=0:1:2", "--out", str(tmp_path / "x.npz")]) == 2
