"""The tutorial (examples/tutorial.py, a jupytext percent notebook) runs top to bottom, so it cannot rot.

It runs as a user runs it: in a fresh working directory, under JAX's default promotion rules (the test suite's
strict dtype/rank promotion is the library's own discipline, not something a notebook reader sets). Beyond
running, two of its numbers are checked against each other: the phase-diagram point at the tutorial's mixture
equals the window computed directly (same theory through ``timescale_fn`` with 64 coefficient nodes vs
``theory_curves`` with 128: measured difference 7.5e-6 decades; tolerance 1e-4); the simulation's logged τ grid
ends at steps·lr; and its logged per-class train errors agree with the closed-form GD curves within 0.2 (the
logged loss is an estimate from 64 noise draws per training point, and ε divides it by S_c = Δ/Γ_c², ≈ 0.005
for class 2: measured max difference 0.13 with these seeds, 2.7 with one draw per point).
"""

import runpy
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


def test_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plt.close("all")  # count only the tutorial's figures (earlier tests in this process may leave some open)
    try:
        with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
            ns = runpy.run_path(str(TUTORIAL), run_name="__main__")
        assert len(plt.get_fignums()) == 5  # spectrum, curves, phase diagram (by hand, plot_result), simulation
    finally:
        plt.close("all")
    assert list(tmp_path.iterdir()) == []  # writes nothing
    assert abs(float(ns["width"][1, 2]) - float(ns["w"].width_decades)) < 1e-4
    assert np.all(np.isfinite(ns["width"]))
    np.testing.assert_array_equal(ns["ds"]["window_width"].values, ns["width"])  # the Dataset holds the same numbers
    assert ns["ds"]["window_width"].dims == ("sigma_ratio", "pi1")
    assert ns["ds"]["tau_gen"].dims == ("sigma_ratio", "pi1", "class")
    assert np.isclose(float(ns["log"].tau[-1]), 400 * ns["lr"], rtol=1e-12)
    assert np.max(np.abs(ns["sim"] - ns["closed"])) < 0.2
