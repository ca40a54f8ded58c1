"""Babysitting the network (CS231n, "Training Neural Networks"): checks before, during and after.

``sanity``   initial loss against its expected value, overfitting a tiny subset
``monitor``  a training callback: per-layer norms, update/weight ratios, activations, dead ReLUs
``curves``   over-/under-fitting, NaN/exploding loss and learning-rate hints from the curves
``lrfind``   the learning-rate range test (Smith 2017) with a plot and a suggested rate
"""

from cnnlab.diagnose.curves import Finding, diagnose_history, diagnose_losses
from cnnlab.diagnose.lrfind import LRFindResult, lr_find, plot_lr_find, run_lr_find
from cnnlab.diagnose.monitor import TrainingMonitor
from cnnlab.diagnose.sanity import (
    InitialLossCheck,
    OverfitResult,
    check_initial_loss,
    expected_initial_loss,
    overfit_small,
    run_sanity,
)

__all__ = [
    "Finding", "diagnose_history", "diagnose_losses",
    "LRFindResult", "lr_find", "plot_lr_find", "run_lr_find",
    "TrainingMonitor",
    "InitialLossCheck", "OverfitResult", "check_initial_loss", "expected_initial_loss",
    "overfit_small", "run_sanity",
]
