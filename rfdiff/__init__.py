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

__version__ = "0.1.0"
