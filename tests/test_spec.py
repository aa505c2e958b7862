"""rfdiff.spec: the examples load and round-trip; bad specs fail with one clear SpecError; fingerprints; docs."""

import copy
import glob
import json
import re
import tomllib
from pathlib import Path

import pytest

from rfdiff.spec import PHASE_RANGES, Spec, SpecError, describe_schema, load_spec

EXAMPLES = sorted(glob.glob(str(Path(__file__).resolve().parents[1] / "examples" / "*.toml")))

MIX = {"variances": [4.0, 1.0], "proportions": [0.5, 0.5]}
MODEL = {"psi_p": 4.0, "psi_n": 2.0, "t": 0.01}
BASE = {"mixture": MIX, "model": MODEL}


def with_(section, **kw):
    """BASE with ``kw`` set in ``section`` (a value of ``DEL`` removes the key)."""
    spec = copy.deepcopy(BASE)
    sec = spec.setdefault(section, {})
    for k, v in kw.items():
        if v is DEL:
            sec.pop(k, None)
        else:
            sec[k] = v
    return spec


DEL = object()
SIM = {"steps": 10, "lr": 0.1}

# (spec, expected substring of the message); every message must also be one line.
BAD = [
    # typos, with the suggestion
    (with_("mixture", proportions=DEL, proportion=[0.5, 0.5]),
     "[mixture] unknown key 'proportion' (did you mean 'proportions'?)"),
    (with_("model", activaton="relu"), "[model] unknown key 'activaton' (did you mean 'activation'?)"),
    (with_("model", psi_P=8.0), "[model] unknown key 'psi_P' (did you mean 'psi_p'?)"),
    ({**BASE, "mixtures": {}}, "unknown section 'mixtures' (did you mean 'mixture'?)"),
    ({**BASE, "modle": MODEL}, "unknown section 'modle' (did you mean 'model'?)"),
    ({**BASE, "finite": {"d": 10, "sed": 1}}, "[finite] unknown key 'sed' (did you mean 'seed'?)"),
    ({**BASE, "spectrum": {"num_point": 10}}, "[spectrum] unknown key 'num_point' (did you mean 'num_points'?)"),
    ({"model": 3}, "[model] must be a table"),
    # missing required keys
    (with_("model", t=DEL), "[model] missing required key 't'"),
    (with_("model", psi_p=DEL), "[model] missing required key 'psi_p'"),
    (with_("mixture", variances=DEL), "[mixture] missing required key 'variances'"),
    (with_("mixture", proportions=DEL), "[mixture] give exactly one of 'proportions'"),
    ({**BASE, "finite": {"seed": 0}}, "[finite] missing required key 'd'"),
    ({**BASE, "simulate": {"lr": 0.1}}, "[simulate] missing required key 'steps'"),
    # wrong types
    (with_("model", psi_p="8"), "[model] psi_p must be a float > 0, got '8'"),
    (with_("model", t=True), "[model] t must be a float > 0, got True"),
    ({**BASE, "finite": {"d": 2.5}}, "[finite] d must be an int ≥ 1, got 2.5"),
    ({**BASE, "finite": {"d": True}}, "[finite] d must be an int ≥ 1, got True"),
    ({**BASE, "finite": {"d": 10, "seed": "0"}}, "[finite] seed must be an int ≥ 0, got '0'"),
    (with_("mixture", variances=4.0), "[mixture] variances must be a list"),
    (with_("model", activation="swish"), "[model] activation must be one of"),
    ({**BASE, "simulate": {**SIM, "theory": 1}}, "[simulate] theory must be true or false, got 1"),
    ({**BASE, "simulate": {**SIM, "batch_size": 2.5}}, "[simulate] batch_size must be an int, got 2.5"),
    # negative / zero / out of range
    (with_("model", psi_n=0.0), "[model] psi_n must be a float > 0, got 0.0"),
    (with_("model", t=-1.0), "[model] t must be a float > 0, got -1.0"),
    (with_("mixture", variances=[4.0, -1.0]), "[mixture] variances must be a float > 0, got -1.0"),
    (with_("mixture", proportions=[1.2, -0.2]), "[mixture] proportions must be a float ≥ 0, got -0.2"),
    ({**BASE, "finite": {"d": 0}}, "[finite] d must be an int ≥ 1, got 0"),
    ({**BASE, "finite": {"d": 10, "seed": -1}}, "[finite] seed must be an int ≥ 0, got -1"),
    ({**BASE, "spectrum": {"lam_min": 1.0, "lam_max": 0.5}}, "[spectrum] lam_max must exceed lam_min"),
    ({**BASE, "curves": {"taus": [0.0, 10.0, 5]}}, "[curves] taus needs 0 < lo"),
    ({**BASE, "curves": {"taus": [1.0, 10.0, 1]}}, "[curves] taus num must be an int ≥ 2, got 1"),
    ({**BASE, "curves": {"taus": [10.0, 1.0, 5]}}, "[curves] taus needs lo < hi"),
    ({**BASE, "curves": {"taus": [1.0, 10.0]}}, "[curves] taus must be [lo, hi, num]"),
    ({"mixture": MIX, "simulate": SIM}, "[simulate] needs the section(s) [model], [finite]"),
    ({"model": MODEL, "curves": {}}, "[curves] needs the section(s) [mixture]"),
    ({"mixture": MIX, "speciation": {"theta": 1.0}}, "[speciation] theta must be a float in (0, 1), got 1.0"),
    ({"mixture": MIX, "speciation": {"t_min": 1.0, "t_max": 0.5}}, "[speciation] t_max must exceed t_min"),
    ({"mixture": MIX, "speciation": {"method": "heun"}}, "[speciation] method must be one of ['exponential', 'euler']"),
    # mixture consistency
    (with_("mixture", proportions=[0.5, 0.6]), "[mixture] proportions must sum to 1"),
    (with_("mixture", proportions=[0.2, 0.3, 0.5]), "[mixture] proportions must have 2 entries"),
    (with_("mixture", proportions=DEL, imbalance={"profile": "exp", "ratio": 10.0}),
     "[mixture.imbalance] profile must be one of ['long_tail', 'step']"),
    (with_("mixture", imbalance={"profile": "long_tail", "ratio": 10.0}), "give exactly one of 'proportions'"),
    (with_("mixture", proportions=DEL, imbalance={"profile": "long_tail"}),
     "[mixture.imbalance] missing required key 'ratio'"),
    (with_("mixture", proportions=DEL, imbalance={"profile": "step", "minority_fraction": 1.5}),
     "[mixture.imbalance] minority_fraction must be a float in (0, 1), got 1.5"),
    (with_("mixture", proportions=DEL, imbalance={"profile": "step", "minority_fraction": 0.1, "num_minority": 2}),
     "[mixture.imbalance] num_minority must be in [1, 1]"),
    (with_("mixture", proportions=DEL, imbalance={"profile": "long_tail", "ratio": 10.0, "minority_fraction": 0.1}),
     "[mixture.imbalance] minority_fraction is not used by profile 'long_tail'"),
    (with_("mixture", centroid_gram=[[1.0, 2.0], [2.0, 1.0]]),
     "[mixture] centroid_gram must be positive semi-definite"),
    (with_("mixture", centroid_gram=[[1.0, 0.5], [0.0, 1.0]]), "[mixture] centroid_gram must be symmetric"),
    (with_("mixture", centroid_gram=[[1.0]]), "[mixture] centroid_gram must be a 2x2 matrix"),
    (with_("mixture", centroid_sq_norms=[1.0, 1.0], centroid_cosines=[[1.0, 1.5], [1.5, 1.0]]),
     "[mixture] centroid_cosines must be a float in [-1, 1], got 1.5"),
    (with_("mixture", centroid_sq_norms=[1.0, 1.0, 1.0]), "[mixture] centroid_sq_norms must have 2 entries"),
    (with_("mixture", centroid_sq_norms=[1.0, 1.0], centroid_scaling="medium"),
     "[mixture] centroid_scaling must be one of"),
    (with_("mixture", centroid_sq_norms=[1.0, 1.0], centroid_scaling="weak"),
     "centroid_scaling = 'weak' needs a dimension"),
    (with_("mixture", centroid_sq_norms=[1.0, 1.0], centroid_gram=[[0.0, 0.0], [0.0, 0.0]]), "not both"),
    (with_("mixture", centroid_cosines=[[1.0, 0.0], [0.0, 1.0]]), "[mixture] centroid_cosines needs centroid_sq_norms"),
    (with_("mixture", levels=[[1.0, 4.0], [1.0, 4.0]], level_weights=[0.5, 0.6]),
     "[mixture] level_weights must sum to 1"),
    (with_("mixture", levels=[[1.0, 4.0], [1.0, 4.0]]), "[mixture] missing key 'level_weights'"),
    (with_("mixture", levels=[[1.0, 4.0]], level_weights=[0.5, 0.5]), "[mixture] levels must have 2 rows"),
    # non-finite
    (with_("model", t=float("nan")), "[model] t must be finite, got nan"),
    (with_("mixture", variances=[float("inf"), 1.0]), "[mixture] variances must be finite, got inf"),
    # phase diagram
    ({**BASE, "phase_diagram": {"axes": {"sigma": [0.5, 2.0, 4]}}},
     "[phase_diagram] axes: unknown parameter 'sigma' (did you mean 'sigma_ratio'?)"),
    ({**BASE, "phase_diagram": {"axes": {"pi1": [0.1, 1.5, 4]}}},
     "[phase_diagram] axes.pi1 hi must be a float in (0, 1), got 1.5"),
    ({**BASE, "phase_diagram": {"axes": {"psi_p": [0.0, 2.0, 4]}}},
     "[phase_diagram] axes.psi_p lo must be a float > 0, got 0.0"),
    ({**BASE, "phase_diagram": {"axes": {"t": [0.1, 1.0, 1]}}},
     "[phase_diagram] axes.t num must be an int ≥ 2, got 1"),
    ({**BASE, "phase_diagram": {"fixed": {"pi1": 1.5}}},
     "[phase_diagram] fixed.pi1 must be a float in (0, 1), got 1.5"),
    ({**BASE, "phase_diagram": {"fixed": {"psi_p": 0.0}}}, "[phase_diagram] fixed.psi_p must be a float > 0, got 0.0"),
    ({**BASE, "phase_diagram": {"fixed": {"t": -1.0}}}, "[phase_diagram] fixed.t must be a float > 0, got -1.0"),
    ({**BASE, "phase_diagram": {"fixed": {"sigma_ratio": 0.0}}},
     "[phase_diagram] fixed.sigma_ratio must be a float > 0"),
    ({**BASE, "phase_diagram": {"fixed": {"separation": -1.0}}},
     "[phase_diagram] fixed.separation must be a float ≥ 0"),
    ({**BASE, "phase_diagram": {"fixed": {"psi_n": "2"}}}, "[phase_diagram] fixed.psi_n must be a float > 0, got '2'"),
    ({**BASE, "phase_diagram": {"axes": {"t": [0.1, 1.0, 4]}, "fixed": {"t": 0.5}}},
     "[phase_diagram] fixed must not repeat an axis"),
    # simulate / unet
    ({**BASE, "simulate": {"steps": 10, "lr": 0.1, "lr_frac": 0.3}}, "[simulate] give exactly one of 'lr'"),
    ({**BASE, "simulate": {"steps": 10}}, "[simulate] give exactly one of 'lr'"),
    ({**BASE, "simulate": {**SIM, "nosie": "fresh"}}, "[simulate] unknown key 'nosie' (did you mean 'noise'?)"),
    ({**BASE, "simulate": {**SIM, "noise": "pink"}}, "[simulate] noise must be one of"),
    ({**BASE, "simulate": {**SIM, "steps": 0}}, "[simulate] steps must be an int ≥ 1, got 0"),
    ({**BASE, "simulate": {**SIM, "checkpoint_dir": "x"}}, "[simulate] unknown key 'checkpoint_dir'"),
    ({"unet": {"chanels": [8, 16]}}, "[unet] unknown key 'chanels' (did you mean 'channels'?)"),
    ({"unet": {"eval": {"n_evals": 3}}}, "[unet.eval] unknown key 'n_evals' (did you mean 'n_eval'?)"),
    ({"unet": {"channels": [8, 16.5]}}, "[unet] channels must be an int, got 16.5"),
    ({"unet": {"dtype": "float16"}}, "[unet] dtype must be 'float32' or 'bfloat16'"),
    ({"unet": {"n_eval": 4, "eval": {"n_eval": 5}}}, "[unet] key 'n_eval' is given both"),
]


def _ids():
    return [re.sub(r"\W+", "_", msg)[:60] for _, msg in BAD]


@pytest.mark.parametrize("spec,expected", BAD, ids=_ids())
def test_bad_spec_raises_one_clear_line(spec, expected):
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg
    assert isinstance(info.value, ValueError)


def test_table_is_large_enough():
    assert len(BAD) >= 45


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).stem)
def test_examples_load_and_round_trip(path):
    spec = load_spec(path)
    d = spec.to_dict()
    assert json.loads(json.dumps(d)) == d  # plain JSON types
    again = load_spec(d)
    assert again == spec
    assert again.fingerprint() == spec.fingerprint()
    raw = tomllib.loads(Path(path).read_text())
    for name in raw:
        assert getattr(spec, name) is not None
    if spec.mixture is not None:
        mix = spec.build_mixture()
        assert mix.num_classes == len(raw["mixture"]["variances"])
    if spec.model is not None:
        assert spec.build_model().activation == raw["model"].get("activation", "tanh")


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\npsi_p = 1\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_resolution_and_builders():
    spec = load_spec({"mixture": {"variances": [1.0, 1.0, 1.0], "imbalance": {"profile": "step",
                                                                              "minority_fraction": 0.1}},
                      "finite": {"d": 50}, "speciation": {}})
    assert spec.mixture.imbalance.num_minority == 1
    assert spec.speciation.d == 50 and spec.speciation.seed == 0  # from [finite]
    assert spec.model is None and spec.simulate is None
    assert abs(sum(spec.mixture.resolved_proportions()) - 1.0) < 1e-12
    assert spec.build_mixture().num_classes == 3
    with pytest.raises(SpecError, match=r"no \[model\] section"):
        spec.build_model()
    weak = load_spec(with_("mixture", centroid_sq_norms=[4.0, 4.0], centroid_scaling="weak") | {"finite": {"d": 8}})
    assert float(weak.build_mixture().centroid_gram[0, 0]) == pytest.approx(0.5)
    assert float(weak.build_mixture(d=4).centroid_gram[0, 0]) == pytest.approx(1.0)
    spec = load_spec(with_("mixture", centroid_sq_norms=[4.0, 4.0], centroid_scaling="weak")
                     | {"speciation": {"d": 16}})
    assert float(spec.build_mixture().centroid_gram[0, 0]) == pytest.approx(0.25)  # d from [speciation]
    sim = load_spec({**BASE, "finite": {"d": 10}, "simulate": {"steps": 5, "lr_frac": 0.3}}).simulate
    cfg = sim.train_config(0.2, checkpoint_dir="ck")
    assert (cfg.steps, cfg.lr, cfg.checkpoint_dir) == (5, 0.2, "ck")
    assert Spec() == load_spec({})


def test_phase_ranges_cover_phase_parameters():
    from rfdiff.theory.phase import PARAMETERS

    assert set(PHASE_RANGES) == set(PARAMETERS)


def test_fingerprint_tracks_content_not_key_order():
    base = load_spec(EXAMPLES[0]).to_dict()
    fp = load_spec(base).fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    reordered = {s: dict(reversed(list(sec.items()))) for s, sec in reversed(list(base.items()))}
    assert load_spec(reordered).fingerprint() == fp
    # int vs float spelling of the same number is the same content
    assert load_spec(with_("model", psi_p=4)).fingerprint() == load_spec(BASE).fingerprint()
    seen = {fp}
    for section, sec in base.items():
        for k, v in sec.items():
            changed = copy.deepcopy(base)
            if isinstance(v, bool):
                new = not v
            elif isinstance(v, int):
                new = v + 1
            elif isinstance(v, float):
                new = v * 1.5
            elif k == "activation":
                new = "relu"
            elif k == "taus":
                new = [v[0], v[1] * 2, v[2]]
            elif k == "proportions":
                new = [0.25, 0.75]
            elif k == "variances":
                new = [v[0] * 2, v[1]]
            elif k in ("axes", "fixed"):
                new = {**v, "t": [0.01, 0.1, 3] if k == "axes" else 0.02}
            else:
                continue
            changed[section][k] = new
            f = load_spec(changed).fingerprint()
            assert f not in seen, (section, k)
            seen.add(f)
    assert len(seen) > 10


def test_describe_schema_mentions_every_example_key():
    text = describe_schema()
    assert text.startswith("# rfdiff spec schema")
    for path in EXAMPLES:
        for section, sec in tomllib.loads(Path(path).read_text()).items():
            assert f"## [{section}]" in text
            for k, v in sec.items():
                if isinstance(v, dict) and k in ("imbalance", "eval"):
                    assert f"[{section}.{k}]" in text
                    names = list(v)
                else:
                    names = [k]
                for n in names:
                    assert f"`{n}`" in text, (path, section, n)


def test_toml_file_with_the_three_typos_fails_on_the_first(tmp_path):
    path = tmp_path / "typos.toml"
    path.write_text('[mixture]\nvariances = [4.0, 1.0]\nproportion = [0.9, 0.1]\n\n'
                    '[model]\nactivaton = "relu"\npsi_P = 2.0\npsi_n = 1.0\nt = 0.01\n')
    with pytest.raises(SpecError, match=r"\[model\] unknown key 'activaton' \(did you mean 'activation'\?\)"):
        load_spec(path)  # [model] is parsed before [mixture], so its first typo is the one reported ...
    path.write_text('[mixture]\nvariances = [4.0, 1.0]\nproportion = [0.9, 0.1]\n\n[model]\npsi_p = 2.0\n'
                    'psi_n = 1.0\nt = nan\n')
    with pytest.raises(SpecError, match=r"\[model\] t must be finite, got nan"):
        load_spec(path)  # ... and so is a non-finite TOML value


def test_build_mixture_profiles_and_centroids(tmp_path):
    """Moved from the old io parser: profiles and both centroid scalings build the right mixture."""
    import numpy as np

    from rfdiff import GaussianMixture, proportions_long_tail

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
    mix = load_spec(spec).build_mixture()
    np.testing.assert_allclose(mix.proportions, proportions_long_tail(3, 100.0))
    np.testing.assert_allclose(np.diag(np.asarray(mix.centroid_gram)), [4.0, 1.0, 0.0])
    weak = load_spec({"mixture": {"variances": [1, 1], "proportions": [0.5, 0.5], "centroid_sq_norms": [40, 40],
                                  "centroid_scaling": "weak"}, "finite": {"d": 400}}).build_mixture()
    np.testing.assert_allclose(np.diag(np.asarray(weak.centroid_gram)), [0.1, 0.1])
    assert isinstance(weak, GaussianMixture)



def test_shipped_schema_reference_is_the_generated_one():
    """examples/SCHEMA.md is `rfdiff schema` output: regenerate it when the schema changes."""
    from pathlib import Path

    shipped = (Path(__file__).resolve().parents[1] / "examples" / "SCHEMA.md").read_text()
    assert shipped.strip() == describe_schema().strip(), "run: rfdiff schema > examples/SCHEMA.md"
