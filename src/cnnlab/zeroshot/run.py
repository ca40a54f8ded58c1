"""End to end: a CUB-like source -> features -> a trained zero-shot model, its baselines and its
metrics in a run folder; and a saved run -> predictions for classes given only as text.

Split discipline (Ba et al. 2015): the text encoder, the zero-shot model and the baselines are
fitted on seen-class text and seen-class training images only; unseen-class images and articles are
read after fitting, for evaluation. A run folder holds:

    run.json          config, backbone, classes of the split, metrics, versions
    model.pt          the zero-shot network (:func:`cnnlab.zeroshot.models.load_zeroshot`)
    encoder.json      the fitted text encoder (vocabulary + IDF)
    test.npz          test features, labels and file names (re-evaluation without the backbone)
    backbone.safetensors   the backbone, only when it was a random init (no --weights)
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.errors import ConfigError, DataError
from cnnlab.zeroshot.models import ZeroShotConfig


BACKBONE_FILE = "backbone.safetensors"


@dataclass(frozen=True)
class ZeroShotRunConfig:
    """Where the data and the image features come from, and how the seen classes are split."""

    data: str = ""
    split: str = "hard"
    backbone: str = "resnet18"
    weights: str | None = None     # a state dict file, or a `cnnlab train` run (dir/.safetensors)
    image_size: int | None = None  # None: the backbone's training side (a run's, else the zoo's)
    finetune_epochs: int = 0       # > 0: first fine-tune the backbone on seen training images only
    finetune_lr: float = 0.01
    finetune_strategy: str = "full"   # or "top-k-layers" (cnnlab.transfer.prepare)
    map_size: int = 7              # conv maps pooled to at most 7 x 7 (VGG conv5_3 after pooling)
    # modules whose averaged outputs join the penultimate features (e.g. resnet's layer2, layer3)
    feature_layers: tuple[str, ...] = ()
    # mirror views: each training image's mirror image is a second training row, and a test
    # image is described by the mean of its own and its mirror image's features
    mirror_views: bool = True
    # > 0: tune on the split's seen classes alone, the last `validate` of them playing unseen
    validate: int = 0
    seen_test_fraction: float = 0.2   # held-out seen-class images: the seen-class AUC is on these
    baselines: tuple[str, ...] = ("ridge", "cca")
    model: ZeroShotConfig = field(default_factory=ZeroShotConfig)

    def __post_init__(self):
        if not 0 < self.seen_test_fraction < 1:
            raise ConfigError(f"seen_test_fraction must be in (0, 1); "
                              f"got {self.seen_test_fraction}")
        if self.validate < 0:
            raise ConfigError(f"validate must be >= 0 (0: off); got {self.validate}")
        if self.finetune_epochs < 0:
            raise ConfigError(f"finetune_epochs must be >= 0 (0: use the backbone as given); "
                              f"got {self.finetune_epochs}")


def _versions() -> dict:
    import sklearn
    import torch

    import cnnlab

    return {"cnnlab": cnnlab.__version__, "torch": torch.__version__,
            "sklearn": sklearn.__version__, "python": platform.python_version()}


def _check_baselines(names) -> None:
    from cnnlab.zeroshot.baselines import BASELINES

    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; known: {sorted(BASELINES)}")


@dataclass
class Prepared:
    """Text and image features of one split. ``seen`` holds everything fitting may use (seen-class
    text, training images); ``test`` holds held-out seen images and all unseen-class images."""

    classes: list[str]              # seen classes first, then unseen
    n_seen: int
    encoder: object
    text: np.ndarray                # (S + U, V): rows of unseen classes transformed, never fitted
    train: dict                     # feats (N, D), maps or None, labels in 0..S-1
    test: dict                      # feats, maps (optional), labels in 0..S+U-1, rels
    report: object
    backbone: object = None         # the feature extractor (nn.Module) the features came from
    image_size: int = 224           # the side images were fitted to for the backbone
    backbone_record: dict = field(default_factory=dict)   # which images trained the backbone
    finetune_rels: list = field(default_factory=list)     # images the backbone was tuned on
    norm: tuple = ()                # the backbone's input (mean, std)

    @property
    def seen(self) -> list[str]:
        return self.classes[:self.n_seen]

    @property
    def unseen(self) -> list[str]:
        return self.classes[self.n_seen:]


def prepare(cfg: ZeroShotRunConfig, progress=None) -> Prepared:
    """Read the split, fit the text encoder on seen-class text, extract backbone features."""
    from cnnlab.zeroshot.data import hold_out, read_cub
    from cnnlab.models import model_info
    from cnnlab.transfer.source import is_cnnlab_run, load_source
    from cnnlab.zeroshot.features import extract_dataset, finetune_backbone, load_backbone
    from cnnlab.zeroshot.text import TfidfEncoder

    say = progress or (lambda msg: None)
    data = read_cub(cfg.data)
    split = data.validation_split(cfg.split, cfg.validate) if cfg.validate else cfg.split
    seen, unseen = data.split(split)
    # --- what fitting may use: seen classes only ---------------------------------------------
    encoder = TfidfEncoder().fit({c: data.texts[c] for c in seen})
    t_seen = encoder.transform({c: data.texts[c] for c in seen})
    rels = [r for c in seen for r in data.images[c]]
    labels = np.asarray([i for i, c in enumerate(seen) for _ in data.images[c]], np.int64)
    if len(rels) == 0:
        raise DataError(f"the seen classes of split {cfg.split!r} have no images")
    test_mask = hold_out(labels, cfg.seen_test_fraction, cfg.model.seed)
    size, source = cfg.image_size, None
    if cfg.weights is not None and is_cnnlab_run(cfg.weights):
        src = load_source(cfg.weights, cfg.backbone)   # a run knows its input size and data
        size, source = size or src.image_size, src.data
    size = size or model_info(cfg.backbone).input_size
    record = {"name": cfg.backbone, "weights": cfg.weights or "random init",
              "pretrained_on": source or ("unknown: a weights file" if cfg.weights else None),
              "finetuned_on_seen": None}
    ft_rels: list[str] = []
    if cfg.finetune_epochs:
        # the seen classes' training images only: never a held-out seen (test) image, never an
        # unseen-class one, so the seen AUC and the zero-shot AUC stay honest
        ft_rels = [r for r, t in zip(rels, test_mask) if not t]
        model, mean, std, ft = finetune_backbone(
            data, ft_rels, labels[~test_mask], seen, cfg.backbone, cfg.weights, size,
            cfg.finetune_epochs, cfg.model.seed, cfg.finetune_lr, cfg.finetune_strategy,
            progress=say)
        record["finetuned_on_seen"] = {"split": cfg.split, **ft}
    else:
        if cfg.weights is None:
            import torch

            torch.manual_seed(cfg.model.seed)    # a random backbone: seeded, saved with the run
        model, mean, std, _ = load_backbone(cfg.backbone, cfg.weights)
    def features(some_rels):                 # (kept positions, [(feats, maps)] a view)
        return extract_dataset(data, some_rels, model, mean, std, size, cfg.model.uses_conv,
                               cfg.map_size, layers=cfg.feature_layers,
                               mirrors=mirror_flags(cfg.mirror_views))

    say(f"features of {len(rels)} seen-class images ({cfg.backbone}, {size} px"
        f"{', and their mirror images' if cfg.mirror_views else ''})")
    kept, seen_views = features(rels)
    y_seen, test_seen = labels[kept], test_mask[kept]
    rels_seen = [rels[i] for i in kept]
    train = training_rows(seen_views, ~test_seen, y_seen)
    f_seen, m_seen = mean_of_views(seen_views)
    # --- evaluation only: unseen classes are read from here on --------------------------------
    t_unseen = encoder.transform({c: data.texts[c] for c in unseen})
    urels = [r for c in unseen for r in data.images[c]]
    ulabels = np.asarray([len(seen) + i for i, c in enumerate(unseen) for _ in data.images[c]])
    say(f"features of {len(urels)} unseen-class images")
    ukept, unseen_views = features(urels)
    f_un, m_un = mean_of_views(unseen_views)
    test = {"feats": np.concatenate([f_seen[test_seen], f_un]),
            "labels": np.concatenate([y_seen[test_seen], ulabels[ukept]]),
            "rels": np.asarray([r for r, t in zip(rels_seen, test_seen) if t]
                               + [urels[i] for i in ukept])}
    if m_un is not None:
        test["maps"] = np.concatenate([m_seen[test_seen], m_un])
    return Prepared(seen + unseen, len(seen), encoder, np.concatenate([t_seen, t_unseen]),
                    train, test, data.report, model, size, record, ft_rels, (mean, std))


def mirror_flags(mirror_views: bool) -> tuple[bool, ...]:
    """The views an image is described by: itself, and its mirror image when `mirror_views`."""
    return (False, True) if mirror_views else (False,)


def training_rows(views, mask, labels) -> dict:
    """The fitting set: every view [(feats, maps or None)] of the images in `mask`, stacked."""
    maps = [m[mask] for _, m in views if m is not None]
    return {"feats": np.concatenate([f[mask] for f, _ in views]),
            "maps": np.concatenate(maps) if maps else None,
            "labels": np.tile(labels[mask], len(views)), "images": int(mask.sum())}


def mean_of_views(views):
    """(feats, maps) of each image averaged over its views; a mirror view's map is flipped back
    so that the averaged maps stay aligned with the image."""
    feats = np.mean([f for f, _ in views], axis=0)
    if views[0][1] is None:
        return feats, None
    maps = [m if i == 0 else m[..., ::-1] for i, (_, m) in enumerate(views)]
    return feats, np.mean(maps, axis=0).astype(np.float32)


def fit_and_evaluate(prep: Prepared, model_cfg: ZeroShotConfig, baselines=("ridge", "cca")):
    """Fit the zero-shot model and the baselines on ``prep.train`` with seen-class text only;
    returns (net, loss history, {method: metrics})."""
    from cnnlab.zeroshot.baselines import BASELINES
    from cnnlab.zeroshot.evaluate import zeroshot_report
    from cnnlab.zeroshot.models import fit_zeroshot, predict_scores

    _check_baselines(baselines)
    t_seen, tr, te = prep.text[:prep.n_seen], prep.train, prep.test
    net, history = fit_zeroshot(t_seen, tr["labels"], tr["feats"],
                                tr["maps"] if model_cfg.uses_conv else None, model_cfg)
    cols = (range(prep.n_seen), range(prep.n_seen, len(prep.classes)))
    scores = predict_scores(net, prep.text, te["feats"],
                            te.get("maps") if model_cfg.uses_conv else None)
    center = model_cfg.center_scores          # the baselines are ranked the same way
    metrics = {model_cfg.kind: zeroshot_report(scores, te["labels"], *cols, prep.classes, center)}
    for name in baselines:
        b = BASELINES[name]().fit(t_seen, tr["labels"], tr["feats"])
        metrics[f"baseline_{name}"] = zeroshot_report(b.scores(prep.text, te["feats"]),
                                                      te["labels"], *cols, prep.classes, center)
    return net, history, metrics


def train_zeroshot(cfg: ZeroShotRunConfig, out_dir=None, progress=None) -> dict:
    """Fit the zero-shot model and baselines on the seen classes; evaluate on held-out seen images
    and all unseen images. Returns the run record (also written to `out_dir` if given)."""
    from cnnlab.zeroshot.features import first_conv_channels

    _check_baselines(cfg.baselines)
    t0 = time.perf_counter()
    prep = prepare(cfg, progress)
    if progress:
        progress(f"training the {cfg.model.kind} model on {prep.train['images']} images of "
                 f"{prep.n_seen} classes")
    net, history, metrics = fit_and_evaluate(prep, cfg.model, cfg.baselines)
    # the backbone is kept with the run unless the weights file alone reproduces its features
    keep = cfg.weights is None or bool(cfg.finetune_epochs)
    record = {"config": {**asdict(cfg), "image_size": prep.image_size}, "seen": prep.seen,
              "unseen": prep.unseen, "n_train_images": prep.train["images"],
              "n_train_rows": len(prep.train["labels"]),
              "loss_history": history, "text_dim": prep.encoder.dim,
              "feature_dim": int(prep.train["feats"].shape[1]), "backbone": prep.backbone_record,
              "backbone_file": BACKBONE_FILE if keep else None,
              "metrics": metrics, "skipped": [f"{s.path}: {s.reason}" for s in prep.report.skipped],
              "wall_seconds": time.perf_counter() - t0, "device": "cpu", "versions": _versions()}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        net.save(out / "model.pt")
        (out / "encoder.json").write_text(json.dumps(prep.encoder.state()), encoding="utf-8")
        np.savez_compressed(out / "test.npz", text=prep.text, **prep.test)
        if cfg.finetune_epochs:
            # a cnnlab checkpoint: its header carries the normalisation the features used
            from cnnlab.train.checkpoint import save_checkpoint

            save_checkpoint(out, BACKBONE_FILE.split(".")[0], prep.backbone, classes=prep.seen,
                            meta={"model": cfg.backbone, "input_size": prep.image_size,
                                  "in_chans": first_conv_channels(prep.backbone),
                                  "mean": [float(v) for v in prep.norm[0]],
                                  "std": [float(v) for v in prep.norm[1]]})
        elif cfg.weights is None:
            # without a weights file the backbone is a random init: keep it, or predict could
            # not reproduce the features the model was trained on
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in prep.backbone.state_dict().items()},
                      str(out / BACKBONE_FILE))
        (out / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


@dataclass
class ZeroShotRun:
    """A saved run: record, network, text encoder."""

    path: Path
    record: dict
    net: object
    encoder: object

    @property
    def config(self) -> dict:
        return self.record["config"]


def load_run(path) -> ZeroShotRun:
    """Open a run folder written by :func:`train_zeroshot`."""
    from cnnlab.zeroshot.models import load_zeroshot
    from cnnlab.zeroshot.text import encoder_from_state

    p = Path(path)
    missing = [n for n in ("run.json", "model.pt", "encoder.json") if not (p / n).is_file()]
    if missing:
        raise ConfigError(f"{p} is not a zero-shot run folder (missing {missing}); create one with "
                          f"`cnnlab zeroshot train --data CUB --out {p}`")
    try:
        record = json.loads((p / "run.json").read_text(encoding="utf-8"))
        encoder = encoder_from_state(json.loads((p / "encoder.json").read_text(encoding="utf-8")))
    except (ValueError, KeyError) as e:
        raise ConfigError(f"{p}: run.json or encoder.json is damaged ({e}); retrain") from None
    return ZeroShotRun(p, record, load_zeroshot(p / "model.pt"), encoder)


def evaluate_run(run: ZeroShotRun) -> dict:
    """Recompute the model's metrics from the run's saved test features."""
    from cnnlab.zeroshot.evaluate import zeroshot_report
    from cnnlab.zeroshot.models import predict_scores

    with np.load(run.path / "test.npz") as z:
        test = {k: z[k] for k in z.files}
    seen, unseen = run.record["seen"], run.record["unseen"]
    scores = predict_scores(run.net, test["text"], test["feats"], test.get("maps"))
    return zeroshot_report(scores, test["labels"], range(len(seen)),
                           range(len(seen), len(seen) + len(unseen)), seen + unseen,
                           run.net.config.center_scores)


def explain_run(run: ZeroShotRun, n_classes: int = 3, k: int = 8, out_dir=None) -> list[str]:
    """Word-sensitivity bar charts and text-to-image retrieval grids (k nearest test images) for
    the first `n_classes` unseen classes, as PNGs in `out_dir` (default RUN/explain/)."""
    from cnnlab.zeroshot.data import iter_image_batches, pretty_name, read_cub
    from cnnlab.zeroshot.explain import (plot_retrieval, plot_word_sensitivities, retrieve,
                                         word_sensitivities)

    out = Path(out_dir) if out_dir is not None else run.path / "explain"
    out.mkdir(parents=True, exist_ok=True)
    with np.load(run.path / "test.npz") as z:
        test = {key: z[key] for key in z.files}
    n_seen, vocab = len(run.record["seen"]), run.encoder.vocabulary
    chosen = run.record["unseen"][:n_classes]
    written, ranked = [], []
    for j, cls in enumerate(chosen):
        col = n_seen + j
        mine = test["labels"] == col
        pairs = word_sensitivities(run.net, test["text"][col], vocab, test["feats"][mine],
                                   test["maps"][mine] if "maps" in test else None)
        path = out / f"words_{j:02d}.png"
        plot_word_sensitivities(pairs, path, f"{pretty_name(cls)}: words raising its score")
        written.append(str(path))
        ranked.append(retrieve(run.net, test["text"][col], test["feats"], test.get("maps"), k))
    # decode every retrieved image in one pass over the source (an archive is read sequentially)
    rels = sorted({str(test["rels"][i]) for idx, _ in ranked for i in idx})
    data = read_cub(run.config["data"])
    pixels = {}
    for batch, pos in iter_image_batches(data, rels, 96):
        pixels.update({rels[p]: b for p, b in zip(pos, batch)})
    for j, (cls, (idx, scores)) in enumerate(zip(chosen, ranked)):
        keep = [i for i, r in enumerate(idx) if str(test["rels"][r]) in pixels]
        shown = [str(test["rels"][idx[i]]) for i in keep]
        path = out / f"retrieval_{j:02d}.png"
        plot_retrieval(np.stack([pixels[r] for r in shown]), scores[keep], path,
                       f"nearest test images to the {pretty_name(cls)} article",
                       [pretty_name(r.split("/")[-2]) for r in shown])
        written.append(str(path))
    return written


def predict_described(run: ZeroShotRun, images: list, descriptions: dict[str, str]) -> np.ndarray:
    """Probabilities (N, K) of image files among K classes given only as text {name: article}:
    a softmax over the predicted classifiers' scores."""
    import torch

    from cnnlab.data.decode import decode_image, fit_image
    from cnnlab.zeroshot.features import extract_features, load_backbone
    from cnnlab.zeroshot.models import predict_scores

    cfg = run.config
    text = run.encoder.transform(descriptions)     # errors name a class without known words
    saved = run.record.get("backbone_file")
    weights = str(run.path / saved) if saved else cfg["weights"]
    model, mean, std, _ = load_backbone(cfg["backbone"], weights)
    batch = np.stack([fit_image(decode_image(str(p)), cfg["image_size"]).transpose(2, 0, 1)
                      for p in images])
    views = [extract_features(model, batch, mean, std, run.net.config.uses_conv,
                              cfg["map_size"], cfg.get("feature_layers") or (), mirror)
             for mirror in mirror_flags(cfg.get("mirror_views", False))]
    feats, maps = mean_of_views(views)               # as the run's test images were described
    scores = predict_scores(run.net, text, feats, maps)
    return torch.softmax(torch.from_numpy(scores), 1).numpy()
