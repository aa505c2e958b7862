"""rfdiff: class-dependent learning of random-features diffusion models on Gaussian mixtures.

The layout follows the story from data to theory to validation:

* data       — :mod:`rfdiff.mixture` (K-class Gaussian mixtures), :mod:`rfdiff.diffusion` (forward process,
               exact mixture score), :mod:`rfdiff.io` (Fashion-MNIST);
* model      — :mod:`rfdiff.activations` (Gaussian-equivalence coefficients), :mod:`rfdiff.features`
               (finite-d feature covariance U);
* theory     — :mod:`rfdiff.spectrum` (Stieltjes transform of U), :mod:`rfdiff.dynamics` (learning curves),
               :mod:`rfdiff.timescales` (τ_gen, τ_mem), :mod:`rfdiff.speciation`, :mod:`rfdiff.sweep`;
* validation — :mod:`rfdiff.simulation` (jitted RF training), :mod:`rfdiff.unet` (U-Net on Fashion-MNIST).
"""

from .activations import (
    ACTIVATIONS as ACTIVATIONS,
    Activation as Activation,
    GECoefficients as GECoefficients,
    class_coefficients as class_coefficients,
    derivative_moments as derivative_moments,
    gaussian_expectation as gaussian_expectation,
    ge_coefficients as ge_coefficients,
    get_activation as get_activation,
)
from .diffusion import (
    class_log_posterior as class_log_posterior,
    delta as delta,
    forward_sample as forward_sample,
    mixture_score as mixture_score,
    noised_variances as noised_variances,
)
from .features import (
    FeatureMoments as FeatureMoments,
    FiniteProblem as FiniteProblem,
    RFModel as RFModel,
    loss_from_moments as loss_from_moments,
    population_moments as population_moments,
    realise as realise,
    train_moments as train_moments,
)
from .mixture import (
    GaussianMixture as GaussianMixture,
    class_counts as class_counts,
    proportions_long_tail as proportions_long_tail,
    proportions_step as proportions_step,
)
from .spectrum import (
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
from .timescales import (
    Timescales as Timescales,
    first_crossing as first_crossing,
    generalization_time as generalization_time,
    memorization_time as memorization_time,
    onset_time as onset_time,
    reversal_boundary as reversal_boundary,
    scaling_exponents as scaling_exponents,
    curve_timescales as curve_timescales,
)
from .dynamics import (
    ClosedForm as ClosedForm,
    FiniteCurves as FiniteCurves,
    closed_form as closed_form,
    finite_curves as finite_curves,
    iterate_gd as iterate_gd,
)
from .dynamics_theory import theory_curves as theory_curves
from .phase import reversal_line as reversal_line, timescale_fn as timescale_fn
from .sweep import merge_shards as merge_shards, phase_diagram as phase_diagram
from .simulation import (
    TrainConfig as TrainConfig,
    TrainLog as TrainLog,
    fresh_noise_excess as fresh_noise_excess,
    train_rf as train_rf,
)
from .compare import (
    compare_timescales as compare_timescales,
    prepare_theory as prepare_theory,
)

from .sampling import (
    backward_sde as backward_sde,
    geometric_grid as geometric_grid,
    mixture_score_fn as mixture_score_fn,
    posterior_observer as posterior_observer,
    probability_flow_ode as probability_flow_ode,
)
from .speciation import (
    biroli_time as biroli_time,
    log_odds_moments as log_odds_moments,
    phi_symmetric as phi_symmetric,
    posterior_statistic as posterior_statistic,
    speciation_time_closed_form as speciation_time_closed_form,
    speciation_times as speciation_times,
    spinodal_time as spinodal_time,
)
from .speciation_sim import (
    cloning as cloning,
    posterior_speciation_times as posterior_speciation_times,
    simulate_posteriors as simulate_posteriors,
    speciation_vs_ratio as speciation_vs_ratio,
)

from .io import (
    ClassStatistics as ClassStatistics,
    class_statistics as class_statistics,
    imbalanced_subset as imbalanced_subset,
    load_fashion_mnist as load_fashion_mnist,
    predicted_order as predicted_order,
)
from .unet import (
    UNetConfig as UNetConfig,
    summarise as summarise_unet,
    train as train_unet,
)

__version__ = "0.1.0"
