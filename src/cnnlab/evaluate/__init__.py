"""Evaluation: metrics for classifiers (top-k accuracy and error, confusion matrix)."""

from cnnlab.evaluate.metrics import confusion_matrix, topk_accuracy, topk_correct, topk_error

__all__ = ["confusion_matrix", "topk_accuracy", "topk_correct", "topk_error"]
