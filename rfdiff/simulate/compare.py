"""Theory vs simulation: closed-form curves of a realised problem, and per-class times from both.

The theory side is the exact finite-d closed form of :mod:`rfdiff.dynamics` for the *same* realisation the
simulation trains on; the times of both come from :func:`rfdiff.timescales.curve_timescales` (one
implementation of the definitions). Curve files exchanged by ``rfdiff simulate rf`` and ``rfdiff compare`` hold

    tau (T,), eps_train (K, T), eps_test (K, T)  and optionally  eps_train_inf (K,)

(dims ``class``, ``tau``), labelled netCDF results of :mod:`rfdiff.results` (``theory.nc``); a simulation file
(``sim.nc``) holds a :class:`rfdiff.simulate.train.TrainLog` on the dims ``step`` and ``class``. Old ``.npz``
curve files are read too (:func:`rfdiff.results.open_result`).

The clock-free **spectral times** (:func:`rfdiff.theory.timescales.spectral_times`) of the simulated realisation
— from the eigenvalues of its exact U and the per-class loss masses
(:meth:`rfdiff.finite.closed_form.FiniteCurves.spectral_masses`) — travel with the theory (``theory.nc`` holds
``tau_gen_spec``, ``tau_mem_spec``, ``tau_onset_spec``, ``mass_spec``) and are reported beside the simulation's
threshold times. The train curve of the class-weighted loss is 1 − Σ_k m_k h(λ_kτ) with h ≤ min(2x, 1) on the
flow and on every stable GD clock, so a one-class simulation crosses the memorisation and onset levels no
earlier than its spectral times (``theory_notes/11_spectral_times.md``; tested against simulated GD).

Example::

    >>> th = prepare_theory(problem)                              # doctest: +SKIP
    >>> cmp = compare_timescales(th, log)                         # doctest: +SKIP
    >>> cmp["sim"]["tau_gen"], cmp["theory"]["tau_gen"]           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64, x64
from ..io import content_key, load_result, save_result
from ..results import build, class_coords, curve_vars, open_result, provenance, write

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from ..finite.features import FeatureMoments, FiniteProblem

__all__ = [
    "Theory", "prepare_theory", "theory_spectral", "compare_timescales", "theory_file", "load_curves",
    "write_comparison",
]


class Theory(NamedTuple):
    """Closed-form per-class curves of one problem (``curves(taus, kind, step)`` → dict) and λ_max(U)."""

    curves: object  # rfdiff.dynamics.FiniteCurves
    lam_max: float


def prepare_theory(problem: FiniteProblem, *, moments: FeatureMoments | None = None, cache: str | Path | None = None,
                   k_max: int | None = None) -> Theory:
    """Exact moments (``rfdiff.features``) and the closed form (``rfdiff.dynamics``) of ``problem``.

    ``cache`` (a directory): the projected spectral data are stored in ``<cache>/theory_<key>.npz`` and reused
    when present, where ``key`` is :func:`rfdiff.io.content_key` of everything they depend on: the whole
    realised problem (W, x0, labels, centroids, mixture, model), ``k_max``, the ``moments`` passed (None: computed
    here from the problem) and the package version. The full key is stored in the file and checked on load, so a
    changed problem is recomputed, never served stale. ``k_max``: Mehler order of the exact moments (None:
    automatic, which refuses strongly correlated neurons at very small d).
    """
    from ..finite.closed_form import ClosedForm, FiniteCurves, finite_curves
    from ..finite.features import population_moments, train_moments

    k = problem.mixture.num_classes
    path, key = None, None
    if cache is not None:
        if Path(cache).suffix == ".npz":
            raise ValueError(f"cache must be a directory (the file is named by the content key), got {cache}")
        key = content_key(problem=problem, k_max=k_max, moments=moments)
        path = Path(cache) / f"theory_{key[:20]}.npz"
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        a = load_result(path) if path is not None and path.is_file() else None
        if a is not None and a[1].get("key") == key:
            a = a[0]
            cf = ClosedForm(lam=jnp.asarray(a["lam"]), P=jnp.asarray(a["P"]), b=jnp.asarray(a["b"]))
            fc = FiniteCurves(cf=cf, S=jnp.asarray(a["S"]), gam2=jnp.asarray(a["gam2"]), mix_const=None,
                              num_classes=k)
        else:
            mom = train_moments(problem, k_max=k_max) if moments is None else moments
            fc = finite_curves(problem, mom, population_moments(problem, k_max=k_max))
            if path is not None:
                save_result(path, {"lam": fc.cf.lam, "P": fc.cf.P, "b": fc.cf.b, "S": fc.S, "gam2": fc.gam2},
                            {"key": key})
    return Theory(fc, float(np.max(np.asarray(fc.cf.lam))))


def theory_spectral(theory: Theory) -> dict:
    """Spectral times of the realised problem (each (K,)): :func:`rfdiff.theory.timescales.spectral_times` on the
    eigenvalues of U and the per-class loss masses of its closed form."""
    from ..theory.timescales import spectral_times

    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"), x64():
        ts = spectral_times(*theory.curves.spectral_masses())
    return {k: np.asarray(v, np.float64) for k, v in ts._asdict().items()}


def _eval(theory: Theory, taus, step):
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"), x64():
        out = theory.curves(np.asarray(taus, np.float64), kind="gd", step=step)
        inf = theory.curves.asymptote()["eps_train"][:, 0]
    return {k: np.asarray(v) for k, v in out.items()}, np.asarray(inf)


def theory_file(path: str | Path, theory: Theory, lr: float, steps: int, num: int = 400, *, attrs=None) -> Path:
    """Write the closed-form GD curves (step ``lr``) on ``num`` log-spaced step counts up to ``steps`` to
    ``path`` (.nc); ``attrs``: provenance (:func:`rfdiff.results.provenance`, kind ``simulate_rf``)."""
    ks = np.unique(np.round(np.geomspace(1, steps, num)))
    cur, inf = _eval(theory, ks * lr, lr)
    taus = ks * lr
    dv = curve_vars({"eps_train": cur["eps_train"], "eps_test": cur["eps_test"], "eps_train_inf": inf}, taus.size)
    dv.update({k: (("class",), v) for k, v in theory_spectral(theory).items()})
    meta = {**(attrs or provenance("simulate_rf")), "clock": "gradient descent", "gd_step": float(lr),
            "title": "finite-d closed-form GD curves of the simulated realisation"}
    return write(path, build(None, dv, coords={"tau": taus, **class_coords(inf.shape[0])}, attrs=meta))


def load_curves(path: str | Path, source: str | None = None) -> dict:
    """Read a curve file into {tau (T,), eps_train (K,T), eps_test (K,T), eps_train_inf (K,) or None,
    spectral: {tau_gen_spec, tau_mem_spec, tau_onset_spec, mass_spec} (each (K,)) or None}.

    Accepts a simulation TrainLog (``sim.nc``), a file of :func:`theory_file`, or the output of ``rfdiff curves``
    (arrays ``finite_eps_*`` / ``theory_eps_*``): ``source`` = "finite" or "theory" picks one (default: finite if
    present). ``.nc`` results and old ``.npz`` ones alike (:func:`rfdiff.results.open_result`).
    """
    ds = open_result(path)
    a = {str(k): v.values for k, v in ds.variables.items()}
    if "train_loss" in a:  # a simulation TrainLog: drop step 0 (τ = 0 is off the log grid)
        s = a["bayes_drop"]
        keep = a["tau"] > 0
        return {"tau": a["tau"][keep], "eps_train": ((a["train_loss"] - (1 - s)) / s)[keep].T,
                "eps_test": ((a["test_loss"] - (1 - s)) / s)[keep].T, "eps_train_inf": None,
                "lr": float(a["tau"][keep][0] / a["step"][keep][0])}
    if source is None:
        source = "finite" if "finite_eps_train" in a else ("theory" if "theory_eps_train" in a else "")
    if source not in ("", "finite", "theory"):
        raise ValueError(f"source must be 'finite' or 'theory', got {source!r}")
    pre = f"{source}_" if source else ""
    for name in ("tau", f"{pre}eps_train", f"{pre}eps_test"):
        if name not in a:
            raise ValueError(f"curve file {path} lacks the array '{name}'")
    from ..theory.timescales import SpectralTimes

    spec_names = SpectralTimes._fields
    spectral = ({k: np.asarray(a[f"{pre}{k}"], np.float64) for k in spec_names}
                if all(f"{pre}{k}" in a for k in spec_names) else None)
    return {"tau": a["tau"], "eps_train": a[f"{pre}eps_train"], "eps_test": a[f"{pre}eps_test"],
            "eps_train_inf": a.get(f"{pre}eps_train_inf"), "spectral": spectral}


def _times(c, inf, window):
    from ..theory.timescales import curve_timescales

    tau = np.asarray(c["tau"])
    keep = (tau >= window[0] * (1 - 1e-12)) & (tau <= window[1] * (1 + 1e-12))
    with x64():
        ts = curve_timescales(tau[keep], np.asarray(c["eps_test"])[:, keep], np.asarray(c["eps_train"])[:, keep],
                              None if inf is None else np.asarray(inf))
    return {k: np.asarray(v, np.float64) for k, v in ts._asdict().items()}


def _order(times):
    t = np.where(np.isfinite(times), times, np.inf)
    return [int(i) for i in np.argsort(t, kind="stable")]


def compare_timescales(theory, sim, *, num: int = 400) -> dict:
    """Per-class times from theory and simulation on the simulation's τ window, same definitions.

    ``theory``: a :class:`Theory` (curves evaluated with the simulation's GD step) or a curve dict
    (:func:`load_curves`); ``sim``: a TrainLog or a curve dict. τ_mem of both uses the theory's ε^tr(∞).
    ``"spectral"`` of the result: the realisation's spectral times (:func:`theory_spectral`; from a curve dict
    when it carries them, else None).
    """
    if not isinstance(sim, dict):
        keep = sim.tau > 0
        lr = float(sim.tau[keep][0] / sim.step[keep][0])
        sim = {"tau": sim.tau[keep], "eps_train": sim.eps_train[keep].T, "eps_test": sim.eps_test[keep].T, "lr": lr}
    window = (float(sim["tau"][0]), float(sim["tau"][-1]))
    if isinstance(theory, Theory):
        if "lr" not in sim:
            raise ValueError("comparing with a Theory needs the simulation's GD step: pass a TrainLog")
        lr = float(sim["lr"])
        ks = np.unique(np.round(np.geomspace(window[0] / lr, window[1] / lr, num)))
        cur, inf = _eval(theory, ks * lr, lr)
        on_sim, _ = _eval(theory, sim["tau"], lr)
        th = {"tau": ks * lr, "eps_train": cur["eps_train"], "eps_test": cur["eps_test"], "eps_train_inf": inf}
        spectral = theory_spectral(theory)
    else:
        th = theory
        inf = th.get("eps_train_inf")
        spectral = th.get("spectral")
        on_sim = {k: np.stack([np.interp(np.log(sim["tau"]), np.log(th["tau"]), row) for row in th[k]])
                  for k in ("eps_train", "eps_test")}
    t_th = _times(th, inf, window)
    t_si = _times(sim, inf, window)
    return {"theory": t_th, "sim": t_si, "spectral": spectral, "tau_theory": th["tau"], "tau_sim": sim["tau"],
            "eps_train_theory": th["eps_train"], "eps_test_theory": th["eps_test"],
            "eps_train_sim": sim["eps_train"], "eps_test_sim": sim["eps_test"],
            "order_gen_theory": _order(t_th["tau_gen"]), "order_gen_sim": _order(t_si["tau_gen"]),
            "order_mem_theory": _order(t_th["tau_mem"]), "order_mem_sim": _order(t_si["tau_mem"]),
            "max_dev_test": float(np.max(np.abs(on_sim["eps_test"] - sim["eps_test"]))),
            "max_dev_train": float(np.max(np.abs(on_sim["eps_train"] - sim["eps_train"])))}


def write_comparison(outdir: str | Path, cmp: dict, title: str = "", *, attrs=None) -> list[Path]:
    """Markdown table (``comparison.md``), labelled result (``comparison.nc``: per-class times of theory and
    simulation, dim ``class`` numbered from 1) and a figure (``comparison.png``). ``attrs``: provenance
    (:func:`rfdiff.results.provenance` of kind ``comparison``; default: without a spec)."""
    from ..io import atomic_write_text
    from ..plots import plot_comparison

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    th, si = cmp["theory"], cmp["sim"]
    rows = ["| class | τ_gen theory | τ_gen sim | rel. diff | τ_mem theory | τ_mem sim | rel. diff | τ_onset theory "
            "| τ_onset sim |", "|---|---|---|---|---|---|---|---|---|"]

    def f(x):
        return "—" if not np.isfinite(x) else f"{x:.4g}"

    def r(a, b):
        return "—" if not (np.isfinite(a) and np.isfinite(b)) else f"{(a - b) / b:+.1%}"

    # classes numbered from 1 in the table, the orders and the file, like the class coordinate
    orders = {name: [c + 1 for c in cmp[name]] for name in ("order_gen_theory", "order_gen_sim",
                                                            "order_mem_theory", "order_mem_sim")}
    for c in range(len(th["tau_gen"])):
        rows.append(f"| {c + 1} | {f(th['tau_gen'][c])} | {f(si['tau_gen'][c])} "
                    f"| {r(si['tau_gen'][c], th['tau_gen'][c])} "
                    f"| {f(th['tau_mem'][c])} | {f(si['tau_mem'][c])} | {r(si['tau_mem'][c], th['tau_mem'][c])} "
                    f"| {f(th['tau_onset'][c])} | {f(si['tau_onset'][c])} |")
    text = [f"# {title or 'theory vs simulation'}", "", *rows, "",
            f"Order by τ_gen: theory {orders['order_gen_theory']}, simulation {orders['order_gen_sim']}; by τ_mem: "
            f"theory {orders['order_mem_theory']}, simulation {orders['order_mem_sim']}.", ""]
    sp = cmp.get("spectral")
    if sp is not None:
        text += ["Spectral times of the simulated realisation (clock-free; `rfdiff.theory.timescales.spectral_times` "
                 "on its U and loss masses):", "",
                 "| class | τ_gen spec | τ_mem spec | τ_onset spec | mass M_c |", "|---|---|---|---|---|"]
        text += [f"| {c + 1} | {f(sp['tau_gen_spec'][c])} | {f(sp['tau_mem_spec'][c])} | {f(sp['tau_onset_spec'][c])} "
                 f"| {f(sp['mass_spec'][c])} |" for c in range(len(th["tau_gen"]))] + [""]
    paths = [atomic_write_text(outdir / "comparison.md", "\n".join(text))]
    arrays = {f"{side}_{k}": v for side in ("theory", "sim") for k, v in cmp[side].items()}
    if sp is not None:
        arrays.update({f"spectral_{k}": v for k, v in sp.items()})
    ds = build(None, {n: (("class",), np.asarray(v)) for n, v in arrays.items()},
               coords=class_coords(len(th["tau_gen"])),
               attrs={**(attrs or provenance("comparison")), "title": title or "theory vs simulation", **orders,
                      "max_dev_test": cmp["max_dev_test"], "max_dev_train": cmp["max_dev_train"]})
    paths.append(write(outdir / "comparison.nc", ds))
    plot_comparison(cmp, outdir / "comparison.png")
    return paths + [outdir / "comparison.png"]
