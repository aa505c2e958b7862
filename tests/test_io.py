import numpy as np
import pytest

from rfdiff import GaussianMixture, proportions_long_tail
from rfdiff.io import atomic_write_text, load_result, load_spec, mixture_from_spec, save_result


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


def test_mixture_from_spec_profiles_and_centroids(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text("""
[mixture]
variances = [1.0, 2.0, 4.0]
centroid_sq_norms = [4.0, 1.0, 0.0]
centroid_scaling = "strong"
[mixture.imbalance]
profile = "long_tail"
ratio = 100.0
""")
    mix = mixture_from_spec(load_spec(spec))
    np.testing.assert_allclose(mix.proportions, proportions_long_tail(3, 100.0))
    np.testing.assert_allclose(np.diag(np.asarray(mix.centroid_gram)), [4.0, 1.0, 0.0])
    weak = mixture_from_spec({"mixture": {"variances": [1, 1], "centroid_sq_norms": [40, 40],
                                          "centroid_scaling": "weak"}, "finite": {"d": 400}})
    np.testing.assert_allclose(np.diag(np.asarray(weak.centroid_gram)), [0.1, 0.1])
    assert isinstance(weak, GaussianMixture)


@pytest.mark.parametrize("section, match", [
    ({"proportions": [0.5, 0.5]}, "needs 'variances'"),
    ({"variances": [1, 1], "proportions": [0.5, 0.2, 0.3]}, "proportions has 3 entries"),
    ({"variances": [1, 1], "imbalance": {"profile": "zipf"}}, "profile must be"),
    ({"variances": [1, 1], "centroid_sq_norms": [1, 1], "centroid_scaling": "weak"}, "needs a dimension"),
    ({"variances": [1, -1]}, "variances must be positive"),
])
def test_bad_spec_errors_name_the_field(section, match):
    with pytest.raises(ValueError, match=match):
        mixture_from_spec({"mixture": section})


def test_load_spec_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mixture\nvariances = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(bad)
