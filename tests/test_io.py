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
