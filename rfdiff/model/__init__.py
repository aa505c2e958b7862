"""Stage 1, the data and the model: K-class Gaussian mixtures, the forward diffusion and its exact score,
the random-features score model and its activations (Gaussian-equivalence coefficients).

Imports nothing else from rfdiff but the precision policy.
"""

from .mixture import (
    GaussianMixture as GaussianMixture,
    proportions_step as proportions_step,
    proportions_long_tail as proportions_long_tail,
    class_counts as class_counts,
)
from .diffusion import (
    delta as delta,
    noised_variances as noised_variances,
    forward_sample as forward_sample,
    class_log_posterior as class_log_posterior,
    mixture_score as mixture_score,
    class_score as class_score,
)
from .activations import (
    Activation as Activation,
    get_activation as get_activation,
    ACTIVATIONS as ACTIVATIONS,
    gaussian_expectation as gaussian_expectation,
    derivative_moments as derivative_moments,
    GECoefficients as GECoefficients,
    ge_coefficients as ge_coefficients,
    class_coefficients as class_coefficients,
)
from .rf import (
    RFModel as RFModel,
)
