"""Evaluation: metrics, prediction from a trained run, test-time augmentation and ensembles.

``cnnlab.evaluate.load(RUN).predict(["cat.jpg"])`` classifies images with a trained run;
:func:`evaluate_runs` scores one run or an ensemble on a held-out split (``cnnlab evaluate``).
"""

from cnnlab.evaluate.evaluation import evaluate_runs, score, write_report
from cnnlab.evaluate.metrics import (confident_errors, confusion_matrix, precision_recall,
                                     topk_accuracy, topk_correct, topk_error)
from cnnlab.evaluate.predictor import Predictor, load, load_split
from cnnlab.evaluate.tta import tta_probs, tta_views

__all__ = ["Predictor", "confident_errors", "confusion_matrix", "evaluate_runs", "load",
           "load_split", "precision_recall", "score", "topk_accuracy", "topk_correct",
           "topk_error", "tta_probs", "tta_views", "write_report"]
