"""Stage 4, simulations: jitted RF training, samplers (backward SDE / probability-flow ODE), generation
with learned scores, memorisation metrics, speciation measurements and theory-vs-simulation tables.
"""

from .train import (
    TrainConfig as TrainConfig,
    TrainLog as TrainLog,
    train_rf as train_rf,
    log_steps as log_steps,
    class_normalisers as class_normalisers,
)
from .sampling import (
    ScoreFn as ScoreFn,
    SampleResult as SampleResult,
    geometric_grid as geometric_grid,
    mixture_score_fn as mixture_score_fn,
    posterior_observer as posterior_observer,
    backward_sde as backward_sde,
    probability_flow_ode as probability_flow_ode,
)
from .generation import (
    RFScoreGrid as RFScoreGrid,
    train_time_grid as train_time_grid,
    rf_score_fn as rf_score_fn,
    generate as generate,
    memorization as memorization,
)
from .metrics import (
    nearest_two as nearest_two,
    MemorizationReport as MemorizationReport,
    memorization_report as memorization_report,
    MEMORIZATION_RATIO as MEMORIZATION_RATIO,
)
from .speciation import (
    PosteriorTrajectories as PosteriorTrajectories,
    simulate_posteriors as simulate_posteriors,
    crossing_time as crossing_time,
    posterior_speciation_times as posterior_speciation_times,
    cloning as cloning,
    speciation_vs_ratio as speciation_vs_ratio,
)
from .compare import (
    Theory as Theory,
    prepare_theory as prepare_theory,
    compare_timescales as compare_timescales,
    theory_file as theory_file,
    load_curves as load_curves,
    write_comparison as write_comparison,
)
