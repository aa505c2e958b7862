"""Stage 2, the d → ∞ theory: the self-consistent equations of the feature covariance (one module,
:mod:`rfdiff.theory.equations`), its spectrum, per-class learning curves and times, phase diagrams and
speciation times.

Layering: imports :mod:`rfdiff.model` only (never finite-d, simulation, U-Net or CLI code).
"""

from .equations import (
    NeuronPopulation as NeuronPopulation,
    ResolventState as ResolventState,
    solve_point as solve_point,
    fixed_point_map as fixed_point_map,
)
from .spectrum import (
    SpectrumConvergenceError as SpectrumConvergenceError,
    neuron_population as neuron_population,
    resolvent as resolvent,
    SpectrumResult as SpectrumResult,
    spectral_density as spectral_density,
    outliers as outliers,
    spectral_distance as spectral_distance,
    edges_from_eigs as edges_from_eigs,
)
from .curves import (
    default_clock as default_clock,
    theory_curves as theory_curves,
    theory_curves_core as theory_curves_core,
)
from .timescales import (
    Timescales as Timescales,
    first_crossing as first_crossing,
    generalization_time as generalization_time,
    memorization_time as memorization_time,
    onset_time as onset_time,
    curve_timescales as curve_timescales,
    reversal_boundary as reversal_boundary,
    scaling_exponents as scaling_exponents,
)
from .phase import (
    PARAMETERS as PARAMETERS,
    point_arrays as point_arrays,
    timescale_fn as timescale_fn,
    reversal_line as reversal_line,
    default_taus as default_taus,
)
from .window import (
    Window as Window,
    window_from_times as window_from_times,
    disparity_window as disparity_window,
    window_fn as window_fn,
)
from .speciation import (
    log_odds_moments as log_odds_moments,
    posterior_statistic as posterior_statistic,
    speciation_times as speciation_times,
    speciation_time_closed_form as speciation_time_closed_form,
    variance_only_time as variance_only_time,
    spinodal_beta as spinodal_beta,
    spinodal_time as spinodal_time,
    biroli_time as biroli_time,
    top_covariance_eigenvalue as top_covariance_eigenvalue,
    phi_symmetric as phi_symmetric,
    biroli_phi_threshold as biroli_phi_threshold,
)
