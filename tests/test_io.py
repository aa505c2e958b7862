import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rfdiff
from rfdiff import GaussianMixture, RFModel
from rfdiff.io import atomic_write_text, load_result, save_result


def test_save_load_roundtrip_is_self_describing(tmp_path):
    arrays = {"tau_gen": np.arange(6.0).reshape(2, 3), "labels": np.array([0, 1])}
    attrs = {"dims": {"tau_gen": ["class", "psi_p"]}, "coords": {"psi_p": np.array([1.0, 2.0, 4.0])}}
    path = save_result(tmp_path / "r.npz", arrays, attrs)
    got, got_attrs = load_result(path)
    np.testing.assert_array_equal(got["tau_gen"], arrays["tau_gen"])
    assert got_attrs["dims"]["tau_gen"] == ["class", "psi_p"]
    assert got_attrs["coords"]["psi_p"] == [1.0, 2.0, 4.0]
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]  # no temporary file left behind


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    class Boom(Exception):
        pass

    class Bad:
        def encode(self):
            raise Boom

    with pytest.raises(Boom):
        atomic_write_text(path, Bad())
    assert path.read_text() == "old"
    assert len(list(tmp_path.iterdir())) == 1


def test_written_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save_result(tmp_path / "r.npz", {"x": np.ones(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600


def test_corrupt_and_truncated_results_name_the_file(tmp_path):
    from rfdiff.errors import ResultFileError

    good = save_result(tmp_path / "good.npz", {"x": np.arange(100.0)}, {"dims": {"x": ["i"]}})
    (tmp_path / "trunc.npz").write_bytes(good.read_bytes()[:80])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    for name in ("trunc.npz", "junk.npz"):
        with pytest.raises(ResultFileError, match=name):
            load_result(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_result(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------------- content_key
def _mix(**kw):
    args = {"proportions": [0.3, 0.7], "variances": [1.0, 2.0], "centroid_gram": [[1.0, 0.0], [0.0, 1.0]], **kw}
    return GaussianMixture.create(args.pop("proportions"), args.pop("variances"), **args)


def test_content_key_is_canonical():
    from rfdiff.io import content_key

    a = {"b": 1, "a": {"y": [2.0, "s"], "x": None}}
    b = {"a": {"x": None, "y": [2, "s"]}, "b": 1.0}  # other order; ints and floats of equal value
    assert content_key(a) == content_key(b) == content_key(a)
    assert content_key(spec=a, d=3) == content_key(d=3, spec=b)
    assert len(content_key(a)) == 64 and int(content_key(a), 16) >= 0
    assert content_key(_mix()) == content_key(_mix())  # equal modules built twice
    assert content_key(np.arange(3.0)) == content_key(jnp.arange(3.0, dtype=jnp.float64))
    assert content_key(1, 2) != content_key(2, 1) and content_key(x=1) != content_key(y=1)
    assert content_key(x=1) != content_key(1)


def test_content_key_is_sensitive_to_every_leaf_dtype_and_shape():
    from rfdiff.io import content_key

    base = content_key(_mix())
    # every array leaf of the mixture, one entry at a time
    mix = _mix()
    for name in ("proportions", "variances", "centroid_gram", "levels", "level_weights"):
        leaf = np.asarray(getattr(mix, name), np.float64)
        for idx in np.ndindex(leaf.shape):
            bumped = leaf.copy()
            bumped[idx] = np.nextafter(bumped[idx], np.inf)  # one ulp
            changed = eqx.tree_at(lambda m: getattr(m, name), mix, jnp.asarray(bumped))
            assert content_key(changed) != base, (name, idx)
    model = RFModel(2.0, 1.0, 0.1, "tanh")
    assert content_key(model) != content_key(RFModel(2.0, 1.0, 0.1, "relu"))  # a static field
    assert content_key(model) != content_key(RFModel(2.0, 1.0, np.nextafter(0.1, 1.0), "tanh"))
    x = np.arange(6.0)
    assert content_key(x) != content_key(x.astype(np.float32))  # dtype
    assert content_key(x) != content_key(x.reshape(2, 3))  # shape, same bytes
    assert content_key({"a": [1.0, 2.0]}) != content_key({"a": [1.0, 2.0, 0.0]})
    assert content_key(jax.random.key(0)) != content_key(jax.random.key(1))
    assert content_key(0.1) != content_key(np.nextafter(0.1, 1.0)) and content_key("1") != content_key(1)
    assert content_key(2**60) != content_key(2**60 + 1)  # beyond float64: exact digits


def test_content_key_depends_on_version_and_refuses_opaque_objects(monkeypatch):
    import rfdiff.io as rio

    k = rio.content_key(a=1)
    assert rio.package_version() == rfdiff.__version__
    monkeypatch.setattr(rio, "package_version", lambda: "999.0")
    assert rio.content_key(a=1) != k
    assert rio.key_digests(a=1)["version"] == "999.0"
    with pytest.raises(TypeError, match="cannot hash fn of type function"):
        rio.content_key(fn=lambda x: x)
    with pytest.raises(TypeError, match="non-string dict key"):
        rio.content_key({1: 2})


def test_changed_inputs_names_the_difference():
    from rfdiff.io import changed_inputs, key_digests

    old = key_digests(mixture=_mix(), n=10, method="euler")
    new = key_digests(mixture=_mix(variances=[1.0, 3.0]), n=10, method="exponential")
    assert changed_inputs(old, new) == ["method", "mixture"]
    assert changed_inputs(old, old) == []
    assert changed_inputs(None, {"n": "x"}) == ["n"]


# ------------------------------------------------------------------------------ labelled netCDF results
def _dataset():
    from rfdiff.results import build, class_coords, provenance

    rng = np.random.default_rng(0)
    return build(None, {"eps_test": (("class", "tau"), rng.normal(size=(3, 5))),
                        "counts": (("class",), np.array([1, 2**31 - 1, -5], dtype=np.int64)),
                        "exists": ((), np.bool_(True)), "tau_gen": (("class",), np.array([np.inf, np.nan, -0.0]))},
                 coords={"tau": np.logspace(-3, 3, 5), **class_coords(3, ["a", "bb", "c c"])},
                 attrs={**provenance("curves", {"model": {"t": 0.1}, "finite": {"seed": 7}}, title="demo"),
                        "nested": {"x": [1, 2]}, "none": None})


def test_result_round_trip_is_exact_and_self_describing(tmp_path):
    import xarray as xr

    from rfdiff.results import PROVENANCE, attr_json, open_result, write

    ds = _dataset()
    path = write(tmp_path / "r.nc", ds)
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]  # atomic: no temporary file left behind
    assert path.read_bytes()[:4] == b"CDF\x02"  # netCDF3, 64-bit offset
    back = open_result(path)
    assert back.identical(ds)  # values (inf, NaN, -0.0), dtypes, coords, attrs
    with xr.open_dataset(path, engine="scipy") as plain:  # any xarray reads it, no rfdiff needed
        assert plain["eps_test"].dims == ("class", "tau") and plain["class"].values.tolist() == [1, 2, 3]
        assert plain["class_name"].values.tolist() == ["a", "bb", "c c"]
    assert back["counts"].dtype == np.int32 and back["exists"].dtype == np.int8  # what netCDF3 can store
    assert set(PROVENANCE) <= set(back.attrs) and attr_json(back, "seeds") == {"finite": 7}
    assert attr_json(back, "spec") == {"model": {"t": 0.1}, "finite": {"seed": 7}}
    assert attr_json(back, "nested") == {"x": [1, 2]} and back.attrs["none"] == "none"
    for name, var in back.variables.items():
        assert var.attrs["long_name"] and var.attrs["units"] != "unknown", name
    with pytest.raises(ValueError, match=r"end in \.nc"):
        write(tmp_path / "r.npz", ds)
    with pytest.raises(ValueError, match="lacks the provenance"):
        bare = ds.copy()
        bare.attrs = {}
        write(tmp_path / "q.nc", bare)
    from rfdiff.results import build

    with pytest.raises(ValueError, match="int32 range"):
        build("curves", {"big": (("i",), np.array([2**40]))})
    # a name the table lacks is marked, never given a made-up unit
    assert build("curves", {"foo": (("i",), np.ones(2))})["foo"].attrs["units"] == "unknown"


def test_old_npz_results_are_read_and_converted(tmp_path, capsys):
    """An rfdiff 0.1 spectrum.npz (dims lam/class, 0-based classes, spec as a dict) reads as the new Dataset,
    and `rfdiff convert` writes the identical .nc next to it."""
    from rfdiff.cli import main
    from rfdiff.results import attr_json, open_result

    lam = np.geomspace(1e-2, 10, 6)
    cd = np.arange(12.0).reshape(6, 2)
    spec = {"mixture": {"proportions": [0.5, 0.5]}, "finite": {"seed": 3}}
    old = save_result(tmp_path / "spectrum.npz", {"lam": lam, "density": cd.sum(1), "class_density": cd,
                                                  "edges": np.array([[0.1, 2.0]])},
                      {"dims": {"lam": ["lam"], "density": ["lam"], "class_density": ["lam", "class"],
                                "edges": ["bulk", "side"]},
                       "coords": {"lam": lam.tolist(), "class": [0, 1], "side": ["lower", "upper"]},
                       "spec": spec, "rfdiff_version": "0.1.0", "atom_mass": 0.2})
    ds = open_result(old)
    assert ds.attrs["rfdiff_kind"] == "spectrum" and ds["class_density"].dims == ("lambda", "class")
    np.testing.assert_array_equal(ds["lambda"].values, lam)
    np.testing.assert_array_equal(ds["class_density"].sel({"class": 2}).values, cd[:, 1])  # class 0 -> 1
    assert attr_json(ds, "spec") == spec and attr_json(ds, "seeds") == {"finite": 3}
    assert ds.attrs["atom_mass"] == 0.2 and ds["side"].values.tolist() == ["lower", "upper"]
    assert main(["convert", str(old), "-q"]) == 0
    assert open_result(tmp_path / "spectrum.nc").identical(ds)


def test_bad_result_files_are_one_line_errors_naming_the_file(tmp_path):
    import xarray as xr

    from rfdiff.errors import ResultFileError
    from rfdiff.results import open_result, write

    good = write(tmp_path / "good.nc", _dataset()).read_bytes()
    (tmp_path / "trunc.nc").write_bytes(good[:200])
    (tmp_path / "junk.nc").write_bytes(b"junk" * 10)
    xr.Dataset({"x": ("i", np.ones(3))}).to_netcdf(tmp_path / "foreign.nc", engine="scipy")
    np.savez(tmp_path / "foreign.npz", x=np.ones(3))
    for name in ("trunc.nc", "junk.nc", "foreign.nc", "foreign.npz"):
        with pytest.raises(ResultFileError) as err:
            open_result(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="missing.nc"):
        open_result(tmp_path / "missing.nc")


def test_help_and_import_do_not_load_xarray():
    import subprocess
    import sys

    code = ("import sys\nimport rfdiff, rfdiff.results, rfdiff.io\nfrom rfdiff.cli import main\n"
            "for argv in (['--help'], ['convert', '--help'], ['merge', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'xarray' not in sys.modules and 'pandas' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
