"""Per-class times over parameter grids from the asymptotic theory: phase diagrams and reversal boundaries.

A *point* is a base mixture and model modified by named scalar parameters:

* ``sigma_ratio`` r: class 0's standard deviation becomes r·σ_1 (σ_0² = r² σ_1²), other classes unchanged;
* ``pi1``: class 0's proportion; the others are rescaled to sum to 1 − π_1 (imbalance);
* ``separation`` s: strong orthogonal centroids, M = s·I (||μ_c||²/d = s; s = 0 is regime A);
* ``norm_ratio`` ρ: ||μ_0||/||μ_1|| = ρ, class 1's norm kept (from ``separation`` when given, else the base Gram),
  all cosines kept, so M_00 = ρ² M_11 (:func:`centroid_geometry`; errors count classes from 1 as the CLI does);
* ``cosine`` κ: cos(μ_0, μ_1) = κ, norms kept: M_01 = M_10 = κ √(M_00 M_11). Both act on the base Gram in the
  package's normalisation M = μμᵀ/d, so they follow its regime: weak centroids (M = O(1/d), built by
  :meth:`~rfdiff.GaussianMixture.with_weak_centroids`) or strong ones (M = O(1), or ``separation``);
* ``psi_p``, ``psi_n``, ``t``: model parameters; ``psi_ratio`` q sets ψ_p = q·ψ_n (ψ_n from the point or the
  base model; not together with ``psi_p``).

:func:`timescale_fn` returns the jittable ``params -> {tau_gen, tau_mem, tau_onset, ...}`` (each (K,)) that
:func:`rfdiff.sweep.phase_diagram` vmaps over a grid; :func:`reversal_line` root-finds (brentq) the imbalance at
which the order of two classes' times flips, for each variance ratio (``theory_notes/04_dynamics.md`` §5).

Example::

    >>> from rfdiff import GaussianMixture, RFModel
    >>> fn = timescale_fn(GaussianMixture.create([0.5, 0.5], [1.0, 1.0]), RFModel(4.0, 2.0, 0.01, "tanh"))
    >>> with jax.enable_x64(True):
    ...     out = jax.jit(fn)({"sigma_ratio": 2.0, "pi1": 0.5})
    >>> bool(out["tau_gen"][0] < out["tau_gen"][1])       # the high-variance class generalises first
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from .curves import spectral_masses_core, theory_curves_core
from .equations import neuron_population
from .timescales import SpectralTimes, curve_timescales, reversal_boundary, spectral_times
from ..precision import x64

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from collections.abc import Callable, Mapping

    from jaxtyping import Array, ArrayLike, Float

    from ..model.mixture import GaussianMixture
    from ..model.rf import RFModel

__all__ = ["PARAMETERS", "centroid_geometry", "default_n_quad", "POPULATION_PARAMETERS", "chunk_size_for", "point_arrays", "timescale_fn", "reversal_line",
           "default_taus"]

PARAMETERS = ("sigma_ratio", "pi1", "separation", "norm_ratio", "cosine", "psi_p", "psi_n", "psi_ratio", "t")


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_value(name: str, x) -> None:
    """One-line ValueError naming ``name`` for a concrete value outside its range (tracers pass unchecked)."""
    if not _concrete(x):
        return
    v = np.asarray(x, dtype=np.float64)
    if name == "cosine":
        bad = not (np.all(np.isfinite(v)) and np.all(np.abs(v) <= 1.0))
        if bad:
            raise ValueError(f"cosine must be in [-1, 1], got {v.tolist()}")
    elif name in ("norm_ratio", "psi_ratio"):
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ValueError(f"{name} must be finite and > 0, got {v.tolist()}")


def centroid_geometry(gram, norm_ratio=None, cosine=None):
    """The Gram M (K, K) with ||μ_0||/||μ_1|| set to ``norm_ratio`` and cos(μ_0, μ_1) to ``cosine``.

    Writing M = diag(n) C diag(n) (n_c = √M_cc, C the cosines; C_cc = 1), ``norm_ratio`` ρ sets n_0 = ρ n_1 and
    ``cosine`` κ sets C_01 = C_10 = κ; everything else is kept, so M_01 = κ ρ n_1². ``None`` keeps the base
    value. Jittable; concrete values are validated (ρ > 0, κ ∈ [−1, 1], class 1's norm > 0, M PSD), each error
    naming its parameter.

    >>> import jax.numpy as jnp
    >>> with jax.enable_x64(True):       # ||μ_0||² = 0.25·4, M_01 = 0.5·√(1·4)
    ...     centroid_geometry(4.0 * jnp.eye(2), norm_ratio=0.5, cosine=0.5).tolist()
    [[1.0, 1.0], [1.0, 4.0]]
    """
    gram = jnp.asarray(gram, jnp.float64)
    K = gram.shape[0]
    names = [k for k, v in (("norm_ratio", norm_ratio), ("cosine", cosine)) if v is not None]
    if K < 2:
        raise ValueError(f"{names[0]} needs at least two classes")
    for k, v in (("norm_ratio", norm_ratio), ("cosine", cosine)):
        if v is not None:
            _check_value(k, v)
    norms = jnp.sqrt(jnp.clip(jnp.diag(gram), 0.0, None))
    if _concrete(gram) and not float(np.asarray(gram)[1, 1]) > 0.0:  # (inside a trace norms is a tracer)
        raise ValueError(f"{names[0]} needs a non-zero centroid for class 2 (a base centroid_gram or separation)")
    safe = jnp.where(norms > 0, norms, 1.0)
    cos = gram / (safe[:, None] * safe[None, :])
    if norm_ratio is not None:
        norms = norms.at[0].set(jnp.asarray(norm_ratio, jnp.float64) * norms[1])
    if cosine is not None:
        kappa = jnp.asarray(cosine, jnp.float64)
        cos = cos.at[0, 1].set(kappa).at[1, 0].set(kappa)
    cos = cos.at[jnp.diag_indices(K)].set(1.0)
    out = cos * norms[:, None] * norms[None, :]
    if K > 2 and _concrete(out) and np.linalg.eigvalsh(np.asarray(out)).min() < -1e-10 * float(jnp.max(jnp.abs(out))):
        raise ValueError(f"{names[-1]} gives a centroid Gram that is not positive semi-definite "
                         f"(cosines with the other classes are incompatible)")
    return out


def default_taus(num: int = 64, lo: float = 1e-3, hi: float = 1e6) -> np.ndarray:
    """Log grid of training times used by the theory times (log-linear interpolation resolves crossings)."""
    return np.logspace(np.log10(lo), np.log10(hi), num)


@float64
def point_arrays(base_mixture: GaussianMixture, base_model: RFModel, params: Mapping[str, Float[ArrayLike, ""]]
                 ) -> tuple[Array, Array, Array, Array, Array, Array]:
    """(proportions, variances, gram, ψ_p, ψ_n, t) of the point ``params`` (see module docstring); jittable;
    float64 whatever the caller's setting (it returned float32 arrays to a caller without x64)."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown phase-diagram parameter(s) {sorted(unknown)}; choose from {PARAMETERS}")
    props = jnp.asarray(base_mixture.proportions, jnp.float64)
    var = jnp.asarray(base_mixture.class_variance, jnp.float64)
    gram = jnp.asarray(base_mixture.centroid_gram, jnp.float64)
    K = props.shape[0]
    if "sigma_ratio" in params:
        if K < 2:
            raise ValueError("sigma_ratio needs at least two classes")
        var = var.at[0].set(jnp.asarray(params["sigma_ratio"], jnp.float64) ** 2 * var[1])
    if "pi1" in params:
        pi = jnp.asarray(params["pi1"], jnp.float64)
        rest = props[1:] / jnp.sum(props[1:])
        props = jnp.concatenate([pi[None], (1.0 - pi) * rest])
    if "separation" in params:
        gram = jnp.asarray(params["separation"], jnp.float64) * jnp.eye(K)
    if "norm_ratio" in params or "cosine" in params:
        gram = centroid_geometry(gram, params.get("norm_ratio"), params.get("cosine"))
    get = lambda k, dflt: jnp.asarray(params.get(k, dflt), jnp.float64)
    psi_n = get("psi_n", base_model.psi_n)
    if "psi_ratio" in params:  # ψ_p = (ψ_p/ψ_n)·ψ_n: the overparametrisation at fixed ψ_n
        if "psi_p" in params:
            raise ValueError("psi_ratio sets psi_p = psi_ratio * psi_n: give one of psi_ratio and psi_p, not both")
        _check_value("psi_ratio", params["psi_ratio"])
        psi_p = get("psi_ratio", 1.0) * psi_n
    else:
        psi_p = get("psi_p", base_model.psi_p)
    return props, var, gram, psi_p, psi_n, get("t", base_model.t)


# the neuron population depends on these alone (variances, Gram, t)
POPULATION_PARAMETERS = ("sigma_ratio", "separation", "norm_ratio", "cosine", "t")


def _population_table(base_mixture, base_model, grid, n_quad, coef_nodes):
    """Populations at every combination of the distinct values of the population parameters in ``grid``.

    Returns ``(names, values, pops)``: ``values[i]`` the sorted distinct values of ``names[i]``, ``pops`` a
    :class:`~rfdiff.theory.equations.NeuronPopulation` whose leaves carry a leading axis over the C-order
    flattened combinations (one combination, the base point, when ``names`` is empty).
    """
    names = tuple(k for k in POPULATION_PARAMETERS if k in grid)
    values = []
    for k in names:
        v = np.unique(np.asarray(grid[k], dtype=np.float64).ravel())
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError(f"grid[{k!r}] must hold finite values")
        values.append(v)
    combos = np.stack([g.ravel() for g in np.meshgrid(*values, indexing="ij")], -1) if names else np.zeros((1, 0))

    @jax.jit
    def build(row):
        _, var, gram, _, _, t = point_arrays(base_mixture, base_model, {k: row[i] for i, k in enumerate(names)})
        return neuron_population(base_model.activation, var, gram, t, n_quad=n_quad, coef_nodes=coef_nodes)

    with x64():
        pops = jax.lax.map(build, jnp.asarray(combos, jnp.float64))
    return names, values, pops


def default_n_quad(base_mixture: GaussianMixture, grid: Mapping[str, ArrayLike] | None = None) -> int:
    """Shift nodes of the phase-diagram population: 1 when no point has centroid shifts (zero base Gram and no
    non-zero ``separation`` in ``grid``), else 256 (the spectrum's default: E a² within 1e-4 of 1024 nodes)."""
    sep = np.asarray((grid or {}).get("separation", [0.0]), dtype=np.float64)
    shifted = float(np.max(np.abs(np.asarray(base_mixture.centroid_gram)))) > 0.0 or bool(np.any(sep != 0.0))
    return 256 if shifted else 1


def timescale_fn(base_mixture: GaussianMixture, base_model: RFModel, *, taus: Float[ArrayLike, "T"] | None = None,
                 n_quad: int | None = None, coef_nodes: int = 64, grid: Mapping[str, ArrayLike] | None = None,
                 spectral: bool = False) -> Callable[[Mapping[str, Array]], dict[str, Array]]:
    """``params -> dict`` of per-class theory times (K,): ``tau_gen``, ``tau_mem``, ``tau_onset``,
    ``eps_test_min``, ``eps_train_inf`` and the scalar fixed-point ``residual``. Pure and jittable.

    Float64 whatever the caller's setting when called directly: the τ grid is kept as a NumPy float64
    array here and converted inside ``fn``, which runs under :func:`rfdiff.precision.float64`, so a caller
    with x64 off gets the float64 result (tests/theory/test_phase.py checks 1e-12). Inside a caller's
    ``jit``/``vmap`` (``rfdiff.sweep``) the caller must enable x64 around the jit: JAX cannot switch it
    inside a trace (it fails to lower), and inputs traced as float32 could not be recovered anyway.
    ``n_quad`` (Sobol shift nodes) defaults to :func:`default_n_quad` (1 without centroid shifts, else 256;
    a ``separation`` in ``grid`` counts). Without ``grid`` and with that default at 1, calling ``fn`` with a
    ``separation`` is refused (one node cannot represent the shifts; pass ``n_quad`` or ``grid``).

    ``grid`` ({name: values}, the values ``fn`` will be called with, axes and fixed values alike): the neuron
    population depends only on (variances, Gram, t), i.e. on ``sigma_ratio``, ``separation``, ``norm_ratio``,
    ``cosine`` and ``t`` (:data:`POPULATION_PARAMETERS`), and building it is most of the work of a point. With ``grid`` it is built
    once per distinct combination of those parameters' values here (once in all when none of them is in
    ``grid``), and ``fn`` looks its point's population up instead of rebuilding it: a 64 × 64
    (σ-ratio × π_1) diagram builds 64 populations, not 4096. ``fn`` must then be called with exactly the
    population parameters that ``grid`` names (ValueError otherwise) and with their values from ``grid``: a
    value absent from the table raises a ValueError when called eagerly and gives a NaN time and an infinite
    ``residual`` inside a trace (callers check the residual; ``rfdiff phase-diagram`` refuses such a point).
    Without ``grid`` every call builds its population (single points, root finding).

    ``spectral=True`` adds the spectral times of :func:`rfdiff.theory.timescales.spectral_times` on the d → ∞ loss
    masses (:func:`rfdiff.theory.curves.spectral_masses_core`, same population): ``tau_gen_spec``,
    ``tau_mem_spec``, ``tau_onset_spec``, ``mass_spec`` (K,) and the scalar ``spec_error`` (largest relative
    mass or first-moment error of the λ grid; ``inf`` where a node did not converge). Clock-free.
    """
    taus = np.asarray(default_taus() if taus is None else taus, dtype=np.float64)
    if taus.ndim != 1 or taus.size < 2 or np.any(taus <= 0) or np.any(np.diff(taus) <= 0):
        raise ValueError("taus must be a 1-d increasing array of at least 2 positive times")
    defaulted_single = n_quad is None and default_n_quad(base_mixture, grid) == 1
    if n_quad is None:
        n_quad = default_n_quad(base_mixture, grid)
    if grid is not None:
        unknown = set(grid) - set(PARAMETERS)
        if unknown:
            raise ValueError(f"unknown phase-diagram parameter(s) {sorted(unknown)} in grid; choose from {PARAMETERS}")
        for k in ("norm_ratio", "cosine", "psi_ratio"):  # values are traced in the table: check them here
            if k in grid:
                _check_value(k, grid[k])
        if "cosine" in grid and base_mixture.num_classes > 2:  # PSD depends on the cosines alone (M = D C D)
            base = {"separation": 1.0} if "separation" in grid else {}
            for c in np.unique(np.asarray(grid["cosine"], np.float64)):
                point_arrays(base_mixture, base_model, {**base, "cosine": float(c)})
        names, values, table = _population_table(base_mixture, base_model, grid, n_quad, coef_nodes)

    def lookup(params):
        """This point's population from the table, and whether its values are in the table."""
        given = tuple(k for k in POPULATION_PARAMETERS if k in params)
        if given != names:
            raise ValueError(f"fn was built for population parameters {list(names)} (grid) but called with "
                             f"{list(given)}; pass every population parameter's values in grid=")
        idx, ok = jnp.zeros((), jnp.int32), jnp.array(True)
        for k, v in zip(names, values):
            x = jnp.asarray(params[k], jnp.float64)
            tab = jnp.asarray(v)
            i = jnp.clip(jnp.searchsorted(tab, x), 0, v.size - 1).astype(jnp.int32)
            ok = ok & (tab[i] == x)
            idx = idx * v.size + i
            if not isinstance(x, jax.core.Tracer) and not bool(tab[i] == x):
                raise ValueError(f"{k}={float(x)!r} is not among the grid values fn was built with")
        return jax.tree.map(lambda a: a[idx], table), ok

    @float64
    def fn(params):
        if defaulted_single and grid is None and "separation" in params:
            raise ValueError("separation needs shift nodes, but n_quad defaulted to 1 (no shifts in the base "
                             "mixture): pass n_quad (e.g. 256) or grid= with the separation values")
        props, var, gram, psi_p, psi_n, t = point_arrays(base_mixture, base_model, params)
        tg = jnp.asarray(taus, jnp.float64)
        pop, ok = (None, True) if grid is None else lookup(params)
        out = theory_curves_core(props, var, gram, psi_p, psi_n, t, tg, activation=base_model.activation,
                                 n_quad=n_quad, coef_nodes=coef_nodes, pop=pop)
        ts = curve_timescales(tg, out["eps_test"], out["eps_train"], out["eps_train_inf"])
        res = {"tau_gen": ts.tau_gen, "tau_mem": ts.tau_mem, "tau_onset": ts.tau_onset,
               "eps_test_min": ts.eps_test_min, "eps_train_inf": ts.eps_train_inf, "residual": out["residual"]}
        if spectral:
            if pop is None:
                pop = neuron_population(base_model.activation, var, gram, t, n_quad=n_quad, coef_nodes=coef_nodes)
            sm = spectral_masses_core(props, var, gram, psi_p, psi_n, t, pop=pop)
            res.update(spectral_times(sm["lam"], sm["mass"])._asdict())
            err = jnp.maximum(jnp.max(jnp.abs(sm["mass_error"])), jnp.max(jnp.abs(sm["moment_error"])))
            res["spec_error"] = jnp.where(sm["bad"] > 0, jnp.inf, err)
        if grid is not None:  # a point outside the table: NaN times and an infinite residual, never a guess
            res = {k: jnp.where(ok, v, jnp.inf if k in ("residual", "spec_error") else jnp.nan)
                   for k, v in res.items()}
        return res

    # the trailing dimension of each per-class output: phase_diagram names it "class" without being told
    fn.out_dims = {k: ("class",) for k in PER_CLASS_OUTPUTS + (SPECTRAL_OUTPUTS if spectral else ())}
    return fn


PER_CLASS_OUTPUTS = ("tau_gen", "tau_mem", "tau_onset", "eps_test_min", "eps_train_inf")
SPECTRAL_OUTPUTS = SpectralTimes._fields  # the one list of spectral output names


def chunk_size_for(n_quad: int, num_classes: int, *, devices: int = 1, budget_bytes: int = 1 << 16, lo: int = 16,
                   hi: int = 1024) -> int:
    """Grid points per compiled batch of a phase diagram: ``devices`` × the points a device takes, the largest
    power of two with ``points × n_quad × K × 8 B ≤ budget_bytes`` (default 64 KiB) clipped to [lo, hi/devices]
    (:func:`rfdiff.sweep.phase_diagram` gives each local device its block of a chunk).

    The solver's batched node arrays are (points, n_quad, K) float64; keeping one within the CPU's cache is what
    makes a batch fast, and it bounds the memory of a batch far below 2 GB whatever the grid. Measured with the
    node-feature matvecs (120 τ, K = 2, one device, 2 cores): 256 nodes 3.0 / 2.9 / 3.3 / 3.6 ms a point at
    8 / 16 / 32 / 64 points a batch; 64 nodes 0.99 / 1.00 / 1.12 ms at 32 / 64 / 128. Regime A (one node) gets
    ``hi`` in all: there the per-point cost is flat (1.3–1.5 ms from 64 to 4096 points a batch), and two XLA:CPU
    host devices with 1024 points each hung (no progress at 0 % CPU; 512 each run).

    >>> chunk_size_for(256, 2), chunk_size_for(64, 2), chunk_size_for(1, 2), chunk_size_for(1, 2, devices=2)
    (16, 64, 1024, 1024)
    """
    for name, v in (("n_quad", n_quad), ("num_classes", num_classes), ("devices", devices),
                    ("budget_bytes", budget_bytes)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    per_point = int(n_quad) * int(num_classes) * 8
    n = max(1, int(budget_bytes) // per_point)
    each = min(max(1, hi // int(devices)), max(lo, 1 << (n.bit_length() - 1)))
    return int(devices) * int(each)


def reversal_line(base_mixture: GaussianMixture, base_model: RFModel, sigma_ratios: Float[ArrayLike, "n"], *, which: str = "tau_gen", bracket=(0.02, 0.98),
                  extra: dict | None = None, num_scan: int = 13, fn=None, **kw):
    """Root-found reversal boundary π_1*(σ_1/σ_2): log(τ_0/τ_1) = 0 for the time ``which``.

    For each variance ratio the imbalance π_1 in ``bracket`` where classes 0 and 1 swap order, by a scan plus
    :func:`scipy.optimize.brentq`; NaN where the order does not flip inside the bracket. ``extra`` fixes
    other parameters (e.g. ``{"separation": 16.0}``). ``fn``: a jitted :func:`timescale_fn` to reuse (saves
    a compilation); ``kw`` go to :func:`timescale_fn` otherwise.
    """
    if which not in ("tau_gen", "tau_mem", "tau_onset"):
        raise ValueError(f"which must be tau_gen, tau_mem or tau_onset, got {which!r}")
    fn = jax.jit(timescale_fn(base_mixture, base_model, **kw)) if fn is None else fn
    extra = dict(extra or {})

    def log_ratio(r, pi1):
        out = fn({"sigma_ratio": jnp.float64(r), "pi1": jnp.float64(pi1),
                  **{k: jnp.float64(v) for k, v in extra.items()}})
        tau = np.asarray(out[which])
        return float(np.log(tau[0] / tau[1]))

    with x64():
        return reversal_boundary(log_ratio, sigma_ratios, bracket, num_scan=num_scan)
