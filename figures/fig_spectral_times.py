"""Spectral vs threshold per-class times over (σ_1/σ_2 × ψ_n) (issue #12 item 2).

* ``spectral_times``  log10(τ_1/τ_2) of the threshold times τ_gen, τ_mem, τ_onset (top row, ridge-time clock of
  ``rfdiff.theory.curves``) and of the spectral times τ^spec (bottom row, clock-free,
  ``rfdiff.theory.timescales.spectral_times`` on the d → ∞ loss masses); crosses mark the points where the two
  definitions order the classes differently. Drawn by :func:`rfdiff.plots.plot_order_pairs`.

Weak centroids (regime A), π = (½, ½), tanh, ψ_p = 8, t = 0.01. Numbers and reading:
``theory_notes/11_spectral_times.md`` §4. Cost: see ``make``.
"""

from __future__ import annotations

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from rfdiff import GaussianMixture, RFModel  # noqa: E402
from rfdiff.plots import plot_order_pairs  # noqa: E402
from rfdiff.sweep import phase_diagram  # noqa: E402
from rfdiff.theory.phase import chunk_size_for, timescale_fn  # noqa: E402

BASE = GaussianMixture.create([0.5, 0.5], [1.0, 1.0])
MODEL = RFModel(8.0, 0.25, 0.01, "tanh")
TAUS = np.logspace(-3, 7, 120)
PAIRS = (("tau_gen", "tau_gen_spec"), ("tau_mem", "tau_mem_spec"), ("tau_onset", "tau_onset_spec"))


def compute(quick: bool = False):
    """(psi_n values, sigma ratios, {name: τ (len(rs), len(xs), 2)}, max spec_error) on an n × n grid."""
    n = 6 if quick else 14
    rs = np.logspace(np.log10(0.25), np.log10(4.0), n)
    xs = np.logspace(np.log10(0.02), np.log10(32.0), n)
    grid = {"sigma_ratio": rs, "psi_n": xs}
    fn = timescale_fn(BASE, MODEL, taus=TAUS, n_quad=1, grid=grid, spectral=True)
    res = phase_diagram(fn, grid, progress=False, chunk_size=chunk_size_for(1, 2))
    taus = {k: np.asarray(res[k]).reshape(n, n, 2) for pair in PAIRS for k in pair}
    return xs, rs, taus, float(np.max(np.asarray(res["spec_error"])))


def agreement(taus):
    """{pair: (agree, defined)}: points where both definitions order the classes and agree on the order."""
    out = {}
    for thr, spec in PAIRS:
        a, b = taus[thr], taus[spec]
        with np.errstate(divide="ignore", invalid="ignore"):
            sa, sb = np.sign(np.log(a[..., 0] / a[..., 1])), np.sign(np.log(b[..., 0] / b[..., 1]))
        ok = np.isfinite(sa) & np.isfinite(sb) & (sa != 0) & (sb != 0)
        out[thr] = (int(np.sum(ok & (sa == sb))), int(np.sum(ok)))
    return out


def make(quick: bool = False):
    """Yields ("spectral_times", Figure). Compute time on the 2-core CPU with one other job running: 9.4 s quick
    (6 × 6, compilation included), 12.3 s default (14 × 14, after the quick grid in the same process); peak RSS of
    both 0.74 GB. Under a load average of ~19 the same took 584 s / 675 s (compilation starved)."""
    xs, rs, taus, err = compute(quick)
    fig = plot_order_pairs(xs, rs, [(taus[a], taus[b]) for a, b in PAIRS],
                           names=[a for a, _ in PAIRS], xlabel="ψ_n = n/d   (ψ_p = 8)", ylabel="σ_1/σ_2")
    fig.suptitle(f"threshold (top, ridge clock) vs spectral (bottom, clock-free) order; max grid error {err:.1g}")
    yield "spectral_times", fig
