"""rfdiff.plots: every result kind draws a labelled figure from a small hand-built Dataset; figures are written
as a real PDF and a 300-dpi PNG; nothing global (rcParams, backend) changes; log tick labels never overlap."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
mpl = pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402

from rfdiff import plots  # noqa: E402

NAMES = ["Bag", "Coat"]


def _attrs(da, long_name, units):
    da.attrs.update(long_name=long_name, units=units)
    return da


def _ds(kind, data_vars, coords, **extra):
    ds = xr.Dataset(data_vars, coords={"class": ("class", [1, 2]), "class_name": ("class", NAMES), **coords})
    ds["class"].attrs.update(long_name="class", units="1")
    ds["class_name"].attrs.update(long_name="class name", units="1")
    for name in list(ds.data_vars) + [c for c in ds.coords if c not in ("class", "class_name")]:
        ds[name].attrs.update(long_name=name.replace("_", " "), units="τ" if "tau" in name else "1")
    ds.attrs.update(rfdiff_kind=kind, rfdiff_version="0.1.0", git_commit="test", spec=json.dumps({}),
                    title=f"a {kind} result", **extra)
    return ds


def _var(rng, *shape, pos=True):
    x = rng.uniform(0.5, 2.0, shape)
    return x if pos else x - 1.0


def make(kind):
    rng = np.random.default_rng(0)
    tau = np.logspace(-3, 6, 40)
    if kind == "spectrum":
        lam = np.geomspace(1e-3, 1e2, 50)
        return _ds(kind, {"density": ("lambda", _var(rng, 50)), "class_density": (("lambda", "class"), _var(rng, 50, 2)),
                          "outliers": ("outlier", [30.0])}, {"lambda": lam}, atom_mass=0.2, atom_location=1e-3)
    if kind == "curves":
        return _ds(kind, {"eps_train": (("class", "tau"), _var(rng, 2, 40)),
                          "eps_test": (("class", "tau"), _var(rng, 2, 40)),
                          "eps_train_inf": ("class", [0.1, -0.2]), "eps_test_inf": ("class", [0.9, 1.1]),
                          "tau_gen": ("class", [1.0, 10.0]), "tau_mem": ("class", [1e3, np.inf])}, {"tau": tau})
    if kind == "timescales":
        s = np.linspace(0.5, 2.0, 6)
        return _ds(kind, {k: (("class", "sigma_ratio"), _var(rng, 2, 6)) for k in ("tau_gen", "tau_mem", "tau_onset")},
                   {"sigma_ratio": s})
    if kind == "phase_diagram":
        s, p = np.geomspace(0.1, 10, 7), np.linspace(0.05, 0.95, 6)
        # class 1 slower for sigma_ratio > 1: the log-ratio changes sign, a level-0 contour exists
        t1 = np.outer(s, np.ones_like(p))
        tg = np.stack([t1, np.ones_like(t1)])
        tg[0, 0, 0] = np.inf  # one non-finite cell: grey, named in the legend
        return _ds(kind, {"tau_gen": (("class", "sigma_ratio", "pi1"), tg),
                          "tau_mem": (("class", "sigma_ratio", "pi1"), 2 * tg)}, {"sigma_ratio": s, "pi1": p})
    if kind == "window":
        return _ds(kind, {"tau_gen": ("class", [1.0, 3.0]), "tau_end": ("class", [100.0, np.inf]),
                          "width": ((), 1.52), "lo": ((), 3.0), "hi": ((), 100.0)}, {})
    if kind == "speciation":
        r = np.array([1.0, 10.0, 100.0])
        return _ds(kind, {"theory": (("ratio", "class"), _var(rng, 3, 2)), "sim": (("ratio", "class"), _var(rng, 3, 2)),
                          "se": (("ratio", "class"), 0.05 * np.ones((3, 2))),
                          "theory_fine": (("ratio_fine", "class"), _var(rng, 20, 2))},
                   {"ratio": r, "ratio_fine": np.geomspace(1, 100, 20)})
    if kind == "simulate_rf":
        return _ds(kind, {"eps_train": (("class", "step"), _var(rng, 2, 10)),
                          "eps_test": (("class", "step"), _var(rng, 2, 10))}, {"step": np.geomspace(1, 1000, 10)})
    if kind == "simulate_unet":
        m = rng.uniform(0.0, 0.5, (5, 2))
        return _ds(kind, {"eps_train": (("step", "class", "time"), _var(rng, 5, 2, 3)),
                          "eps_test": (("step", "class", "time"), _var(rng, 5, 2, 3)),
                          "mem_fraction": (("step", "class"), m), "mem_ci_low": (("step", "class"), m * 0.5),
                          "mem_ci_high": (("step", "class"), m + 0.1)},
                   {"step": np.geomspace(100, 1e5, 5), "time": [0.01, 0.1, 1.0]})
    if kind == "comparison":
        return _ds(kind, {"eps_test_theory": (("class", "tau"), _var(rng, 2, 40)),
                          "eps_train_theory": (("class", "tau"), _var(rng, 2, 40)),
                          "eps_test_sim": (("class", "tau_sim"), _var(rng, 2, 8)),
                          "eps_train_sim": (("class", "tau_sim"), _var(rng, 2, 8))},
                   {"tau": tau, "tau_sim": np.geomspace(1e-2, 1e4, 8)})
    if kind == "reweight":
        return _ds(kind, {"loss_weights": ("class", [0.4, 1.6]),
                          "tau_gen": (("weighting", "class"), [[1.0, 3.0], [2.0, 2.0]]),
                          "tau_end": (("weighting", "class"), [[100.0, 50.0], [80.0, np.inf]])},
                   {"weighting": ["equal", "solved"]}, target="equal-gen")
    raise AssertionError(kind)


def _legend_texts(fig):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return [t.get_text() for leg in legends for t in leg.get_texts()]


@pytest.mark.parametrize("kind", sorted(plots.KINDS))
def test_plot_result_labels_every_kind(kind):
    before = dict(mpl.rcParams)
    fig = plots.plot_result(make(kind))
    try:
        assert isinstance(fig, mpl.figure.Figure)
        texts = " | ".join(_legend_texts(fig))
        if kind != "phase_diagram":  # a map shows classes in its colour-bar label instead
            for name in NAMES:
                assert name in texts, (kind, texts)
        for ax in fig.axes:
            if ax.get_label() != "<colorbar>":
                assert ax.get_xlabel() or ax.get_xticklabels(), kind
        assert fig.get_suptitle() == f"a {kind} result"
        assert fig.get_layout_engine() is not None  # constrained: no clipped titles
    finally:
        plt.close(fig)
    assert dict(mpl.rcParams) == before, f"{kind}: plot_result changed global rcParams"


def test_phase_diagram_map_is_labelled_and_contoured():
    ds = make("phase_diagram")
    fig = plots.plot_result(ds, variable="tau_mem")
    try:
        ax, cax = fig.axes[0], fig.axes[1]
        assert ax.get_xlabel() == "pi1" and ax.get_ylabel() == "sigma ratio"
        assert ax.get_yscale() == "log" and ax.get_xscale() == "linear"  # geomspace vs linspace axis
        assert cax.get_ylabel() == "log10(Bag / Coat) [decades]"
        assert ax.get_title().startswith("tau mem: red, Bag slower")
        contours = [c for c in ax.collections if isinstance(c, mpl.contour.ContourSet)]
        assert len(contours) == 1 and list(contours[0].levels) == [0.0]
        mesh = ax.collections[0].get_array()
        # the drawn values are log10 τ_Bag/τ_Coat = log10 σ-ratio, masked where τ = ∞
        expect = np.log10(np.outer(ds["sigma_ratio"].values, np.ones(6)))
        got = np.ma.filled(mesh.reshape(7, 6).astype(float), np.nan)
        assert np.isnan(got[0, 0]) and np.allclose(got.ravel()[1:], expect.ravel()[1:], atol=1e-12)
        assert "not finite (τ = ∞ or undefined)" in _legend_texts(fig)
        assert "level 0 (order reverses)" in _legend_texts(fig)
    finally:
        plt.close(fig)


def test_plot_result_into_given_axes_and_bad_input():
    fig, (a, b) = plt.subplots(1, 2)
    try:
        assert plots.plot_result(make("curves"), ax=[a, b]) is fig
        assert a.get_xscale() == "log" and "Bag" in [t.get_text() for t in a.get_legend().get_texts()]
        with pytest.raises(ValueError, match="^ax: curves draws 2 panel"):
            plots.plot_result(make("curves"), ax=a)
        assert plots.plot_result(make("curves"), ax=a, variable="eps_test") is fig
    finally:
        plt.close(fig)
    ds = make("curves")
    with pytest.raises(ValueError, match="^variable: 'nope'"):
        plots.plot_result(ds, variable="nope")
    with pytest.raises(ValueError, match="^ds: attrs\\['rfdiff_kind'\\]"):
        plots.plot_result(ds.assign_attrs(rfdiff_kind="bogus"))


def _png_dpi(data: bytes) -> float:
    """Pixels per inch from the PNG pHYs chunk (unit 1 = metre)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(typ + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if typ == b"pHYs":
            x, _y, unit = struct.unpack(">IIB", body)
            assert unit == 1
            return x * 0.0254
        pos += 12 + n
    raise AssertionError("no pHYs chunk")


def test_save_figure_writes_vector_pdf_and_300_dpi_png(tmp_path):
    fig = plots.plot_result(make("spectrum"))
    try:
        w, h = fig.get_size_inches()
        paths = plots.save_figure(fig, tmp_path / "sub" / "spectrum.png")  # suffix dropped, parents made
    finally:
        plt.close(fig)
    assert [p.name for p in paths] == ["spectrum.pdf", "spectrum.png"]
    assert paths[0].read_bytes().startswith(b"%PDF")
    png = paths[1].read_bytes()
    assert abs(_png_dpi(png) - 300) < 0.5
    img = mpl.image.imread(io.BytesIO(png))
    assert img.shape[:2] == (round(h * 300), round(w * 300))
    assert not list((tmp_path / "sub").glob(".*tmp"))  # atomic: no temporary file left
    with pytest.raises(ValueError, match="^stem:"):
        plots.save_figure(fig, "")


def test_log_tick_labels_do_not_overlap():
    """τ over nine decades on a 3.4-inch panel: the visible tick labels' boxes are disjoint (matplotlib's
    defaults label every decade plus minors on short ranges; those collided in the old figures)."""
    for x in (np.logspace(-3, 6, 50), np.geomspace(2.0, 30.0, 50), np.geomspace(0.02, 0.3, 50),
              np.geomspace(0.6, 3.0, 50), np.geomspace(60.0, 90.0, 50), np.geomspace(0.125, 4.0, 50),
              np.geomspace(0.27, 0.33, 50)):
        fig, ax = plt.subplots(figsize=(3.4, 2.6))
        try:
            ax.plot(x, x)
            plots.log_axis(ax, "x")
            fig.canvas.draw()
            r = fig.canvas.get_renderer()
            boxes = [t.get_window_extent(r) for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
                     if t.get_visible() and t.get_text() and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
            assert len(boxes) >= 3, "a log axis needs at least three labels to be read"
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    assert not boxes[i].overlaps(boxes[j]), (x[0], x[-1])
        finally:
            plt.close(fig)


def test_style_is_a_context_and_no_backend_is_forced(monkeypatch):
    before = dict(mpl.rcParams)
    with plots.style():
        assert mpl.rcParams["savefig.dpi"] == 300 and mpl.rcParams["pdf.fonttype"] == 42
        assert [c.lower() for c in mpl.rcParams["axes.prop_cycle"].by_key()["color"][:2]] == [c.lower() for c in plots.PALETTE[:2]]
    assert dict(mpl.rcParams) == before

    def refuse(*a, **k):
        raise AssertionError("rfdiff.plots must not choose the backend")

    monkeypatch.setattr(mpl, "use", refuse)
    monkeypatch.setattr(plt, "switch_backend", refuse)
    for kind in ("curves", "phase_diagram"):
        plt.close(plots.plot_result(make(kind)))
    assert dict(mpl.rcParams) == before


def test_array_functions_share_the_class_convention(tmp_path):
    res = {"ratio": np.array([1.0, 10.0]), "theory": np.array([[1.0, 1.2], [1.1, 1.5]]),
           "sim": np.array([[1.0, np.inf], [1.1, 1.4]]), "se": np.full((2, 2), 0.05)}
    png = plots.plot_times_vs_ratio(res, tmp_path / "t.png", title="x")
    assert png.name == "t.png" and (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    fig = plots.plot_times_vs_ratio(res)
    try:
        texts = _legend_texts(fig)
        assert "class 1 theory" in texts and "class 2 simulation" in texts and not any("class 0" in t for t in texts)
        line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "class 2 theory")
        assert mpl.colors.to_hex(line.get_color()) == plots.class_color(1).lower()
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match="^labels:"):
        plots.plot_times_vs_ratio(res, labels=["only one"])


def test_import_rfdiff_stays_light():
    import subprocess
    import sys

    code = "import sys, rfdiff, rfdiff.plots; print('matplotlib' in sys.modules, 'xarray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_phase_diagram_axes_length_one_dropped_more_refused():
    ds = make("phase_diagram")
    one = ds.expand_dims(separation=[16.0]).transpose("class", "separation", ...)  # a fixed axis: dropped
    fig = plots.plot_result(one)
    try:
        assert fig.axes[0].get_xlabel() == "pi1" and fig.axes[1].get_ylabel().endswith("[decades]")
    finally:
        plt.close(fig)
    two = ds.expand_dims(separation=[0.0, 16.0])
    with pytest.raises(ValueError, match="^variable: phase_diagram maps two axes; 'tau_gen' varies along"):
        plots.plot_result(two)
    # timescales over two axes is drawn as the same map
    fig = plots.plot_result(ds.assign_attrs(rfdiff_kind="timescales"))
    try:
        assert fig.axes[1].get_ylabel() == "log10(Bag / Coat) [decades]"
    finally:
        plt.close(fig)


def test_every_result_kind_has_a_standard_figure():
    """One list of result kinds (rfdiff.results.KINDS); plot_result must draw each of them (rfdiff plot RESULT)."""
    from rfdiff.results import KINDS

    assert set(plots.KINDS) == set(KINDS)
