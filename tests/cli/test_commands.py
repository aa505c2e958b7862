"""Every subcommand end to end at tiny size: labelled results with provenance in ``--out DIR``, data on stdout and
diagnostics on stderr, the numbers equal to the library's."""

from __future__ import annotations

import datetime
import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import rfdiff
from rfdiff.cli import main
from rfdiff.results import PROVENANCE, open_result
from rfdiff.spec import load_spec
from rfdiff.sweep import merge_shards
from rfdiff.theory import speciation as sp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _result(path, kind, spec_path, overrides=None, sections=()):
    """Open ``path`` with plain xarray and check the contract of a result file: every provenance attribute, the
    spec attribute equal to the resolved spec (the file's content with the command-line ``overrides``), long_name
    and units on every variable and coordinate, classes numbered 1..K with names. Returns the Dataset."""
    import xarray as xr

    with xr.open_dataset(path, engine="scipy") as ds:
        ds = ds.load()
    assert [k for k in PROVENANCE if k not in ds.attrs] == [] and ds.attrs["rfdiff_kind"] == kind
    raw = tomllib.loads(Path(spec_path).read_text())
    for sec in sections:
        raw.setdefault(sec, {})
    for sec, values in (overrides or {}).items():
        raw[sec] = {**raw.get(sec, {}), **values}
    resolved = load_spec(raw)
    assert json.loads(ds.attrs["spec"]) == json.loads(json.dumps(resolved.to_dict()))  # content, not a path
    assert ds.attrs["spec_fingerprint"] == resolved.fingerprint()
    assert ds.attrs["rfdiff_version"] == rfdiff.__version__ and ds.attrs["command_line"]
    assert ds.attrs["git_commit"] and datetime.datetime.fromisoformat(ds.attrs["created"]).tzinfo is not None
    assert isinstance(json.loads(ds.attrs["seeds"]), dict)
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name") and var.attrs.get("units") not in (None, "", "unknown"), name
    if "class" in ds.dims:
        k = ds.sizes["class"]
        assert ds["class"].values.tolist() == list(range(1, k + 1)) and ds["class_name"].dims == ("class",)
    return ds


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
    ds = _result(tmp_path / "spectrum.nc", "spectrum", spec, {"spectrum": {"num_points": 40}}, ("spectrum",))
    assert ds["density"].dims == ("lambda",) and ds["class_density"].dims == ("lambda", "class")
    assert ds.sizes["lambda"] == 40 and ds["class_name"].values.tolist() == ["class 1", "class 2"]
    s = load_spec(spec)
    ref = rfdiff.spectral_density(s.build_mixture(), s.build_model(), ds["lambda"].values,
                                  d=s.finite.d if s.finite else None, centroids=s.spectrum.centroids)
    np.testing.assert_array_equal(ds["class_density"].values, ref.class_density)  # the library's numbers
    api = rfdiff.to_dataset(ref)  # the Python call's Dataset: same variables, dims and numbers as the file
    assert set(api.data_vars) == set(ds.data_vars) and api["class_density"].dims == ds["class_density"].dims
    np.testing.assert_array_equal(api["edges"].values, ds["edges"].values)
    assert (tmp_path / "spectrum.png").stat().st_size > 0
    err = capsys.readouterr().err
    assert "wrote" in err and "spectrum.nc" in err
    assert main(["spectrum", spec, "--out", str(tmp_path / "q"), "--num-points", "40", "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q: no diagnostics


def test_timescales_table_on_stdout_equals_library(tmp_path, capsys):
    spec = str(EXAMPLES / "dynamics_two_class.toml")
    assert main(["timescales", spec, "--taus", "1e-3,1e6,40", "--d", "16", "--out", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("source") and out.err == ""
    assert [ln.split()[1] for ln in out.out.splitlines()[1:3]] == ["1", "2"]  # classes numbered from 1
    ds = _result(tmp_path / "timescales.nc", "timescales", spec,
                 {"curves": {"taus": [1e-3, 1e6, 40]}, "finite": {"d": 16}}, ("curves",))
    s = load_spec(spec)
    # default clock: the theory on gradient flow, like the finite-d closed form's default --kind flow
    th = rfdiff.theory_curves(s.build_mixture(), s.build_model(), np.logspace(-3, 6, 40), clock="flow")
    ts = rfdiff.curve_timescales(np.logspace(-3, 6, 40), th["eps_test"], th["eps_train"], th["eps_train_inf"])
    np.testing.assert_allclose(ds["theory_tau_gen"].values, np.asarray(ts.tau_gen), rtol=1e-12)
    assert ds["theory_tau_gen"].dims == ("class",) and ds.attrs["d"] == 16
    assert ds.attrs["clock"] == "theory: exact gradient flow; finite: flow"
    # the Python API hands back the same labelled Dataset
    api = rfdiff.to_dataset(ts)
    np.testing.assert_array_equal(api["tau_gen"].values, ds["theory_tau_gen"].values)
    assert api["tau_gen"].attrs["units"] == ds["theory_tau_gen"].attrs["units"]
    # spectral times (clock-free): the library's, for the theory and the finite-d closed form
    from rfdiff.theory.curves import theory_spectral_masses
    from rfdiff.theory.timescales import spectral_times

    sp = spectral_times(*theory_spectral_masses(s.build_mixture(), s.build_model()))
    np.testing.assert_allclose(ds["theory_tau_mem_spec"].values, np.asarray(sp.tau_mem_spec), rtol=1e-12)
    assert np.all(np.isfinite(ds["finite_tau_gen_spec"].values))
    assert "spectral" in ds["theory_tau_gen_spec"].attrs["long_name"]


def test_curves_file_is_labelled_and_equals_library(tmp_path):
    spec = str(EXAMPLES / "dynamics_two_class.toml")
    assert main(["curves", spec, "--taus", "1e-3,1e6,30", "--out", str(tmp_path), "-q"]) == 0
    ds = _result(tmp_path / "curves.nc", "curves", spec, {"curves": {"taus": [1e-3, 1e6, 30]}}, ("curves",))
    assert ds["theory_eps_test"].dims == ("class", "tau") and ds.sizes == {"class": 2, "tau": 30}
    s = load_spec(spec)
    taus = np.logspace(-3, 6, 30)
    th = rfdiff.theory_curves(s.build_mixture(), s.build_model(), taus, clock="flow")
    np.testing.assert_array_equal(ds["tau"].values, taus)
    np.testing.assert_allclose(ds["theory_eps_test"].values, th["eps_test"], rtol=1e-12)
    api = rfdiff.to_dataset(th, taus=taus)
    np.testing.assert_allclose(api["eps_test"].sel({"class": 2}).values, th["eps_test"][1], rtol=0)
    assert ds.attrs["clock"] == "theory: exact gradient flow; finite: flow"


@pytest.mark.parametrize("argv, loss_weights, clock", [
    (["--clock", "ridge"], False, "ridge"),  # the proxy on request
    (["--kind", "ridge"], False, "ridge"),  # the default follows the finite-d clock
    ([], True, "ridge"),  # weighted loss: only the ridge theory supports it, so it is the default there
])
def test_curves_clock_choice(tmp_path, argv, loss_weights, clock):
    spec = EXAMPLES / "dynamics_two_class.toml"
    if loss_weights:
        spec = Path(_write(tmp_path, spec.read_text().replace('t = 0.01\n', 't = 0.01\nloss_weights = [1.0, 2.0]\n')))
    assert main(["curves", str(spec), "--taus", "1e-2,1e4,20", *argv, "--out", str(tmp_path), "-q"]) == 0
    ds = rfdiff.open_result(tmp_path / "curves.nc")
    s = load_spec(str(spec))
    taus = np.logspace(-2, 4, 20)
    ref = {c: rfdiff.theory_curves(s.build_mixture(), s.build_model(), taus, clock=c,
                                   loss_weights=s.model.loss_weights) for c in (("ridge",) if loss_weights else ("ridge", "flow"))}
    np.testing.assert_allclose(ds["theory_eps_test"].values, ref[clock]["eps_test"], rtol=1e-12)
    if not loss_weights:  # the clocks differ: the choice is used
        assert np.max(np.abs(ref["flow"]["eps_test"] - ref["ridge"]["eps_test"])) > 1e-3
    assert ds.attrs["clock"].startswith("theory: ridge-time proxy")


@pytest.mark.slow
def test_phase_diagram_shards_merge_to_single_run(tmp_path):
    spec = _write(tmp_path, '[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 40]\n')
    common = [spec, "--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:2", "--chunk-size", "4", "-q"]
    assert main(["phase-diagram", *common, "--out", str(tmp_path / "full")]) == 0
    for i in range(2):
        assert main(["phase-diagram", *common, "--shard", str(i), "--num-shards", "2",
                     "--out", str(tmp_path / "shards")]) == 0
    merged = merge_shards(sorted((tmp_path / "shards").glob("*.nc")))
    full = _result(tmp_path / "full" / "phase_diagram.nc", "phase_diagram", spec,
                   {"phase_diagram": {"axes": {"sigma_ratio": [0.8, 1.6, 3], "pi1": [0.2, 0.8, 2]}, "fixed": {}}})
    assert full["tau_gen"].dims == ("sigma_ratio", "pi1", "class") == merged["tau_gen"].dims
    assert full["residual"].dims == ("sigma_ratio", "pi1")
    for k in full.data_vars:
        np.testing.assert_array_equal(full[k].values, merged[k].values)
    # weak centroids: the higher-variance class (class 1 when σ_1/σ_2 > 1) generalises first
    last = full["tau_gen"].isel(sigma_ratio=-1)
    assert np.all(last.sel({"class": 1}).values < last.sel({"class": 2}).values)


def test_phase_diagram_spectral_flag_adds_the_spectral_times(tmp_path):
    """--spectral: tau_*_spec of every grid point equal spectral_times on that point's d → ∞ loss masses
    (theory_spectral_masses, the single-point path); without the flag they are absent."""
    from rfdiff.theory.curves import theory_spectral_masses
    from rfdiff.theory.timescales import spectral_times

    spec = _write(tmp_path, '[mixture]\nvariances = [4.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\nactivation = "tanh"\n'
                            '[curves]\ntaus = [1e-3, 1e6, 40]\n')
    assert main(["phase-diagram", spec, "--axis", "psi_n=0.5:2.0:2", "--spectral", "--no-plot", "-q",
                 "--out", str(tmp_path / "s")]) == 0
    ds = rfdiff.open_result(tmp_path / "s" / "phase_diagram.nc")
    assert ds["tau_mem_spec"].dims == ("psi_n", "class")
    s = load_spec(spec)
    # the grid runs the batched lock-step solver, the reference the single-point one: each stops at its own
    # tolerance, so they agree to solver accuracy (measured: 3e-7 relative), not to rounding
    for i, psi_n in enumerate(ds["psi_n"].values):
        model = dataclasses.replace(s.build_model(), psi_n=float(psi_n))
        ref = spectral_times(*theory_spectral_masses(s.build_mixture(), model))
        for k, v in ref._asdict().items():
            np.testing.assert_allclose(ds[k].values[i], np.asarray(v), rtol=1e-5, err_msg=f"{k} at psi_n={psi_n}")
    # the spectral times are not the threshold times (different definitions), but order the classes alike here
    assert np.all(np.argsort(ds["tau_gen_spec"].values, -1) == np.argsort(ds["tau_gen"].values, -1))
    assert main(["phase-diagram", spec, "--axis", "psi_n=0.5:2.0:2", "--no-plot", "-q",
                 "--out", str(tmp_path / "plain")]) == 0
    assert "tau_gen_spec" not in rfdiff.open_result(tmp_path / "plain" / "phase_diagram.nc")


@pytest.mark.slow
def test_speciation(tmp_path, capsys):
    spec = _write(tmp_path, '[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            'centroid_sq_norms = [1.0, 1.0]\ncentroid_cosines = [[1.0, -1.0], [-1.0, 1.0]]\n'
                            '[speciation]\nd = 32\nn_trajectories = 200\nnum_steps = 60\nt_min = 0.05\nseed = 3\n')
    out = tmp_path / "r"
    assert main(["speciation", spec, "--ratios", "1,10", "--out", str(out), "-q"]) == 0
    ds = _result(out / "speciation.nc", "speciation", spec, sections=("speciation",))
    assert ds["sim"].dims == ("ratio", "class") and ds["ratio"].values.tolist() == [1.0, 10.0]
    assert ds["ci"].dims == ("ratio", "class", "bound") and ds["n"].dtype == np.int32
    arrays = {k: ds[k].values for k in ds.data_vars}
    mix10 = rfdiff.GaussianMixture.create([10 / 11, 1 / 11], [1.0, 1.0]).with_strong_centroids(
        [1.0, 1.0], [[1.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_allclose(arrays["theory"][1], sp.speciation_times(mix10, 32), rtol=1e-10)
    assert np.isinf(arrays["sim"][1, 0]) and np.all(np.isfinite(arrays["sim"][0]))
    assert (out / "speciation.png").is_file() and "ratio 10" in capsys.readouterr().out
    # same seed → same numbers
    assert main(["speciation", spec, "--ratios", "1,10", "--out", str(tmp_path / "r2"), "-q"]) == 0
    np.testing.assert_array_equal(open_result(tmp_path / "r2" / "speciation.nc")["sim"].values, arrays["sim"])


@pytest.mark.slow
def test_simulate_rf_and_compare(tmp_path):
    """`rfdiff simulate rf` writes a log and the closed-form theory of the same realisation; `rfdiff compare` reads
    both; an existing checkpoint without --resume is refused; --resume reuses it bit-identically."""
    spec = _write(tmp_path, '[mixture]\nvariances = [4.0, 1.0]\nproportions = [0.5, 0.5]\n'
                            '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.05\n[finite]\nd = 16\n'
                            '[simulate]\nsteps = 40\nlr_frac = 0.3\nnum_logs = 8\nn_test = 50\nmehler_order = 16\n')
    out = tmp_path / "run"
    assert main(["simulate", "rf", spec, "--out", str(out), "-q"]) == 0
    log = _result(out / "sim.nc", "simulate_rf", spec)
    th = _result(out / "theory.nc", "simulate_rf", spec)
    assert log["train_loss"].dims == ("step", "class") and log.sizes["step"] == 8
    assert th["eps_train"].dims == ("class", "tau") and th.sizes["class"] == 2
    assert main(["compare", str(out / "theory.nc"), str(out / "sim.nc"), "-q"]) == 0
    cmp = _result(out / "comparison.nc", "comparison", spec)  # the simulation's spec
    assert cmp["theory_tau_gen"].dims == ("class",) and cmp["sim_tau_mem"].shape == (2,)
    assert (out / "comparison.png").is_file() and "τ_gen" in (out / "comparison.md").read_text()
    assert main(["simulate", "rf", spec, "--out", str(out), "-q"]) == 2  # checkpoint exists
    assert main(["simulate", "rf", spec, "--out", str(out), "-q", "--resume"]) == 0
    np.testing.assert_array_equal(open_result(out / "sim.nc")["A"].values, log["A"].values)
    # --seed changes the realisation and the training noise, and is recorded
    assert main(["simulate", "rf", spec, "--out", str(tmp_path / "seeded"), "-q", "--seed", "5"]) == 0
    seeded = open_result(tmp_path / "seeded" / "sim.nc")
    assert not np.array_equal(seeded["A"].values, log["A"].values)
    assert json.loads(seeded.attrs["seeds"]) == {"finite": 5, "simulate": 5}


# ----------------------------------------------------------------------------- caches and resumes by content
def _arrays(path):
    return {k: v.values for k, v in open_result(path).data_vars.items()}


PD_SPEC = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
           '[model]\npsi_p = {psi_p}\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 30]\n')


def _interrupt_after_first_chunk(monkeypatch):
    import rfdiff.sweep as sweep

    real = sweep._batched

    def counting(fn, mesh):
        batched, calls = real(fn, mesh), []

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
    result = tmp_path / "pd" / "phase_diagram.nc"
    spec_a = _write(tmp_path, PD_SPEC.format(psi_p=2.0), "a.toml")
    spec_b = _write(tmp_path, PD_SPEC.format(psi_p=3.0), "b.toml")
    assert main(["phase-diagram", spec_b, *grid, "--out", str(tmp_path / "fresh_b")]) == 0
    fresh_b = _arrays(tmp_path / "fresh_b" / "phase_diagram.nc")
    assert main(["phase-diagram", spec_a, *grid, "--out", str(tmp_path / "fresh_a")]) == 0
    fresh_a = _arrays(tmp_path / "fresh_a" / "phase_diagram.nc")
    # killed after one chunk of spec A ...
    with monkeypatch.context() as m:
        _interrupt_after_first_chunk(m)
        with pytest.raises(KeyboardInterrupt):
            main(["phase-diagram", spec_a, *grid, "--out", out])
    assert (tmp_path / "pd" / "phase_diagram.nc.partial.npz").is_file() and not result.exists()
    # ... an explicit resume with another spec is refused, naming what changed
    assert main(["phase-diagram", spec_b, *grid, "--out", out, "--resume"]) == 2
    assert "changed: key" in capsys.readouterr().err
    # ... resumed with the same spec: bit-identical to the uninterrupted run
    assert main(["phase-diagram", spec_a, *grid, "--out", out, "--resume"]) == 0
    for k, v in _arrays(result).items():
        np.testing.assert_array_equal(v, fresh_a[k])
    # a changed spec into the same directory: the new numbers, never the old ones
    assert main(["phase-diagram", spec_b, *grid, "--out", out]) == 0
    got = _arrays(result)
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
    fresh = _arrays(tmp_path / "fresh" / "speciation.nc")
    out = str(tmp_path / "same")
    assert main(["speciation", spec_a, "--ratios", "1,10", "--out", out, "-q"]) == 0
    old = _arrays(tmp_path / "same" / "speciation.nc")
    assert main(["speciation", spec_b, "--ratios", "1,10", "--out", out, "-q"]) == 0
    new = _arrays(tmp_path / "same" / "speciation.nc")
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


@pytest.mark.slow
def test_simulate_unet_writes_labelled_metrics(tmp_path, monkeypatch):
    """metrics.nc of `rfdiff simulate unet`: dims step × class × t, Fashion-MNIST class names, the same numbers as
    the trainer's metrics.npz row store, and the resolved spec."""
    from _fmnist_fixture import write_tiny_fmnist

    from rfdiff.io import load_result
    from rfdiff.unet import FASHION_MNIST_CLASSES

    monkeypatch.setenv("RFDIFF_FASHION_MNIST", str(write_tiny_fmnist(tmp_path / "data", gz=False)))
    spec = _write(tmp_path, '[unet]\nclasses = [8, 7]\ncounts = [6, 6]\ndownsample = 4\nchannels = [4]\n'
                            'num_steps = 50\nbatch_size = 4\ntrain_steps = 4\nfirst_eval = 2\nn_eval = 2\n'
                            'n_samples = 12\nsample_steps = 3\nn_test_per_class = 6\nloss_draws = 1\n'
                            f'loss_times = [0.05, 0.5]\nclassifier_cache = "{tmp_path / "clf.eqx"}"\n')
    out = tmp_path / "run"
    assert main(["simulate", "unet", spec, "--out", str(out), "-q"]) == 0
    ds = _result(out / "metrics.nc", "simulate_unet", spec)
    assert ds["eps_test"].dims == ("step", "class", "t") and ds["mem_fraction"].dims == ("step", "class")
    assert ds["class_name"].values.tolist() == [FASHION_MNIST_CLASSES[8], FASHION_MNIST_CLASSES[7]]
    assert ds["fmnist_label"].values.tolist() == [8, 7]
    np.testing.assert_allclose(ds["t"].values, [0.05, 0.5], rtol=0.1)  # loss_times on the 50-step schedule
    assert ds["time_step"].dims == ("t",) and ds["time_step"].dtype == np.int32
    rows, _ = load_result(out / "metrics.npz")
    np.testing.assert_array_equal(ds["step"].values, rows["step"])
    np.testing.assert_array_equal(ds["eps_test"].values, rows["eps_test"])


@pytest.mark.parametrize("command, kind, extra", [
    ("window", "window", []),
    ("reweight", "reweight", ["--target", "window"]),
])
def test_window_and_reweight_files_carry_the_contract(tmp_path, command, kind, extra):
    spec = str(EXAMPLES / "dynamics_two_class.toml")
    assert main([command, spec, "--taus", "1e-3,1e4,101", *extra, "--out", str(tmp_path), "-q"]) == 0
    ds = _result(tmp_path / f"{kind}.nc", kind, spec,
                 {"curves": {"taus": [1e-3, 1e4, 101]}} if command == "window" else None,
                 ("curves",) if command == "window" else ())
    assert ds["tau_gen"].dims[-1] == "class" and ds.sizes["class"] == 2


@pytest.mark.parametrize("command", ["timescales", "window"])
def test_theory_results_are_float64_without_the_global_x64_switch(tmp_path, command):
    """A fresh ``rfdiff`` process does not switch x64 on globally (the tests do): there ``timescales`` and
    ``window`` wrote float32 times, because the time definitions ran under the caller's default setting. Run
    here with the switch off, as in a user's process; every floating variable of the file must be float64 and
    equal to the library's float64 numbers (float32 rounding would miss by ~1e-8 relative)."""
    import jax
    import xarray as xr

    spec = str(EXAMPLES / "dynamics_two_class.toml")
    with jax.enable_x64(False):
        assert main([command, spec, "--taus", "1e-3,1e5,40", "--out", str(tmp_path), "-q"]) == 0
    with xr.open_dataset(tmp_path / f"{command}.nc", engine="scipy") as ds:
        ds = ds.load()
    narrow = [k for k, v in ds.variables.items() if v.dtype.kind == "f" and v.dtype.itemsize < 8]
    assert narrow == []
    s = load_spec(spec)
    taus = np.logspace(-3, 5, 40)
    th = rfdiff.theory_curves(s.build_mixture(), s.build_model(), taus, clock="flow" if command == "timescales"
                              else "ridge")  # window: the ridge clock, like the phase diagrams
    ts = rfdiff.curve_timescales(taus, th["eps_test"], th["eps_train"], th["eps_train_inf"])
    name = "theory_tau_gen" if command == "timescales" else "tau_gen"
    np.testing.assert_allclose(ds[name].values, np.asarray(ts.tau_gen), rtol=1e-12)
