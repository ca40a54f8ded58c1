"""Top-k accuracy/error, confusion matrix, precision/recall and confident errors by hand."""

import pytest
import torch

from cnnlab.errors import ConfigError, InputShapeError
from cnnlab.evaluate.metrics import (confident_errors, confusion_matrix, precision_recall,
                                     topk_accuracy, topk_correct, topk_error)

# Four images, six classes. Ranks of the true class: 1st, 3rd, 6th, 2nd.
SCORES = torch.tensor([
    [9.0, 1.0, 2.0, 3.0, 4.0, 5.0],   # label 0: top-1
    [1.0, 9.0, 8.0, 2.0, 3.0, 4.0],   # label 2: 2nd (behind 1)
    [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],   # label 5: last
    [0.0, 1.0, 2.0, 3.0, 9.0, 8.0],   # label 5: 2nd
])
LABELS = torch.tensor([0, 2, 5, 5])


def test_topk_by_hand():
    assert topk_correct(SCORES, LABELS, ks=(1, 2, 5, 6)) == {1: 1, 2: 3, 5: 3, 6: 4}
    acc = topk_accuracy(SCORES, LABELS, ks=(1, 5))
    assert acc == {1: 0.25, 5: 0.75}
    err = topk_error(SCORES, LABELS, ks=(1, 5))
    assert err == pytest.approx({1: 0.75, 5: 0.25})


def test_topk_checks():
    with pytest.raises(ConfigError, match="number of classes"):
        topk_accuracy(SCORES[:, :3], torch.tensor([0, 1, 2, 0]), ks=(1, 5))
    with pytest.raises(InputShapeError):
        topk_accuracy(SCORES, LABELS[:2])


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2, 2]), torch.tensor([0, 1, 2, 2, 0]), 3)
    expected = torch.tensor([[1, 0, 1],   # true 0: predicted 0 once, 2 once
                             [0, 1, 0],
                             [0, 1, 1]])
    assert torch.equal(cm, expected)
    # scores are reduced by argmax; the diagonal sums to the top-1 hits
    from_scores = confusion_matrix(SCORES, LABELS)
    assert from_scores.shape == (6, 6) and int(from_scores.trace()) == 1
    assert int(from_scores.sum()) == 4
    with pytest.raises(InputShapeError, match=r"\[0, 3\)"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_precision_recall_matches_sklearn():
    from sklearn.metrics import precision_recall_fscore_support

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (200,), generator=g)
    preds = torch.where(torch.rand(200, generator=g) < 0.6, labels,
                        torch.randint(0, 5, (200,), generator=g))
    preds[preds == 4] = 3                       # class 4 is never predicted: precision 0, not NaN
    got = precision_recall(confusion_matrix(preds, labels, 5))
    p, r, f, s = precision_recall_fscore_support(labels.numpy(), preds.numpy(), labels=range(5),
                                                 zero_division=0)
    assert got["precision"] == pytest.approx(p.tolist())
    assert got["recall"] == pytest.approx(r.tolist())
    assert got["f1"] == pytest.approx(f.tolist())
    assert got["support"] == s.tolist()
    assert got["precision"][4] == 0.0 and got["recall"][4] == 0.0
    with pytest.raises(InputShapeError, match="square"):
        precision_recall(torch.zeros(2, 3))


def test_confident_errors_by_hand():
    probs = torch.tensor([[0.9, 0.1],     # right
                          [0.2, 0.8],     # wrong, 0.8
                          [0.4, 0.6],     # wrong, 0.6
                          [0.05, 0.95]])  # wrong, 0.95
    errs = confident_errors(probs, torch.tensor([0, 0, 0, 0]), n=2)
    assert [e["index"] for e in errs] == [3, 1]
    assert errs[0] == {"index": 3, "label": 0, "predicted": 1, "probability": pytest.approx(0.95),
                       "p_label": pytest.approx(0.05)}
    assert confident_errors(probs, torch.tensor([0, 1, 1, 1])) == []
