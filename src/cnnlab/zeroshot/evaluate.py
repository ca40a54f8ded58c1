"""Zero-shot evaluation as in Ba et al. (ICCV 2015, Sec. 5): per-class one-vs-rest ROC-AUC on unseen
classes (scored among unseen-class test images), on seen classes (among held-out seen-class test
images) and their mean over all classes; plus top-1/top-5 accuracy among the unseen classes and in
the generalized setting (every test image against seen + unseen classes together; Chao et al.,
ECCV 2016, with the harmonic mean of seen and unseen accuracy of Xian et al., CVPR 2017).

``center=True`` first subtracts from each image's scores their mean over the candidate classes
(the unseen ones for the unseen metrics, the seen ones for the seen metrics). Ranking images per
class, as the AUC does, is otherwise swayed by images that score high against every class (a
large feature norm, a busy background): a per-image offset that says nothing about the class.
The shift never changes an image's top-k, only the per-class ranking; the raw AUCs are reported
beside the centred ones.

Convention: ``scores`` (N, K) has one column per class, ``labels`` (N,) index those columns, and
``seen`` / ``unseen`` are the column indices of each group.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError


def one_vs_rest_auc(scores: np.ndarray, labels: np.ndarray, columns) -> np.ndarray:
    """ROC-AUC of each class in `columns`, one-vs-rest among the rows given (Ba et al. 2015).

    A class with no positive or no negative row has no AUC (NaN)."""
    from sklearn.metrics import roc_auc_score

    out = []
    for c in columns:
        positive = labels == c
        out.append(roc_auc_score(positive, scores[:, c])
                   if 0 < positive.sum() < len(labels) else np.nan)
    return np.asarray(out, dtype=np.float64)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k highest scores (ties broken by column order)."""
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def _nanmean(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def zeroshot_report(scores, labels, seen, unseen, class_names=None, center=False) -> dict:
    """All metrics of one split as a JSON-able dict (see the module docstring)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    seen, unseen = np.asarray(seen, np.int64), np.asarray(unseen, np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise InputShapeError(f"scores must be (N, K) with one label per row; got "
                              f"{scores.shape} and {len(labels)} labels")
    if set(seen.tolist()) & set(unseen.tolist()):
        raise ConfigError(f"seen and unseen columns overlap: {sorted(set(seen) & set(unseen))[:5]}")
    is_unseen = np.isin(labels, unseen)
    is_seen = np.isin(labels, seen)

    def restricted(mask, cols):
        # scores among `cols` only, labels re-indexed into them
        pos = {int(c): i for i, c in enumerate(cols)}
        return scores[mask][:, cols], np.asarray([pos[int(c)] for c in labels[mask]], np.int64)

    s_u, y_u = restricted(is_unseen, unseen)
    s_s, y_s = restricted(is_seen, seen)
    raw = {}
    if center:
        raw = {"auc_unseen_raw": _nanmean(one_vs_rest_auc(s_u, y_u, range(len(unseen)))),
               "auc_seen_raw": _nanmean(one_vs_rest_auc(s_s, y_s, range(len(seen))))}
        s_u, s_s = (s - s.mean(1, keepdims=True) for s in (s_u, s_s))
    auc_u = one_vs_rest_auc(s_u, y_u, range(len(unseen)))
    auc_s = one_vs_rest_auc(s_s, y_s, range(len(seen)))
    gen_u = topk_accuracy(scores[is_unseen], labels[is_unseen], 1)
    gen_s = topk_accuracy(scores[is_seen], labels[is_seen], 1)
    harmonic = (2 * gen_u * gen_s / (gen_u + gen_s)) if (gen_u + gen_s) > 0 else 0.0
    both = is_unseen | is_seen
    report = {
        "auc_unseen": _nanmean(auc_u),
        "auc_seen": _nanmean(auc_s),
        "auc_mean": _nanmean(np.concatenate([auc_u, auc_s])),
        "top1_unseen": topk_accuracy(s_u, y_u, 1),
        "top5_unseen": topk_accuracy(s_u, y_u, 5),
        "generalized_top1_unseen": gen_u,
        "generalized_top1_seen": gen_s,
        "generalized_top5": topk_accuracy(scores[both], labels[both], 5),
        "generalized_harmonic": float(harmonic),
        "n_unseen_images": int(is_unseen.sum()),
        "n_seen_images": int(is_seen.sum()),
        "centered": bool(center), **raw,
    }
    if class_names is not None:
        report["auc_per_unseen_class"] = {class_names[c]: float(a) for c, a in zip(unseen, auc_u)}
    return report
