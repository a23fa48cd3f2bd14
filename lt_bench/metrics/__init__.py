"""Metrics of long-tailed recognition: shot groups, accuracy, F1, ECE, ``evaluate -> dict``."""

from .accuracy import balanced_accuracy, harmonic_mean, per_class_accuracy, top1, worst_class
from .ece import ece, ece_from_confidence, softmax
from .evaluate import METRIC_KEYS, evaluate, log_prior, posthoc_adjust
from .f1 import macro_f1, per_class_f1
from .groups import GROUPS, group_means, group_sizes

__all__ = ["GROUPS", "METRIC_KEYS", "balanced_accuracy", "ece", "ece_from_confidence", "evaluate",
           "group_means", "group_sizes", "harmonic_mean", "log_prior", "macro_f1", "per_class_accuracy",
           "per_class_f1", "posthoc_adjust", "softmax", "top1", "worst_class"]
