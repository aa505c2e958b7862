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

plus :mod:`rfdiff.io` (atomic writes, result files), :mod:`rfdiff.sweep` (grid engine) and
:mod:`rfdiff.plots` (figures). This module only re-exports the public names.
"""

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
from .model.rf import RFModel as RFModel
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
from .theory.curves import theory_curves as theory_curves
from .theory.phase import reversal_line as reversal_line, timescale_fn as timescale_fn
from .sweep import merge_shards as merge_shards, phase_diagram as phase_diagram
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
    predicted_order as predicted_order,
)
from .unet.training import (
    UNetConfig as UNetConfig,
    summarise as summarise_unet,
    train as train_unet,
)

__version__ = "0.1.0"
