"""rfdiff: class-dependent learning of random-features diffusion models on Gaussian mixtures.

The sub-packages follow the data flow, each importing only those before it:

* :mod:`rfdiff.model`    — K-class Gaussian mixtures, forward diffusion and exact score, the RF score model,
                            activations and their Gaussian-equivalence coefficients;
* :mod:`rfdiff.theory`   — d → ∞ theory: one equations module, spectrum, per-class curves and times, phase
                            diagrams, speciation (never imports the stages below);
* :mod:`rfdiff.finite`   — finite-d references: realised problems, exact feature moments, closed-form GD;
* :mod:`rfdiff.simulate` — jitted RF training, samplers, generation, metrics, theory-vs-simulation tables;
* :mod:`rfdiff.unet`     — U-Net on class-imbalanced Fashion-MNIST;
* :mod:`rfdiff.cli`      — the ``rfdiff`` command;

plus :mod:`rfdiff.io` (atomic writes, caches), :mod:`rfdiff.results` (labelled netCDF result files),
:mod:`rfdiff.sweep` (grid engine) and
:mod:`rfdiff.plots` (figures). This module only re-exports the public names.

Names are resolved on first use (the table below is the whole public face), so ``import rfdiff`` and
``rfdiff --help`` stay light: JAX loads only when a name that needs it is touched.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

# XLA:CPU's concurrency-optimised scheduler deadlocks on the vmapped continuation solver for K ≥ 4 (gdb: the
# main thread in BlockUntilReady, every worker idle in a futex wait; 0 % CPU forever). Measured, K = 8,
# 16-point chunks: with the scheduler on, 3 of 3 processes hung within their first two calls; with
# --xla_cpu_enable_concurrency_optimized_scheduler=false, 3 of 3 processes ran 4 calls each (0.6 s per call).
# The per-compile option (jax.jit(compiler_options=...)) did not prevent it, so the flag goes into
# XLA_FLAGS, which only takes effect if the XLA backend has not started yet (this package's
# __init__ runs before any of its modules, so this is as early as a library can set it).
if "concurrency_optimized_scheduler" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_enable_concurrency_optimized_scheduler=false").strip()

__version__ = "0.1.0"  # the one source: pyproject.toml reads it (dynamic version); CITATION.cff repeats it (tested)

# public name -> (module, attribute); explicit, like equinox's re-exports, but resolved lazily
_EXPORTS: dict[str, tuple[str, str]] = {
    "ACTIVATIONS": (".model.activations", "ACTIVATIONS"),
    "Activation": (".model.activations", "Activation"),
    "GECoefficients": (".model.activations", "GECoefficients"),
    "class_coefficients": (".model.activations", "class_coefficients"),
    "derivative_moments": (".model.activations", "derivative_moments"),
    "gaussian_expectation": (".model.activations", "gaussian_expectation"),
    "ge_coefficients": (".model.activations", "ge_coefficients"),
    "get_activation": (".model.activations", "get_activation"),
    "class_log_posterior": (".model.diffusion", "class_log_posterior"),
    "delta": (".model.diffusion", "delta"),
    "forward_sample": (".model.diffusion", "forward_sample"),
    "mixture_score": (".model.diffusion", "mixture_score"),
    "noised_variances": (".model.diffusion", "noised_variances"),
    "RFModel": (".model.rf", "RFModel"),
    "FeatureMoments": (".finite.features", "FeatureMoments"),
    "FiniteProblem": (".finite.features", "FiniteProblem"),
    "loss_from_moments": (".finite.features", "loss_from_moments"),
    "population_moments": (".finite.features", "population_moments"),
    "realise": (".finite.features", "realise"),
    "train_moments": (".finite.features", "train_moments"),
    "GaussianMixture": (".model.mixture", "GaussianMixture"),
    "class_counts": (".model.mixture", "class_counts"),
    "proportions_long_tail": (".model.mixture", "proportions_long_tail"),
    "proportions_step": (".model.mixture", "proportions_step"),
    "NeuronPopulation": (".theory.spectrum", "NeuronPopulation"),
    "ResolventState": (".theory.spectrum", "ResolventState"),
    "SpectrumConvergenceError": (".theory.spectrum", "SpectrumConvergenceError"),
    "SpectrumResult": (".theory.spectrum", "SpectrumResult"),
    "edges_from_eigs": (".theory.spectrum", "edges_from_eigs"),
    "neuron_population": (".theory.spectrum", "neuron_population"),
    "outliers": (".theory.spectrum", "outliers"),
    "resolvent": (".theory.spectrum", "resolvent"),
    "spectral_density": (".theory.spectrum", "spectral_density"),
    "spectral_distance": (".theory.spectrum", "spectral_distance"),
    "Timescales": (".theory.timescales", "Timescales"),
    "first_crossing": (".theory.timescales", "first_crossing"),
    "generalization_time": (".theory.timescales", "generalization_time"),
    "memorization_time": (".theory.timescales", "memorization_time"),
    "onset_time": (".theory.timescales", "onset_time"),
    "reversal_boundary": (".theory.timescales", "reversal_boundary"),
    "scaling_exponents": (".theory.timescales", "scaling_exponents"),
    "curve_timescales": (".theory.timescales", "curve_timescales"),
    "ClosedForm": (".finite.closed_form", "ClosedForm"),
    "FiniteCurves": (".finite.closed_form", "FiniteCurves"),
    "closed_form": (".finite.closed_form", "closed_form"),
    "finite_curves": (".finite.closed_form", "finite_curves"),
    "fresh_noise_excess": (".finite.closed_form", "fresh_noise_excess"),
    "iterate_gd": (".finite.closed_form", "iterate_gd"),
    "theory_curves": (".theory.curves", "theory_curves"),
    "reversal_line": (".theory.phase", "reversal_line"),
    "timescale_fn": (".theory.phase", "timescale_fn"),
    "Window": (".theory.window", "Window"),
    "disparity_window": (".theory.window", "disparity_window"),
    "window_fn": (".theory.window", "window_fn"),
    "window_from_times": (".theory.window", "window_from_times"),
    "merge_shards": (".sweep", "merge_shards"),
    "phase_diagram": (".sweep", "phase_diagram"),
    "open_result": (".results", "open_result"),
    "to_dataset": (".results", "to_dataset"),
    "plot_result": (".plots", "plot_result"),
    "save_figure": (".plots", "save_figure"),
    "TrainConfig": (".simulate.train", "TrainConfig"),
    "TrainLog": (".simulate.train", "TrainLog"),
    "train_rf": (".simulate.train", "train_rf"),
    "compare_timescales": (".simulate.compare", "compare_timescales"),
    "prepare_theory": (".simulate.compare", "prepare_theory"),
    "backward_sde": (".simulate.sampling", "backward_sde"),
    "geometric_grid": (".simulate.sampling", "geometric_grid"),
    "mixture_score_fn": (".simulate.sampling", "mixture_score_fn"),
    "posterior_observer": (".simulate.sampling", "posterior_observer"),
    "probability_flow_ode": (".simulate.sampling", "probability_flow_ode"),
    "biroli_time": (".theory.speciation", "biroli_time"),
    "log_odds_moments": (".theory.speciation", "log_odds_moments"),
    "phi_symmetric": (".theory.speciation", "phi_symmetric"),
    "posterior_statistic": (".theory.speciation", "posterior_statistic"),
    "speciation_time_closed_form": (".theory.speciation", "speciation_time_closed_form"),
    "speciation_times": (".theory.speciation", "speciation_times"),
    "spinodal_time": (".theory.speciation", "spinodal_time"),
    "cloning": (".simulate.speciation", "cloning"),
    "posterior_speciation_times": (".simulate.speciation", "posterior_speciation_times"),
    "simulate_posteriors": (".simulate.speciation", "simulate_posteriors"),
    "speciation_vs_ratio": (".simulate.speciation", "speciation_vs_ratio"),
    "ClassStatistics": (".unet.fmnist", "ClassStatistics"),
    "class_statistics": (".unet.fmnist", "class_statistics"),
    "imbalanced_subset": (".unet.fmnist", "imbalanced_subset"),
    "load_fashion_mnist": (".unet.fmnist", "load_fashion_mnist"),
    "mixture_from_statistics": (".unet.theory_map", "mixture_from_statistics"),
    "theory_prediction": (".unet.theory_map", "theory_prediction"),
    "UNetConfig": (".unet.training", "UNetConfig"),
    "summarise_unet": (".unet.training", "summarise"),
    "train_unet": (".unet.training", "train"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'rfdiff' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attr)
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # the same table as imports, for type checkers and IDEs
    from .model.activations import (
        ACTIVATIONS as ACTIVATIONS,
        Activation as Activation,
        GECoefficients as GECoefficients,
        class_coefficients as class_coefficients,
        derivative_moments as derivative_moments,
        gaussian_expectation as gaussian_expectation,
        ge_coefficients as ge_coefficients,
        get_activation as get_activation,
    )
    from .model.diffusion import (
        class_log_posterior as class_log_posterior,
        delta as delta,
        forward_sample as forward_sample,
        mixture_score as mixture_score,
        noised_variances as noised_variances,
    )
    from .model.rf import (
        RFModel as RFModel,
    )
    from .finite.features import (
        FeatureMoments as FeatureMoments,
        FiniteProblem as FiniteProblem,
        loss_from_moments as loss_from_moments,
        population_moments as population_moments,
        realise as realise,
        train_moments as train_moments,
    )
    from .model.mixture import (
        GaussianMixture as GaussianMixture,
        class_counts as class_counts,
        proportions_long_tail as proportions_long_tail,
        proportions_step as proportions_step,
    )
    from .theory.spectrum import (
        NeuronPopulation as NeuronPopulation,
        ResolventState as ResolventState,
        SpectrumConvergenceError as SpectrumConvergenceError,
        SpectrumResult as SpectrumResult,
        edges_from_eigs as edges_from_eigs,
        neuron_population as neuron_population,
        outliers as outliers,
        resolvent as resolvent,
        spectral_density as spectral_density,
        spectral_distance as spectral_distance,
    )
    from .theory.timescales import (
        Timescales as Timescales,
        first_crossing as first_crossing,
        generalization_time as generalization_time,
        memorization_time as memorization_time,
        onset_time as onset_time,
        reversal_boundary as reversal_boundary,
        scaling_exponents as scaling_exponents,
        curve_timescales as curve_timescales,
    )
    from .finite.closed_form import (
        ClosedForm as ClosedForm,
        FiniteCurves as FiniteCurves,
        closed_form as closed_form,
        finite_curves as finite_curves,
        fresh_noise_excess as fresh_noise_excess,
        iterate_gd as iterate_gd,
    )
    from .theory.curves import (
        theory_curves as theory_curves,
    )
    from .theory.phase import (
        reversal_line as reversal_line,
        timescale_fn as timescale_fn,
    )
    from .theory.window import (
        Window as Window,
        disparity_window as disparity_window,
        window_fn as window_fn,
        window_from_times as window_from_times,
    )
    from .sweep import (
        merge_shards as merge_shards,
        phase_diagram as phase_diagram,
    )
    from .results import (
        open_result as open_result,
        to_dataset as to_dataset,
    )
    from .plots import (
        plot_result as plot_result,
        save_figure as save_figure,
    )
    from .simulate.train import (
        TrainConfig as TrainConfig,
        TrainLog as TrainLog,
        train_rf as train_rf,
    )
    from .simulate.compare import (
        compare_timescales as compare_timescales,
        prepare_theory as prepare_theory,
    )
    from .simulate.sampling import (
        backward_sde as backward_sde,
        geometric_grid as geometric_grid,
        mixture_score_fn as mixture_score_fn,
        posterior_observer as posterior_observer,
        probability_flow_ode as probability_flow_ode,
    )
    from .theory.speciation import (
        biroli_time as biroli_time,
        log_odds_moments as log_odds_moments,
        phi_symmetric as phi_symmetric,
        posterior_statistic as posterior_statistic,
        speciation_time_closed_form as speciation_time_closed_form,
        speciation_times as speciation_times,
        spinodal_time as spinodal_time,
    )
    from .simulate.speciation import (
        cloning as cloning,
        posterior_speciation_times as posterior_speciation_times,
        simulate_posteriors as simulate_posteriors,
        speciation_vs_ratio as speciation_vs_ratio,
    )
    from .unet.fmnist import (
        ClassStatistics as ClassStatistics,
        class_statistics as class_statistics,
        imbalanced_subset as imbalanced_subset,
        load_fashion_mnist as load_fashion_mnist,
    )
    from .unet.theory_map import (
        mixture_from_statistics as mixture_from_statistics,
        theory_prediction as theory_prediction,
    )
    from .unet.training import (
        UNetConfig as UNetConfig,
        summarise as summarise_unet,
        train as train_unet,
    )
