import numpy as np
import pytest

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
