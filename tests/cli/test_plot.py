"""`rfdiff plot RESULT` and the picture `rfdiff phase-diagram` / `rfdiff merge` draw by default."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from rfdiff.cli.main import main
from rfdiff.results import open_result

SPEC = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
        '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 40]\n')
GRID = ["--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:2", "-q"]


def _png_dpi(path) -> float:
    """Dots per inch from the PNG's pHYs chunk (pixels per metre)."""
    data = path.read_bytes()
    i = data.index(b"pHYs")
    ppm_x, = struct.unpack(">I", data[i + 4:i + 8])
    return ppm_x * 0.0254


@pytest.fixture(scope="module")
def phase_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plot")
    spec = tmp / "pd.toml"
    spec.write_text(SPEC)
    assert main(["phase-diagram", str(spec), *GRID, "--out", str(tmp / "drawn")]) == 0
    assert main(["phase-diagram", str(spec), *GRID, "--out", str(tmp / "bare"), "--no-plot"]) == 0
    return tmp


def test_phase_diagram_draws_its_picture_by_default(phase_run):
    drawn, bare = phase_run / "drawn", phase_run / "bare"
    assert (drawn / "phase_diagram.pdf").read_bytes().startswith(b"%PDF")
    assert _png_dpi(drawn / "phase_diagram.png") == pytest.approx(300, abs=0.5)
    assert sorted(p.name for p in bare.iterdir()) == ["phase_diagram.nc"]
    # the picture does not change the numbers: both runs wrote the same Dataset
    a, b = open_result(drawn / "phase_diagram.nc"), open_result(bare / "phase_diagram.nc")
    np.testing.assert_array_equal(a["tau_gen"].values, b["tau_gen"].values)


def test_plot_command_writes_pdf_and_png(phase_run, capsys):
    src = phase_run / "bare" / "phase_diagram.nc"
    assert main(["plot", str(src), "--variable", "tau_mem", "--out", str(phase_run / "mem.png")]) == 0
    assert (phase_run / "mem.pdf").read_bytes().startswith(b"%PDF")
    assert _png_dpi(phase_run / "mem.png") == pytest.approx(300, abs=0.5)
    assert main(["plot", str(src)]) == 0  # default stem: beside the result
    assert (phase_run / "bare" / "phase_diagram.pdf").is_file()


@pytest.mark.parametrize("args, needle", [
    (["missing.nc"], "result file not found: missing.nc"),
    (["{bare}/phase_diagram.nc", "--variable", "tau_typo"], "variable: 'tau_typo' is not in the phase_diagram"),
    (["{bare}/phase_diagram.nc", "--out", "{bare}"], "--out is a file stem"),
])
def test_plot_bad_input_is_one_line(phase_run, capsys, args, needle):
    args = [a.format(bare=phase_run / "bare") for a in args]
    assert main(["plot", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
