"""``rfdiff reweight``: weights and per-class times before/after on stdout, DIR/reweight.nc (dims weighting × class) with the library's
numbers, exit 1 with one line when the solver fails, exit 2 for bad input."""

from pathlib import Path

import numpy as np
import pytest

from rfdiff.cli import main
import json

from rfdiff.plots import plot_result
from rfdiff.results import open_result
from rfdiff.spec import load_spec
from rfdiff.theory.reweight import solve_weights

SPEC = str(Path(__file__).resolve().parents[2] / "examples" / "dynamics_two_class.toml")
TAUS = "1e-3,1e4,141"


def test_reweight_window_prints_and_writes(tmp_path, capsys):
    assert main(["reweight", SPEC, "--target", "window", "--taus", TAUS, "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("target window") and lines[1].split()[:3] == ["class", "pi", "weight"]
    assert lines[-3].startswith("before: ") and lines[-2].startswith("after:  ")
    assert lines[-1].startswith("loss_weights = [")
    assert "wrote" in err and "reweight.nc" in err
    ds = open_result(tmp_path / "reweight.nc")
    spec = load_spec(json.loads(ds.attrs["spec"]))
    r = solve_weights(spec.build_mixture(), spec.build_model(), "window", taus=np.logspace(-3, 4, 141))
    np.testing.assert_array_equal(ds["loss_weights"].values, r.weights)
    np.testing.assert_array_equal(ds["tau_gen"].sel(weighting="solved").values, r.after.tau_gen)
    np.testing.assert_array_equal(ds["tau_end"].sel(weighting="equal").values, r.before.tau_end)
    assert float(np.asarray(spec.mixture.proportions) @ ds["loss_weights"].values) == pytest.approx(1.0, abs=1e-14)
    width = ds["width_decades"]
    assert float(width.sel(weighting="solved")) >= float(width.sel(weighting="equal"))  # no worse than w = 1
    assert ds.attrs["target"] == "window" and ds.attrs["rfdiff_kind"] == "reweight"
    assert ds["tau_gen"].dims == ("weighting", "class") and list(ds["class"].values) == [1, 2]
    assert ds["tau_gen"].attrs["units"] != "unknown" and ds["loss_weights"].attrs["units"] == "1"
    fig = plot_result(ds)  # the standard figure of this kind: one labelled interval per class and weighting
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("class 1, w = " in t for t in labels) and any("class 2, equal weights" in t for t in labels)


def test_reweight_failure_exits_1_with_one_line(tmp_path, capsys):
    # no centroids: weights cannot equalise τ_gen (theory_notes/10_reweighting.md §5)
    assert _status(["reweight", SPEC, "--target", "equal-gen", "--taus", TAUS, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rfdiff reweight: error: equal-gen: no root in the bracket")
    assert not (tmp_path / "reweight.nc").exists()


@pytest.mark.parametrize("argv, needle", [
    (["--target", "equal"], "argument --target: invalid choice: 'equal'"),
    (["--target", "window", "--taus", "1,1e6"], "--taus must look like LO,HI,NUM"),
])
def test_reweight_bad_input_exits_2(tmp_path, capsys, argv, needle):
    assert _status(["reweight", SPEC, "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def _status(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


WEIGHTED = """[mixture]
variances = [4.0, 1.0]
proportions = [0.5, 0.5]

[model]
activation = "tanh"
psi_p = 4.0
psi_n = 2.0
t = 0.01
loss_weights = [0.4, 1.6]
"""


def test_window_uses_the_spec_loss_weights(tmp_path, capsys):
    from rfdiff.theory.window import disparity_window

    spec_path = tmp_path / "weighted.toml"
    spec_path.write_text(WEIGHTED)
    assert main(["window", str(spec_path), "--taus", TAUS, "--out", str(tmp_path / "w")]) == 0
    ds = open_result(tmp_path / "w" / "window.nc")
    arrays = {k: ds[k].values for k in ds.data_vars}
    spec = load_spec(json.loads(ds.attrs["spec"]))
    assert spec.model.loss_weights == (0.4, 1.6)  # already normalised: Σ π w = 1
    taus = np.logspace(-3, 4, 141)
    w = disparity_window(spec.build_mixture(), spec.build_model(), taus, loss_weights=[0.4, 1.6])
    plain = disparity_window(spec.build_mixture(), spec.build_model(), taus)
    np.testing.assert_array_equal(arrays["tau_end"], w.tau_end)
    assert not np.allclose(arrays["tau_end"], plain.tau_end)  # the weights reached the theory
    capsys.readouterr()
    # commands without a weighted version refuse the key instead of ignoring it
    assert _status(["spectrum", str(spec_path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[model] loss_weights are not supported by rfdiff spectrum" in err
