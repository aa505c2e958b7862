"""Stage 5, the U-Net on class-imbalanced Fashion-MNIST: data, network, training and per-class evaluation.
"""

from .fmnist import (
    FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES,
    FASHION_MNIST_SHA256 as FASHION_MNIST_SHA256,
    find_fashion_mnist as find_fashion_mnist,
    read_idx as read_idx,
    load_fashion_mnist as load_fashion_mnist,
    imbalanced_subset as imbalanced_subset,
    ClassStatistics as ClassStatistics,
    class_statistics as class_statistics,
)
from .model import (
    UNet as UNet,
    init_unet as init_unet,
    make_schedule as make_schedule,
    eps_loss as eps_loss,
    ddim_sample as ddim_sample,
    ou_time as ou_time,
)
from .training import (
    UNetConfig as UNetConfig,
    prepare_data as prepare_data,
    train as train,
    summarise as summarise,
    eval_steps as eval_steps,
    target_step as target_step,
    init_state as init_state,
    train_step as train_step,
)
from .theory_map import (
    Prediction as Prediction,
    mixture_from_statistics as mixture_from_statistics,
    theory_prediction as theory_prediction,
    reversal_fraction as reversal_fraction,
    recommended_weights as recommended_weights,
)
from .surrogate import (
    ClassMoments as ClassMoments,
    class_moments as class_moments,
    sample_class_gaussians as sample_class_gaussians,
    gaussian_surrogate as gaussian_surrogate,
)
from .evaluate import (
    gaussian_reference as gaussian_reference,
    normalised_error as normalised_error,
    frechet_distance as frechet_distance,
    Classifier as Classifier,
    train_classifier as train_classifier,
    load_or_train_classifier as load_or_train_classifier,
)
from .score import (
    UNetScore as UNetScore,
    unet_score_fn as unet_score_fn,
    ClassifierPosterior as ClassifierPosterior,
    classifier_posterior as classifier_posterior,
)
