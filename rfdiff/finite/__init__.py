"""Stage 3, finite-d references: a realised problem (W, training set), its exact feature moments and the
closed-form gradient-descent curves that every theory check compares with.
"""

from .features import (
    FiniteProblem as FiniteProblem,
    FeatureMoments as FeatureMoments,
    realise as realise,
    train_moments as train_moments,
    population_moments as population_moments,
    loss_from_moments as loss_from_moments,
    weighted_moments as weighted_moments,
)
from .closed_form import (
    ClosedForm as ClosedForm,
    closed_form as closed_form,
    finite_curves as finite_curves,
    iterate_gd as iterate_gd,
    quadratic_loss as quadratic_loss,
    FiniteCurves as FiniteCurves,
    fresh_noise_excess as fresh_noise_excess,
)
