"""``plot_result(ds)``: the standard figure of any rfdiff result Dataset, chosen by ``ds.attrs["rfdiff_kind"]``.

The Dataset contract (written by the CLI, read by ``rfdiff.open_result``): named dims (``class`` with 1-based
integer values and a ``class_name`` string coordinate, ``tau``, ``lambda``, ``step``, ``t``, phase-diagram axes
named by their keys), ``long_name``/``units`` on every variable and coordinate. Panels per kind:

=============  =========================================================================================
spectrum       λρ(λ) of ``density`` (lambda) and the per-class ``class_density`` parts, log λ
curves         ``eps_test`` | ``eps_train`` (class, tau) against τ; dashed: ``eps_*_inf``; dotted: times
timescales     ``tau_gen`` | ``tau_mem`` | ``tau_onset`` against the one swept axis (2 axes: as phase_diagram)
phase_diagram  heat map of log10(τ_class1 / τ_class2) for ``variable`` (default ``tau_gen``), reversal
               contour (level 0); a variable without a class dim is mapped as it is
window         ``width`` heat map over two axes (contour 0), or the per-class [τ_gen, τ_end] intervals
speciation     t_S,c (``theory``, ``sim`` ± ``se``) against the imbalance ratio; ``variable="phi"``: φ_c(t)
simulate_rf    ``eps_test`` | ``eps_train`` (class, step) against the step (or a ``tau`` coordinate)
simulate_unet  ``eps_test`` | ``eps_train`` (mean over diffusion times) | ``mem_fraction`` with its interval
comparison     ``eps_test`` | ``eps_train``: ``*_theory`` lines and ``*_sim`` points against τ
=============  =========================================================================================

``variable=`` picks one panel (or the mapped variable); ``ax=`` is one Axes (or as many as panels).
"""

from __future__ import annotations

import textwrap

import numpy as np

from ._base import (axes_for, class_color, colorbar, dataset_class_names, is_geometric, label, log_axis,
                    styled)
from .arrays import draw_times_vs_ratio

__all__ = ["plot_result", "KINDS"]

_TIMES = ("tau_gen", "tau_mem", "tau_onset")
_WIDTH = ("width", "width_decades", "window_width", "disparity")


def _need(ds, name: str, kind: str):
    if name not in ds.variables:
        have = ", ".join(sorted(map(str, ds.data_vars)))
        raise ValueError(f"variable: {kind} result has no {name!r} (variables: {have})")
    return ds[name]


def _xvalues(ds, da, dim: str):
    """Values and label of the x axis along ``dim``: a coordinate named like a time on that dim (``tau``,
    ``step``) wins over the bare index."""
    for name in (dim, "tau", "step"):
        if name in ds.variables and ds[name].dims == (dim,):
            return np.asarray(ds[name].values, float), label(ds[name], name)
    return np.arange(da.sizes[dim], dtype=float), dim


def _other_dim(da, skip=("class",)):
    rest = [d for d in da.dims if d not in skip]
    if len(rest) != 1:
        raise ValueError(f"variable: {da.name!r} should have one dim besides {skip}, has {da.dims}")
    return rest[0]


def _class_lines(ax, ds, da, *, fmt="-", suffix="", labelled=True, **kw):
    """One line per class of ``da`` (class, x) in the class colours; returns the x values."""
    names = dataset_class_names(ds)
    dim = _other_dim(da)
    x, xl = _xvalues(ds, da, dim)
    da = da.transpose("class", dim)
    for i in range(da.sizes["class"]):
        ax.plot(x, np.asarray(da.values[i], float), fmt, color=class_color(i),
                label=f"{names[i]}{suffix}" if labelled else None, **kw)
    ax.set_xlabel(xl)
    return x


def _maybe_log(ax, x, which="x"):
    if is_geometric(x):
        log_axis(ax, which)


def _panels(ds, variable, default, kind):
    panels = [variable] if variable is not None else [v for v in default if v in ds.variables]
    if not panels:
        raise ValueError(f"ds: {kind} result has none of {default}")
    return panels


# ------------------------------------------------------------------------------------------------ line kinds
def _curves(ds, ax, variable):
    panels = _panels(ds, variable, ("eps_test", "eps_train"), "curves")
    marks = {"eps_test": "tau_gen", "eps_train": "tau_mem"}
    with styled(ax):
        fig, axs = axes_for(ax, len(panels), what="curves")
        for a, v in zip(axs, panels):
            da = _need(ds, v, "curves")
            x = _class_lines(a, ds, da)
            inf = ds.get(f"{v}_inf")
            tv = ds.get(marks.get(v, ""))
            for i in range(da.sizes["class"]):
                if inf is not None and np.isfinite(float(inf.values[i])):
                    a.axhline(float(inf.values[i]), color=class_color(i), ls="--", lw=0.8)
                if tv is not None and tv.dims == ("class",) and np.isfinite(float(tv.values[i])):
                    a.axvline(float(tv.values[i]), color=class_color(i), ls=":", lw=0.8)
            a.set_ylabel(label(da, v))
            notes = [n for n, ok in (("dashed: τ → ∞", inf is not None),
                                     (f"dotted: {marks.get(v)}", tv is not None)) if ok]
            a.set_title(f"{da.attrs.get('long_name', v)}" + (f" ({'; '.join(notes)})" if notes else ""))
            _maybe_log(a, x)
        axs[0].legend()
    return fig


def _timescales(ds, ax, variable):
    panels = _panels(ds, variable, _TIMES, "timescales")
    extra = [d for d in ds[panels[0]].dims if d != "class" and ds.sizes[d] > 1]
    if len(extra) >= 2:
        return _phase(ds, ax, variable or panels[0], kind="timescales")
    names = dataset_class_names(ds)
    if not extra:  # one parameter point: the times per class, side by side
        with styled(ax):
            fig, (a,) = axes_for(ax, 1, what="timescales")
            for j, v in enumerate(panels):
                da = _need(ds, v, "timescales").squeeze()
                for i in range(da.sizes["class"]):
                    a.plot([j + 0.1 * (i - (da.sizes["class"] - 1) / 2)], [float(da.values[i])], "o",
                           color=class_color(i), label=names[i] if j == 0 else None)
            a.set_xticks(range(len(panels)), [str(ds[v].attrs.get("long_name", v)) for v in panels])
            a.set_ylabel(label(ds[panels[0]], panels[0]))
            log_axis(a, "y")
            a.legend()
        return fig
    with styled(ax):
        fig, axs = axes_for(ax, len(panels), what="timescales")
        for a, v in zip(axs, panels):
            da = _need(ds, v, "timescales").squeeze(drop=True)
            x = _class_lines(a, ds, da, fmt="o-", ms=3)
            a.set_ylabel(label(da, v))
            a.set_title(str(da.attrs.get("long_name", v)))
            log_axis(a, "y")
            _maybe_log(a, x)
        axs[0].legend()
    return fig


def _simulate_rf(ds, ax, variable):
    panels = _panels(ds, variable, ("eps_test", "eps_train"), "simulate_rf")
    with styled(ax):
        fig, axs = axes_for(ax, len(panels), what="simulate_rf")
        for a, v in zip(axs, panels):
            da = _need(ds, v, "simulate_rf")
            x = _class_lines(a, ds, da, fmt="o-", ms=3)
            a.axhline(0, color="k", lw=0.4)
            a.set_ylabel(label(da, v))
            a.set_title(str(da.attrs.get("long_name", v)))
            _maybe_log(a, x)
        axs[0].legend()
    return fig


def _simulate_unet(ds, ax, variable):
    panels = _panels(ds, variable, ("eps_test", "eps_train", "mem_fraction"), "simulate_unet")
    names = dataset_class_names(ds)
    with styled(ax):
        fig, axs = axes_for(ax, len(panels), what="simulate_unet")
        for a, v in zip(axs, panels):
            da = _need(ds, v, "simulate_unet")
            tdims = [d for d in da.dims if d in ("time", "t")]
            note = ""
            if tdims:  # the per-diffusion-time errors, averaged: one curve per class
                da = da.mean(tdims, keep_attrs=True)
                note = " (mean over diffusion times)"
            x = _class_lines(a, ds, da, fmt="o-", ms=3)
            if v == "mem_fraction" and "mem_ci_low" in ds and "mem_ci_high" in ds:
                lo, hi = (ds[k].transpose("class", ...).values for k in ("mem_ci_low", "mem_ci_high"))
                for i in range(len(names)):
                    a.fill_between(x, lo[i], hi[i], color=class_color(i), alpha=0.2, lw=0)
                note = " (band: 95 % interval)"
                a.set_ylim(-0.02, 1.02)
            a.set_ylabel(label(da, v))
            a.set_title(str(da.attrs.get("long_name", v)) + note)
            _maybe_log(a, x)
        axs[0].legend()
    return fig


def _comparison(ds, ax, variable):
    keys = [variable] if variable is not None else [k for k in ("eps_test", "eps_train") if f"{k}_theory" in ds]
    if not keys:
        raise ValueError("ds: comparison result has no eps_test_theory / eps_train_theory")
    with styled(ax):
        fig, axs = axes_for(ax, len(keys), what="comparison")
        for a, k in zip(axs, keys):
            th = _need(ds, f"{k}_theory", "comparison")
            x = _class_lines(a, ds, th, suffix=" theory")
            if f"{k}_sim" in ds:
                _class_lines(a, ds, ds[f"{k}_sim"], fmt="o", suffix=" simulation", ms=3)
            a.axhline(0, color="k", lw=0.4)
            a.set_ylabel(label(th, k))
            a.set_title(k.replace("eps_", "ε^") + ": lines theory, points simulation")
            _maybe_log(a, x)
        axs[0].legend()
    return fig


def _spectrum(ds, ax, variable):
    v = variable or "density"
    da = _need(ds, v, "spectrum")
    dim = _other_dim(da, skip=())
    names = dataset_class_names(ds)
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, what="spectrum")
        lam, xl = _xvalues(ds, da, dim)
        a.plot(lam, lam * np.asarray(da.values, float), "k", label=f"λ × {da.attrs.get('long_name', v)}")
        if variable is None and "class_density" in ds:
            part = ds["class_density"].transpose("class", dim).values
            for i in range(part.shape[0]):
                a.plot(lam, lam * part[i], "--", lw=1, color=class_color(i), label=f"{names[i]} part")
        mass = float(ds.attrs.get("atom_mass", 0.0) or 0.0)
        if mass > 0:
            a.axvline(float(ds.attrs["atom_location"]), color="0.5", ls=":", lw=1, label=f"atom (mass {mass:.3g})")
        if "outliers" in ds:
            for i, o in enumerate(np.ravel(ds["outliers"].values)):
                a.axvline(float(o), color="r", ls=":", lw=1, label="outliers" if i == 0 else None)
        a.set_xlabel(xl)
        a.set_ylabel("λ ρ(λ) (eigenvalue density per unit log λ)")
        log_axis(a, "x")
        a.legend()
    return fig


def _speciation(ds, ax, variable):
    names = dataset_class_names(ds)
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, what="speciation")
        if variable == "phi":
            da = _need(ds, "phi", "speciation")
            _class_lines(a, ds, da, suffix=" theory")
            if "phi_clone" in ds:
                _class_lines(a, ds, ds["phi_clone"], fmt="s", suffix=" cloning")
            a.set_ylabel(label(da, "phi"))
        else:
            th = _need(ds, variable or "theory", "speciation").transpose(..., "class")
            rdim = th.dims[0]
            opt = {k: ds[k].transpose(..., "class").values for k in ("sim", "se", "theory_fine") if k in ds}
            fine_dim = ds["theory_fine"].dims[0] if "theory_fine" in ds else None
            draw_times_vs_ratio(a, _xvalues(ds, th, rdim)[0], th.values, sim=opt.get("sim"), se=opt.get("se"),
                                theory_fine=opt.get("theory_fine"),
                                ratio_fine=None if fine_dim is None else _xvalues(ds, ds["theory_fine"], fine_dim)[0],
                                labels=names)
            a.set_ylabel(label(th, "speciation time t_S,c"))
        a.legend()
    return fig


def _window(ds, ax, variable):
    wname = variable or next((w for w in _WIDTH if w in ds), None)
    if wname is not None and sum(ds.sizes[d] > 1 for d in ds[wname].dims) >= 2:
        return _phase(ds, ax, wname, kind="window")
    names = dataset_class_names(ds)
    gen, end = _need(ds, "tau_gen", "window"), _need(ds, "tau_end", "window")
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, what="window")
        for i in range(gen.sizes["class"]):
            g, e = float(gen.values[i]), float(end.values[i])
            hi = e if np.isfinite(e) else g * 1e3
            a.plot([g, hi], [i, i], "-", lw=4, color=class_color(i), solid_capstyle="butt", label=names[i])
            if not np.isfinite(e):
                a.annotate("", (hi * 3, i), (hi, i), arrowprops={"arrowstyle": "->", "color": class_color(i)})
        if "lo" in ds and "hi" in ds and np.isfinite(float(ds["lo"])) and np.isfinite(float(ds["hi"])):
            lo, hi = float(ds["lo"]), float(ds["hi"])
            if hi > lo:
                a.axvspan(lo, hi, color="0.85", zorder=0, label="stopping window")
        a.set_yticks(range(len(names)), names)
        a.set_ylim(len(names) - 0.5, -0.5)
        units = str(gen.attrs.get("units", "") or "")
        a.set_xlabel("training time τ" + ("" if units in ("", "1", "dimensionless") else f" [{units}]"))
        log_axis(a, "x")
        w = float(ds[wname]) if wname is not None and ds[wname].ndim == 0 else None
        a.set_title("each class: [τ_gen, τ_end]" + ("" if w is None else
                    f"; {'width' if w >= 0 else 'disparity'} {abs(w):.3g} decades"))
        a.legend()
    return fig


# ------------------------------------------------------------------------------------------------ maps
def _map_axis(ds, dim: str):
    if dim in ds.coords:
        return np.asarray(ds[dim].values, float), label(ds[dim], dim)
    return np.arange(ds.sizes[dim], dtype=float), dim


def _phase(ds, ax, variable, kind="phase_diagram"):
    """Heat map over the two swept axes: log10 of class 1's over class 2's value of a per-class variable, or a
    variable without a class dim as it is; level 0 contoured (where the order of the classes reverses), cells
    that are not finite in grey (listed in the legend)."""
    from matplotlib.patches import Patch

    v = variable or next((t for t in _TIMES if t in ds), None)
    if v is None:
        raise ValueError(f"variable: {kind} result has none of {_TIMES}; name the variable to map")
    da = _need(ds, v, kind)
    names = dataset_class_names(ds)
    long = str(da.attrs.get("long_name", v))
    if "class" in da.dims:
        if da.sizes["class"] < 2:
            raise ValueError(f"variable: {v!r} has one class; a log-ratio needs two")
        a1, a2 = (da.isel({"class": i}) for i in (0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(a1 / a2)
        cb_label = f"log10({names[0]} / {names[1]}) [decades]"  # short: it runs along the bar
        title = f"{long}: red, {names[0]} slower; blue, {names[1]} slower"
    else:
        z, cb_label, title = da, label(da, v), long
    z = z.squeeze(drop=True)
    if z.ndim != 2:
        raise ValueError(f"variable: {kind} maps two axes; {v!r} varies along {tuple(z.dims)} "
                         f"(select one value of the others first, e.g. ds.isel({z.dims[0]}=0))")
    ydim, xdim = z.dims
    x, xl = _map_axis(ds, xdim)
    y, yl = _map_axis(ds, ydim)
    zv = np.asarray(z.values, float)
    fin = np.isfinite(zv)
    diverging = "class" in da.dims or (fin.any() and zv[fin].min() < 0 < zv[fin].max())
    import matplotlib as mpl

    cmap = mpl.colormaps["RdBu_r" if diverging else "viridis"].with_extremes(bad="0.8")
    if fin.any():
        lim = float(np.max(np.abs(zv[fin]))) or 1.0
        vmin, vmax = (-lim, lim) if diverging else (float(zv[fin].min()), float(zv[fin].max()))
    else:
        vmin, vmax = -1.0, 1.0
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, size=(5.4, 4.0), what=kind)
        im = a.pcolormesh(x, y, np.ma.masked_invalid(zv), cmap=cmap, vmin=vmin, vmax=vmax, shading="nearest",
                           rasterized=True)  # an image inside the vector PDF: 64 × 64 cells 71 → 21 kB
        colorbar(im, a, cb_label)
        handles = []
        if fin.sum() >= 4 and zv[fin].min() < 0 < zv[fin].max() and min(zv.shape) >= 2:
            a.contour(x, y, np.ma.masked_invalid(zv), levels=[0.0], colors="k", linewidths=1.2)
            handles.append(mpl.lines.Line2D([], [], color="k", label="level 0 (order reverses)"))
        if not fin.all():
            handles.append(Patch(facecolor="0.8", label="not finite (τ = ∞ or undefined)"))
        if handles and ax is None:  # below the map, outside it: a legend inside would hide cells
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
        elif handles:
            a.legend(handles=handles, loc="best", framealpha=0.9)
        # wrapped: a long name on one line is clipped by the figure edge (constrained layout cannot shrink text)
        a.set(xlabel=xl, ylabel=yl, title=textwrap.fill(title, 60))
        _maybe_log(a, x, "x")
        _maybe_log(a, y, "y")
    return fig


def _reweight(ds, ax, variable):
    """Each class's interval [τ_gen, τ_end] with equal loss weights (thin) and with the solved ones (thick)."""
    names = dataset_class_names(ds)
    gen, end = _need(ds, "tau_gen", "reweight"), _need(ds, "tau_end", "reweight")
    with styled(ax):
        fig, (a,) = axes_for(ax, 1, what="reweight")
        for i in range(gen.sizes["class"]):
            w = float(ds["loss_weights"].values[i]) if "loss_weights" in ds else float("nan")
            for j, (lw, off, how) in enumerate([(1.5, -0.15, "equal weights"), (5.0, 0.15, f"w = {w:.3g}")]):
                g, e = float(gen.values[j, i]), float(end.values[j, i])
                hi = e if np.isfinite(e) else g * 1e3
                a.plot([g, hi], [i + off, i + off], "-", lw=lw, color=class_color(i), solid_capstyle="butt",
                       label=f"{names[i]}, {how}")
        a.set_yticks(range(len(names)), names)
        a.set_ylim(len(names) - 0.5, -0.5)
        a.set_xlabel(f"training time τ [{gen.attrs.get('units', '?')}]")
        log_axis(a, "x")
        a.set_title(f"[τ_gen, τ_end] per class: target {ds.attrs.get('target', '?')}")
        a.legend(fontsize="small")
    return fig


KINDS = {"spectrum": _spectrum, "curves": _curves, "timescales": _timescales, "phase_diagram": _phase,
         "window": _window, "speciation": _speciation, "simulate_rf": _simulate_rf,
         "simulate_unet": _simulate_unet, "comparison": _comparison, "reweight": _reweight}


def plot_result(ds, *, ax=None, variable: str | None = None):
    """The standard figure of a result Dataset (see the module table), chosen by ``ds.attrs["rfdiff_kind"]``.

    ``ax``: an Axes (or as many as the kind has panels) to draw into; ``None`` makes a new figure in the house
    style (:func:`rfdiff.plots.style`). ``variable``: one panel / the variable to map. Returns the Figure.
    Save it with :func:`rfdiff.plots.save_figure`.

    >>> # fig = plot_result(rfdiff.open_result("out/phase.nc"), variable="tau_mem")
    """
    kind = getattr(ds, "attrs", {}).get("rfdiff_kind")
    if kind not in KINDS:
        raise ValueError(f"ds: attrs['rfdiff_kind'] must be one of {sorted(KINDS)}, got {kind!r}")
    if variable is not None and variable not in ds.variables:
        raise ValueError(f"variable: {variable!r} is not in the {kind} result "
                         f"(variables: {', '.join(sorted(map(str, ds.data_vars)))})")
    with styled(ax):
        fig = KINDS[kind](ds, ax, variable)
        title = ds.attrs.get("title")
        if ax is None and title:
            fig.suptitle(str(title))
    return fig
