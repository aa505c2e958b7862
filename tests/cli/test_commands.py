"""Every subcommand end to end at tiny size: labelled results with provenance in ``--out DIR``, data on stdout and
diagnostics on stderr, the numbers equal to the library's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rfdiff
from rfdiff.cli import main
from rfdiff.io import load_result
from rfdiff.simulate.train import TrainLog
from rfdiff.spec import load_spec
from rfdiff.sweep import merge_shards
from rfdiff.theory import speciation as sp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _provenance_ok(attrs, spec_path):
    # the resolved spec's content (not its path): a valid spec with the file's mixture and model
    recorded = load_spec(attrs["spec"])
    assert recorded.mixture == load_spec(spec_path).mixture and recorded.model == load_spec(spec_path).model
    assert attrs["rfdiff_version"] == rfdiff.__version__ and attrs["command_line"]
    assert len(attrs["spec_fingerprint"]) == 64


def test_help_and_version_answer_without_importing_jax():
    code = ("import sys\nfrom rfdiff.cli import main\n"
            "for argv in (['--help'], ['--version'], ['phase-diagram', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "assert 'jax' not in sys.modules, 'jax was imported'\n"
            "import rfdiff\nassert 'jax' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "sigma_ratio" in res.stdout and "rfdiff 0.1.0" in res.stdout  # axis meanings are in --help


def test_lazy_public_face_resolves_every_name():
    for name in rfdiff.__all__:
        assert getattr(rfdiff, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        rfdiff.does_not_exist  # noqa: B018


def test_check_prints_the_resolved_spec_and_schema_lists_every_key(capsys):
    path = str(EXAMPLES / "dynamics_two_class.toml")
    assert main(["check", path]) == 0
    assert json.loads(capsys.readouterr().out) == load_spec(path).to_dict()
    assert main(["schema"]) == 0
    text = capsys.readouterr().out
    for key in ("psi_p", "centroid_sq_norms", "lr_frac", "n_trajectories", "lam_max", "loss_times"):
        assert f"`{key}`" in text


def test_spectrum(tmp_path, capsys):
    spec = str(EXAMPLES / "spectrum_two_class.toml")
    assert main(["spectrum", spec, "--out", str(tmp_path), "--num-points", "40"]) == 0
    arrays, attrs = load_result(tmp_path / "spectrum.npz")
    assert arrays["density"].shape == (40,) and arrays["class_density"].shape == (40, 2)
    assert attrs["dims"]["class_density"] == ["lam", "class"] and len(attrs["coords"]["lam"]) == 40
    assert attrs["spec"]["spectrum"]["num_points"] == 40  # the override is in the recorded spec
    _provenance_ok(attrs, spec)
    assert (tmp_path / "spectrum.png").stat().st_size > 0
    err = capsys.readouterr().err
    assert "wrote" in err and "spectrum.npz" in err
    assert main(["spectrum", spec, "--out", str(tmp_path / "q"), "--num-points", "40", "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q: no diagnostics


def test_timescales_table_on_stdout_equals_library(tmp_path, capsys):
    spec = str(EXAMPLES / "dynamics_two_class.toml")
    assert main(["timescales", spec, "--taus", "1e-3,1e6,40", "--d", "16", "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("source") and out.err == ""
    res, attrs = load_result(tmp_path / "timescales.npz")
    s = load_spec(spec)
    th = rfdiff.theory_curves(s.build_mixture(), s.build_model(), np.logspace(-3, 6, 40))
    ts = rfdiff.curve_timescales(np.logspace(-3, 6, 40), th["eps_test"], th["eps_train"], th["eps_train_inf"])
    np.testing.assert_allclose(res["theory_tau_gen"], np.asarray(ts.tau_gen), rtol=1e-12)
    assert attrs["d"] == 16 and attrs["spec"]["finite"]["d"] == 16


@pytest.mark.slow
def test_phase_diagram_shards_merge_to_single_run(tmp_path):
    spec = _write(tmp_path, '[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 40]\n')
    common = [spec, "--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:2", "--chunk-size", "4", "-q"]
    assert main(["phase-diagram", *common, "--out", str(tmp_path / "full")]) == 0
    for i in range(2):
        assert main(["phase-diagram", *common, "--shard", str(i), "--num-shards", "2",
                     "--out", str(tmp_path / "shards")]) == 0
    merged, attrs = merge_shards(sorted((tmp_path / "shards").glob("*.npz")))
    full, fattrs = load_result(tmp_path / "full" / "phase_diagram.npz")
    assert fattrs["dims"]["tau_gen"] == ["sigma_ratio", "pi1", "class"] == attrs["dims"]["tau_gen"]
    for k in full:
        np.testing.assert_array_equal(full[k], merged[k])
    _provenance_ok(fattrs, spec)
    # weak centroids: the higher-variance class (class 0 when σ_1/σ_2 > 1) generalises first
    assert np.all(full["tau_gen"][-1, :, 0] < full["tau_gen"][-1, :, 1])


@pytest.mark.slow
def test_speciation(tmp_path, capsys):
    spec = _write(tmp_path, '[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            'centroid_sq_norms = [1.0, 1.0]\ncentroid_cosines = [[1.0, -1.0], [-1.0, 1.0]]\n'
                            '[speciation]\nd = 32\nn_trajectories = 200\nnum_steps = 60\nt_min = 0.05\nseed = 3\n')
    out = tmp_path / "r"
    assert main(["speciation", spec, "--ratios", "1,10", "--out", str(out), "-q"]) == 0
    arrays, attrs = load_result(out / "speciation.npz")
    assert attrs["dims"]["sim"] == ["ratio", "class"] and attrs["coords"]["ratio"] == [1.0, 10.0]
    mix10 = rfdiff.GaussianMixture.create([10 / 11, 1 / 11], [1.0, 1.0]).with_strong_centroids(
        [1.0, 1.0], [[1.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_allclose(arrays["theory"][1], sp.speciation_times(mix10, 32), rtol=1e-10)
    assert np.isinf(arrays["sim"][1, 0]) and np.all(np.isfinite(arrays["sim"][0]))
    assert (out / "speciation.png").is_file() and "ratio 10" in capsys.readouterr().out
    # same seed → same numbers
    assert main(["speciation", spec, "--ratios", "1,10", "--out", str(tmp_path / "r2"), "-q"]) == 0
    np.testing.assert_array_equal(load_result(tmp_path / "r2" / "speciation.npz")[0]["sim"], arrays["sim"])


@pytest.mark.slow
def test_simulate_rf_and_compare(tmp_path):
    """`rfdiff simulate rf` writes a log and the closed-form theory of the same realisation; `rfdiff compare` reads
    both; an existing checkpoint without --resume is refused; --resume reuses it bit-identically."""
    spec = _write(tmp_path, '[mixture]\nvariances = [4.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.05\n[finite]\nd = 16\n'
                            '[simulate]\nsteps = 40\nlr_frac = 0.3\nnum_logs = 8\nn_test = 50\nmehler_order = 16\n')
    out = tmp_path / "run"
    assert main(["simulate", "rf", spec, "--out", str(out), "-q"]) == 0
    log = TrainLog.load(out / "sim.npz")
    th, _ = load_result(out / "theory.npz")
    assert log.train_loss.shape == (8, 2) and th["eps_train"].shape[0] == 2
    assert main(["compare", str(out / "theory.npz"), str(out / "sim.npz"), "-q"]) == 0
    cmp, _ = load_result(out / "comparison.npz")
    assert cmp["theory_tau_gen"].shape == (2,) and cmp["sim_tau_mem"].shape == (2,)
    assert (out / "comparison.png").is_file() and "τ_gen" in (out / "comparison.md").read_text()
    assert main(["simulate", "rf", spec, "--out", str(out), "-q"]) == 2  # checkpoint exists
    assert main(["simulate", "rf", spec, "--out", str(out), "-q", "--resume"]) == 0
    np.testing.assert_array_equal(TrainLog.load(out / "sim.npz").A, log.A)
    # --seed changes the realisation and the training noise
    assert main(["simulate", "rf", spec, "--out", str(tmp_path / "seeded"), "-q", "--seed", "5"]) == 0
    assert not np.array_equal(TrainLog.load(tmp_path / "seeded" / "sim.npz").A, log.A)


# ----------------------------------------------------------------------------- caches and resumes by content
PD_SPEC = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
           '[model]\npsi_p = {psi_p}\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 30]\n')


def _interrupt_after_first_chunk(monkeypatch):
    import rfdiff.sweep as sweep

    real = sweep._batched

    def counting(fn):
        batched, calls = real(fn), []

        def run(params):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt  # a kill after the first chunk was checkpointed
            return batched(params)

        return run

    monkeypatch.setattr(sweep, "_batched", counting)


@pytest.mark.slow
def test_phase_diagram_changed_spec_never_returns_old_numbers_and_resume_is_bit_identical(tmp_path, monkeypatch,
                                                                                          capsys):
    grid = ["--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:3", "--chunk-size", "4", "-q"]  # 3 chunks
    out = str(tmp_path / "pd")
    result = tmp_path / "pd" / "phase_diagram.npz"
    spec_a = _write(tmp_path, PD_SPEC.format(psi_p=2.0), "a.toml")
    spec_b = _write(tmp_path, PD_SPEC.format(psi_p=3.0), "b.toml")
    assert main(["phase-diagram", spec_b, *grid, "--out", str(tmp_path / "fresh_b")]) == 0
    fresh_b = load_result(tmp_path / "fresh_b" / "phase_diagram.npz")[0]
    assert main(["phase-diagram", spec_a, *grid, "--out", str(tmp_path / "fresh_a")]) == 0
    fresh_a = load_result(tmp_path / "fresh_a" / "phase_diagram.npz")[0]
    # killed after one chunk of spec A ...
    with monkeypatch.context() as m:
        _interrupt_after_first_chunk(m)
        with pytest.raises(KeyboardInterrupt):
            main(["phase-diagram", spec_a, *grid, "--out", out])
    assert (tmp_path / "pd" / "phase_diagram.npz.partial.npz").is_file() and not result.exists()
    # ... an explicit resume with another spec is refused, naming what changed
    assert main(["phase-diagram", spec_b, *grid, "--out", out, "--resume"]) == 2
    assert "changed: key" in capsys.readouterr().err
    # ... resumed with the same spec: bit-identical to the uninterrupted run
    assert main(["phase-diagram", spec_a, *grid, "--out", out, "--resume"]) == 0
    for k, v in load_result(result)[0].items():
        np.testing.assert_array_equal(v, fresh_a[k])
    # a changed spec into the same directory: the new numbers, never the old ones
    assert main(["phase-diagram", spec_b, *grid, "--out", out]) == 0
    got = load_result(result)[0]
    assert not np.array_equal(got["tau_gen"], fresh_a["tau_gen"])
    for k, v in got.items():
        np.testing.assert_array_equal(v, fresh_b[k])


@pytest.mark.slow
def test_speciation_changed_spec_into_same_out_gives_fresh_numbers(tmp_path):
    text = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\ncentroid_sq_norms = [{n}, {n}]\n'
            'centroid_cosines = [[1.0, -1.0], [-1.0, 1.0]]\n'
            '[speciation]\nd = 32\nn_trajectories = 200\nnum_steps = 40\nt_min = 0.05\nseed = 3\n')
    spec_a = _write(tmp_path, text.format(n=1.0), "a.toml")
    spec_b = _write(tmp_path, text.format(n=2.0), "b.toml")
    assert main(["speciation", spec_b, "--ratios", "1,10", "--out", str(tmp_path / "fresh"), "-q"]) == 0
    fresh = load_result(tmp_path / "fresh" / "speciation.npz")[0]
    out = str(tmp_path / "same")
    assert main(["speciation", spec_a, "--ratios", "1,10", "--out", out, "-q"]) == 0
    old = load_result(tmp_path / "same" / "speciation.npz")[0]
    assert main(["speciation", spec_b, "--ratios", "1,10", "--out", out, "-q"]) == 0
    new = load_result(tmp_path / "same" / "speciation.npz")[0]
    np.testing.assert_array_equal(new["sim"], fresh["sim"])
    assert not np.array_equal(new["sim"], old["sim"])
    assert not (tmp_path / "same" / "checkpoint").exists() or not any((tmp_path / "same" / "checkpoint").iterdir())


def test_simulate_rf_resume_with_changed_spec_is_refused(tmp_path, capsys):
    text = ('[mixture]\nvariances = [{v}, 1.0]\nproportions = [0.5, 0.5]\n'
            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.05\n[finite]\nd = 12\n'
            '[simulate]\nsteps = 20\nlr = 0.5\nnum_logs = 5\nn_test = 20\ntheory = false\n')
    out = str(tmp_path / "run")
    assert main(["simulate", "rf", _write(tmp_path, text.format(v=4.0), "a.toml"), "--out", out, "-q"]) == 0
    code = main(["simulate", "rf", _write(tmp_path, text.format(v=2.0), "b.toml"), "--out", out, "-q", "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "changed: problem" in err and len(err.strip().splitlines()) == 1, err
