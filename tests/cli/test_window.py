"""``rfdiff window``: the table and the window line on stdout, DIR/window.nc with provenance and the library's
numbers, and one-line errors (exit 2) for bad input."""

from pathlib import Path

import numpy as np
import pytest

import rfdiff
from rfdiff.cli import main
from rfdiff.results import attr_json, open_result
from rfdiff.spec import load_spec
from rfdiff.theory.window import disparity_window

SPEC = str(Path(__file__).resolve().parents[2] / "examples" / "dynamics_two_class.toml")


@pytest.mark.parametrize("memorisation", ["tau_mem", "tau_onset"])
def test_window_command_prints_the_table_and_writes_its_file(tmp_path, capsys, memorisation):
    assert main(["window", SPEC, "--taus", "1e-3,1e4,60", "--memorisation", memorisation,
                 "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].split() == ["class", "tau_gen", "tau_mem", "tau_onset", "eps_tr(inf)"]
    assert [ln.split()[0] for ln in lines[2:4]] == ["1", "2"]  # classes numbered from 1
    assert lines[-1].startswith("window: [") or lines[-1].startswith("no window")
    assert "wrote" in err and "window.nc" in err
    ds = open_result(tmp_path / "window.nc")
    spec = load_spec(attr_json(ds, "spec"))
    w = disparity_window(spec.build_mixture(), spec.build_model(), np.logspace(-3, 4, 60), memorisation=memorisation)
    for k in ("tau_gen", "tau_end", "lo", "hi", "width_decades", "exists"):
        np.testing.assert_array_equal(ds[k].values, getattr(w, k), err_msg=k)
    for k in ("first_memorising", "last_generalising"):  # class labels, 1-based like the class coordinate
        assert int(ds[k]) == int(getattr(w, k)) + 1 and ds[k].attrs["long_name"].startswith("class (1-based)")
    assert f"{float(w.width_decades):.3g} decades" in lines[-1]
    assert f"class {int(w.first_memorising) + 1}" in lines[-1]
    assert ds.attrs["memorisation"] == memorisation and ds["tau_gen"].dims == ("class",)
    assert spec.curves.taus == (1e-3, 1e4, 60) or list(spec.curves.taus) == [1e-3, 1e4, 60]  # override recorded
    assert ds.attrs["rfdiff_version"] == rfdiff.__version__ and "ridge" in ds.attrs["clock"]


@pytest.mark.parametrize("argv, needle", [
    (["--memorisation", "onset"], "argument --memorisation: invalid choice: 'onset'"),
    (["--taus", "1,1e6"], "--taus must look like LO,HI,NUM"),
    (["--taus", "1,1e6,40"], "taus: tau_gen of class 0 is not resolved"),
])
def test_window_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    assert _status(["window", SPEC, "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rfdiff window: error: ") and needle in err
    assert not (tmp_path / "window.nc").exists()


def _status(argv):
    """Exit status whether argparse exits (SystemExit) or the command returns it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
