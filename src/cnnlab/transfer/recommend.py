"""Which transfer strategy to use: the CS231n "Transfer Learning" table, as a function.

The course notes (Karpathy, CS231n, "Transfer Learning") sort a new task by two questions, how
much labelled data there is and how similar it is to the pretraining data (ImageNet):

==================  =========================================  ====================================
                    similar domain                             different domain
==================  =========================================  ====================================
little data         linear classifier on top-layer features     hard: linear classifier on features
                                                               from earlier layers
a lot of data       fine-tune the top layers (or all)           fine-tune a lot of layers, or all
==================  =========================================  ====================================

Thresholds (the notes give none, so these are cnnlab's, stated so that they can be argued with):
fewer than ``SMALL_DATA`` = 1,000 labelled images is "little data" (about 10 per class for 100
classes, the regime of few-shot benchmarks and of the notes' overfitting warning), and
``LARGE_DATA`` = 10,000 or more is enough to fine-tune everything (Imagenette's train split,
9,469 images, sits at the boundary). In between, a similar domain fine-tunes the top groups and a
different one fine-tunes all layers with a smaller backbone rate. Similarity is "similar",
"different", or a number in [0, 1] with 0.5 as the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import ConfigError

SMALL_DATA = 1_000
LARGE_DATA = 10_000
STRATEGIES = ("linear-probe", "top-k-layers", "full", "gradual")


@dataclass(frozen=True)
class Recommendation:
    """A strategy name from :data:`STRATEGIES`, the reason in words, and its settings."""

    strategy: str
    reason: str
    layer: str = "pre_logits"     # where a linear probe reads its features
    top_k: int | None = None      # groups trained by "top-k-layers"
    lr_mult: dict | None = None   # backbone multiplier for full fine-tuning

    def __str__(self) -> str:
        return f"{self.strategy}: {self.reason}"


def _is_similar(similarity) -> bool:
    if isinstance(similarity, str):
        s = similarity.strip().lower()
        if s in ("similar", "same", "close"):
            return True
        if s in ("different", "dissimilar", "far"):
            return False
        raise ConfigError(f"similarity must be 'similar', 'different' or a number in [0, 1]; "
                          f"got {similarity!r}")
    if isinstance(similarity, bool) or not isinstance(similarity, (int, float)) \
            or not 0 <= similarity <= 1:
        raise ConfigError(f"similarity must be 'similar', 'different' or a number in [0, 1]; "
                          f"got {similarity!r}")
    return similarity >= 0.5


def recommend(n_images: int, similarity="similar") -> Recommendation:
    """The CS231n transfer-learning table (Karpathy's notes) for `n_images` labelled images."""
    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ConfigError(f"n_images must be a positive integer (labelled training images); "
                          f"got {n_images!r}")
    similar = _is_similar(similarity)
    size = f"{n_images:,} images"
    if n_images < SMALL_DATA:
        if similar:
            return Recommendation(
                "linear-probe",
                f"little data ({size} < {SMALL_DATA:,}) from a similar domain: fine-tuning would "
                "overfit, and the top-layer features already fit the task, so train a linear "
                "classifier on them",
                layer="pre_logits")
        return Recommendation(
            "linear-probe",
            f"little data ({size} < {SMALL_DATA:,}) from a different domain: the hard case. "
            "Top-layer features are specific to the pretraining classes, so train a linear "
            "classifier on earlier-layer features (a middle stage) and expect a modest result",
            layer="stage3")
    if similar:
        if n_images < LARGE_DATA:
            return Recommendation(
                "top-k-layers",
                f"a fair amount of data ({size}) from a similar domain: fine-tune the top layers "
                "and keep the general lower ones fixed",
                top_k=2)
        return Recommendation(
            "full",
            f"a lot of data ({size} >= {LARGE_DATA:,}) from a similar domain: fine-tune the whole "
            "network, the pretrained layers at a tenth of the rate",
            lr_mult={"backbone": 0.1})
    return Recommendation(
        "full",
        f"{'a lot of' if n_images >= LARGE_DATA else 'a fair amount of'} data ({size}) from a "
        "different domain: fine-tune many or all layers; the pretrained weights are still a "
        "better start than random ones",
        lr_mult={"backbone": 0.1 if n_images < LARGE_DATA else 1.0})
