"""Evaluate one run or an ensemble of runs on a held-out split, and write the report files.

An ensemble averages the members' softmax outputs (Krizhevsky et al. 2012 average five CNNs this
way); every member is also reported on its own. Files written by :func:`write_report`::

    metrics.json            everything below, plus each member's metrics
    confusion_matrix.csv    rows = true class, columns = predicted class (counts)
    confusion_matrix.png    the same as an image (matplotlib, Agg backend)
    per_class.csv           class, precision, recall, f1, support
    confident_errors.csv    the most confidently wrong images: rank, index, path, true, predicted,
                            probability of the prediction, probability of the true class
    confident_errors.png    those images in a grid, titled "true -> predicted (p)"
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import torch

from cnnlab.errors import ConfigError
from cnnlab.evaluate.metrics import (confident_errors, confusion_matrix, precision_recall,
                                     topk_accuracy)
from cnnlab.evaluate.predictor import Predictor, load, load_split
from cnnlab.evaluate.tta import check_mode

N_ERRORS = 16   # confidently wrong images listed and drawn (a 4 x 4 grid)


def score(probs: torch.Tensor, labels: torch.Tensor, classes: list[str], topk: int = 5) -> dict:
    """Loss, top-1/top-k accuracy and error, confusion matrix and per-class precision/recall.

    The loss is the cross-entropy of the (averaged) probabilities, -mean log p(true class); with
    one model and no TTA it equals the training loss on logits. k is capped at the class count.
    """
    if topk < 1:
        raise ConfigError(f"topk must be >= 1; got {topk}")
    ks = sorted({1, min(topk, len(classes))})
    acc = topk_accuracy(probs, labels, ks)
    p_true = probs[torch.arange(len(labels)), labels]
    out = {"images": len(labels),
           "loss": float(-p_true.clamp(min=1e-12).log().mean()) if len(labels) else math.nan}
    for k in ks:
        out[f"acc{k}"], out[f"error{k}"] = acc[k], 1.0 - acc[k]
    cm = confusion_matrix(probs, labels, len(classes))
    out["per_class"] = {"classes": list(classes), **precision_recall(cm)}
    out["confusion_matrix"] = cm.tolist()
    return out


def evaluate_runs(runs, data: str | None = None, split: str = "test", topk: int = 5,
                  tta: str | None = None, device: str = "cpu", fast: bool = True) -> dict:
    """Evaluate each run and, for several, their ensemble (averaged softmax) on one split.

    `fast` False scores the plain eval-mode models instead of their fast copies (folded
    BatchNorm, channels_last; see :mod:`cnnlab.evaluate.predictor`); a Predictor passed in keeps
    its own setting.
    Returns a JSON-able dict: split, data, tta, members (per run: run, checkpoint, model and the
    :func:`score` keys), ensemble (or None for a single run), combined (the ensemble's or the only
    member's scores) and confident_errors (of the combined prediction). Arrays for the files are
    kept under the private key "_arrays".
    """
    tta = check_mode(tta)
    runs = [runs] if isinstance(runs, (str, os.PathLike, Predictor)) else list(runs)
    if not runs:
        raise ConfigError("evaluate needs at least one run directory")
    predictors = [r if isinstance(r, Predictor) else load(r, device, fast) for r in runs]
    first = predictors[0]
    for p in predictors[1:]:
        if p.classes != first.classes:
            raise ConfigError(f"an ensemble needs runs with the same classes in the same order; "
                              f"{p.run_dir} has {p.classes[:5]}..., {first.run_dir} has "
                              f"{first.classes[:5]}...")
    classes = first.classes
    cache: dict = {}   # members with the same input size, channels and fit share one decode
    members, all_probs, labels, shown, paths = [], [], None, None, []
    for p in predictors:
        key = (p.image_size, p.in_chans, p.fit)
        if key not in cache:
            cache[key] = load_split(p, data, split)
        x, y, _, paths_here = cache[key]
        if labels is None:
            labels, shown, paths = y, x, paths_here
        elif not torch.equal(labels, y):
            raise ConfigError(f"{p.run_dir} sees the {split} split in another order or with other "
                              "images than the first run; ensemble runs trained on the same data")
        probs = p.probabilities(p.normalize(x), tta)
        all_probs.append(probs)
        members.append({"run": p.run_dir, "checkpoint": p.checkpoint, "model": p.model_name,
                        "image_size": p.image_size, **score(probs, y, classes, topk)})
    combined_probs = torch.stack(all_probs).mean(dim=0) if len(all_probs) > 1 else all_probs[0]
    ensemble = score(combined_probs, labels, classes, topk) if len(predictors) > 1 else None
    errors = confident_errors(combined_probs, labels, N_ERRORS)
    for e in errors:
        e["path"] = paths[e["index"]] if paths else ""
        e["label_name"], e["predicted_name"] = classes[e["label"]], classes[e["predicted"]]
    src = first.data if data is None else data
    return {"split": split, "data": "digits" if src in (None, "digits") else str(src),
            "tta": tta or "none", "topk": min(topk, len(classes)), "classes": classes,
            "members": members, "ensemble": ensemble, "combined": ensemble or members[0],
            "confident_errors": errors,
            "_arrays": {"pixels": shown, "probs": combined_probs, "labels": labels}}


def public(result: dict) -> dict:
    """`result` without the private tensors, ready for json.dumps."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def write_report(result: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write the files listed in the module docstring; returns their paths."""
    # Figure objects render with Agg and never touch pyplot's global backend or open a window
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes, comb = result["classes"], result["combined"]
    written = []

    f = out / "metrics.json"
    f.write_text(json.dumps(public(result), indent=2) + "\n")
    written.append(f)

    cm = comb["confusion_matrix"]
    f = out / "confusion_matrix.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true \\ predicted", *classes])
        w.writerows([c, *row] for c, row in zip(classes, cm))
    written.append(f)

    pc = comb["per_class"]
    f = out / "per_class.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["class", "precision", "recall", "f1", "support"])
        for row in zip(classes, pc["precision"], pc["recall"], pc["f1"], pc["support"]):
            w.writerow([row[0], *(f"{v:.4f}" for v in row[1:4]), row[4]])
    written.append(f)

    n = len(classes)
    side = min(3 + 0.35 * n, 20)
    fig = Figure(figsize=(side + 1, side))
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax)
    if n <= 40:   # beyond this the tick labels overlap into a black bar
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
    if n <= 15:
        top = max(max(r) for r in cm) if cm else 0
        for i, row in enumerate(cm):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center",
                        color="white" if v > top / 2 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({result['split']}, top-1 accuracy "
                 f"{100 * comb['acc1']:.2f}%)")
    fig.tight_layout()
    f = out / "confusion_matrix.png"
    fig.savefig(f, dpi=100)
    written.append(f)

    errors = result["confident_errors"]
    f = out / "confident_errors.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "index", "path", "true", "predicted", "probability", "p_true"])
        for r, e in enumerate(errors, 1):
            w.writerow([r, e["index"], e["path"], e["label_name"], e["predicted_name"],
                        f"{e['probability']:.4f}", f"{e['p_label']:.4f}"])
    written.append(f)

    pixels = result["_arrays"]["pixels"]
    cols = 4
    rows = max(1, math.ceil(len(errors) / cols))
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, e in zip(axes.flat, errors):
        img = pixels[e["index"]].permute(1, 2, 0).clamp(0, 1).numpy()   # (S, S, C)
        ax.imshow(img[..., 0] if img.shape[2] == 1 else img,
                  cmap="gray" if img.shape[2] == 1 else None, vmin=0, vmax=1)
        ax.set_title(f"{e['label_name']} -> {e['predicted_name']} ({e['probability']:.2f})",
                     fontsize=8)
    if not errors:
        axes[0, 0].text(0.5, 0.5, "no errors", ha="center", va="center")
    fig.suptitle("most confidently wrong (true -> predicted (probability))", fontsize=9)
    fig.tight_layout()
    f = out / "confident_errors.png"
    fig.savefig(f, dpi=100)
    written.append(f)
    return written
