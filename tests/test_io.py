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
