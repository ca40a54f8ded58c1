"""Fine-tuning a pretrained network: strategy -> freezing and LR groups -> `train` (CS231n).

The library behind `cnnlab finetune`: :func:`plan` resolves the source weights, the data, the
strategy (:func:`cnnlab.transfer.recommend` for "auto") and the optimiser groups; :func:`finetune`
trains the plan with :func:`cnnlab.train.run.train` and records it in the run as finetune.json;
:func:`plan_resume` rebuilds a plan from that record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

STRATEGY_CHOICES = ("auto", "linear-probe", "top-k-layers", "full", "gradual")
RECORD = "finetune.json"
# flags of `cnnlab finetune` that a resume takes from finetune.json instead
_FINETUNE_FLAGS = ("weights", "strategy", "top_k", "freeze_bn", "lr_mult", "key_map",
                   "unfreeze_every", "similarity", "partial", "data_stats")


@dataclass
class Plan:
    """A fine-tuning run ready to start: config, prepared model and groups, data and the record."""

    cfg: object                  # TrainConfig
    prepared: object             # cnnlab.transfer.Prepared
    loaders: object              # cnnlab.train.batches.Loaders
    record: dict = field(default_factory=dict)

    def describe(self) -> list[str]:
        """What will train, in two lines for the terminal."""
        r = self.record
        why = f"auto: {r['reason']}" if r["requested"] == "auto" else r["reason"]
        frozen = [g for g in r["groups"] if g not in r["trainable"]]
        rates = ", ".join(f"{k} {v:.3g}" for k, v in r["group_lr"].items())
        return [f"strategy {r['strategy']} ({why})",
                f"training {', '.join(r['trainable'])}"
                + (f"; frozen {', '.join(frozen)}" if frozen else "")
                + ("; BatchNorm frozen" if r["freeze_bn"] else "") + f"; lr {rates}"]


def _strategy_reason(strategy: str, trainable: list[str], every: int) -> str:
    """What an explicitly requested strategy does, for the record and the terminal."""
    return {
        "linear-probe": "requested: a linear classifier on the frozen pretrained features",
        "top-k-layers": f"requested: fine-tune the top groups ({', '.join(trainable)}), "
                        "keep the lower ones fixed",
        "full": "requested: fine-tune every layer",
        "gradual": f"requested: train the classifier first, then unfreeze one more group from "
                   f"the top every {every} epoch(s)",
    }[strategy]


def _similarity(value):
    if value is None:
        return "similar"
    try:
        return float(value)
    except ValueError:
        return value


def _key_map(values) -> tuple[str, list[str]]:
    """(layout, rules) from --key-map values: a layout name, or REGEX=>REPL rules / rule files."""
    from cnnlab.transfer.keymap import PRESETS

    layout, rules = "auto", []
    for v in values or []:
        if v in PRESETS or v == "auto":
            layout = v
        else:
            rules.append(v)
    return layout, rules


def _use_stats(loaders, mean, std) -> bool:
    """Standardise image-folder batches with `mean`/`std`; False where the batches are floats."""
    import torch

    batches = [b for b in (loaders.train, loaders.val, loaders.test) if b is not None]
    chans = loaders.train.x.shape[1]
    if any(b.x.dtype != torch.uint8 for b in batches) or len(mean) != chans:
        return False  # the digits come standardised already; other channel counts do not fit
    for b in batches:
        b.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        b.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
    loaders.mean, loaders.std = tuple(mean), tuple(std)
    return True


def _check_channels(loaders, in_chans: int, model: str, data) -> None:
    from cnnlab.errors import ConfigError

    chans = int(loaders.train.x.shape[1])
    if chans != in_chans:
        raise ConfigError(f"{model} takes {in_chans}-channel images but {data or 'the data'} "
                          f"gives {chans}-channel ones; use data with {in_chans} channel(s) or "
                          "weights of a model with the matching input")


def _prepare(model, strategy, classes, cfg, opts: dict, n_images: int):
    """transfer.prepare with a seeded new classifier and the classifier's group first."""
    import torch

    from cnnlab.transfer.prepare import prepare

    # the new classifier's initial weights follow --seed without touching the global generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        prep = prepare(model, strategy, num_classes=len(classes), lr=cfg.lr,
                       lr_mult=opts["lr_mult"], freeze_bn=opts["freeze_bn"],
                       top_k=opts["top_k"], unfreeze_every=opts["unfreeze_every"],
                       weight_decay=cfg.weight_decay, n_images=n_images,
                       similarity=opts["similarity"])
    # top group first: the loop logs param_groups[0]'s rate, which should be the classifier's
    prep.param_groups = prep.param_groups[::-1]
    return prep


def plan(cfg, weights, strategy: str = "auto", *, model: str | None = None, top_k: int = 2,
         freeze_bn: bool = False, lr_mult: dict | None = None, unfreeze_every: int = 1,
         similarity="similar", key_map=(), partial: bool = False,
         data_stats: bool = False, loaders=None) -> Plan:
    """Load the source network and the data, and apply the transfer strategy (CS231n notes).

    `model` names the architecture of a foreign weights file (a cnnlab run knows its own).
    `loaders` (cnnlab.train.batches.Loaders at the source's input size) replaces the data of
    `cfg.data`, so that repeated runs decode it once; the plan standardises them in place.
    """
    import dataclasses

    from cnnlab.errors import ConfigError
    from cnnlab.train.run import build_loaders
    from cnnlab.transfer.source import load_source

    if weights is None:
        raise ConfigError("fine-tuning needs --weights FILE_OR_RUN (a run directory from `cnnlab "
                          "train`, or a weights file with --model); `cnnlab train` trains from "
                          "scratch")
    layout, rules = _key_map(key_map)
    src = load_source(weights, model, layout=layout, rules=rules or None,
                      strict=not partial, image_size=cfg.image_size)
    cfg = dataclasses.replace(cfg, model=src.model_name, image_size=src.image_size)
    if loaders is None:
        loaders = build_loaders(cfg, src.image_size, one_channel_if_grey=src.in_chans == 1)
    _check_channels(loaders, src.in_chans, src.model_name, cfg.data)
    stats = (not data_stats and src.mean is not None
             and _use_stats(loaders, src.mean, src.std))
    n_images = int(loaders.info.get("train") or len(loaders.train.y))
    opts = dict(lr_mult=lr_mult, freeze_bn=freeze_bn, top_k=top_k,
                unfreeze_every=unfreeze_every, similarity=similarity)
    prep = _prepare(src.model, strategy, loaders.classes, cfg, opts, n_images)
    rec = prep.recommendation
    reason = rec.reason if rec else _strategy_reason(prep.strategy, prep.trainable,
                                                     unfreeze_every)
    if rec and rec.layer != "pre_logits":
        # the table's hard case probes a middle stage; fine-tuning has only the top features
        reason += (f". Here the new classifier trains on the top features; for {rec.layer} "
                   f"features use `cnnlab features --layer {rec.layer}` then `cnnlab baseline`")
    group_lr = {g["name"].split("/")[0]: g["lr"] for g in prep.param_groups}
    record = {
        "strategy": prep.strategy, "requested": strategy,
        "reason": reason,
        "n_images": n_images, "similarity": similarity,
        "top_k": (rec.top_k or top_k) if rec else top_k,
        "freeze_bn": freeze_bn, "unfreeze_every": unfreeze_every,
        "groups": list(prep.groups), "trainable": prep.trainable,
        # every group's multiplier (0: left out of the optimiser), so a resume rebuilds the same
        # optimiser groups whatever rule chose them
        "lr_mult": {n: next((g["lr_mult"] for g in prep.param_groups
                             if g["name"].split("/")[0] == n), 0.0) for n in prep.groups},
        "group_lr": group_lr,
        "param_groups": [{"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"],
                          "tensors": len(g["params"])} for g in prep.param_groups],
        "num_classes": len(loaders.classes),
        "source": {"weights": str(weights), "model": src.model_name,
                   "image_size": src.image_size, "in_chans": src.in_chans,
                   "key_map": {"layout": layout, "rules": rules}, "partial": partial,
                   "notes": src.notes},
        "normalisation": {"from": "source" if stats else "data", "mean": list(loaders.mean),
                          "std": list(loaders.std)},
    }
    return Plan(cfg, prep, loaders, record)


def plan_resume(run_dir, overrides: dict | None = None, force: bool = False) -> tuple[Plan, dict]:
    """Rebuild a fine-tuning run's setup from RUN/finetune.json for a resume; (plan, changes)."""
    import cnnlab
    from cnnlab.errors import ConfigError
    from cnnlab.train.run import build_loaders, resume_config

    run_dir = Path(run_dir)
    path = run_dir / RECORD
    if not path.is_file():
        hint = ("it is a `cnnlab train` run: resume it with `cnnlab train --resume`"
                if (run_dir / "config.yaml").is_file() else "is it a fine-tuning run directory?")
        raise ConfigError(f"cannot resume {str(run_dir)!r} as a fine-tuning run: no {RECORD} "
                          f"there; {hint}")
    try:
        record = json.loads(path.read_text())
        src, norm = record["source"], record["normalisation"]
        model_name, in_chans = src["model"], int(src["in_chans"])
        opts = dict(lr_mult=record["lr_mult"], freeze_bn=record["freeze_bn"],
                    top_k=record["top_k"], unfreeze_every=record["unfreeze_every"],
                    similarity=record["similarity"])
        strategy, n_classes, n_images = record["strategy"], record["num_classes"], \
            record["n_images"]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path} is incomplete or not valid JSON ({type(e).__name__}: {e}); "
                          "it is written by `cnnlab finetune` and should not be edited") from None
    cfg, changes = resume_config(run_dir, overrides, force)
    split = run_dir / "split.json"
    loaders = build_loaders(cfg, cfg.image_size, one_channel_if_grey=in_chans == 1,
                            split_file=split if split.is_file() else None)
    _check_channels(loaders, in_chans, model_name, cfg.data)
    if norm.get("from") == "source":
        _use_stats(loaders, norm["mean"], norm["std"])
    # weights come from the run's last checkpoint, so the source file is not needed again
    model = cnnlab.create_model(model_name, num_classes=n_classes, in_chans=in_chans)
    prep = _prepare(model, strategy, loaders.classes, cfg, opts, n_images)
    return Plan(cfg, prep, loaders, record), changes


class _WriteRecord:
    """Training hook: writes finetune.json as training starts (kept as it is on a resume)."""

    def __init__(self, path: Path, record: dict):
        self.path, self.record = path, record

    def on_train_start(self, **_):
        if not self.path.exists():
            self.path.write_text(json.dumps(self.record, indent=2) + "\n")


def finetune(p: Plan, resume=None, resume_changes: dict | None = None, callbacks=(),
             force: bool = False):
    """Fine-tune as planned (Yosinski et al. 2014) via cnnlab.train; adds RUN/finetune.json."""
    import dataclasses

    from cnnlab.train.run import make_run_dir, train

    cfg = p.cfg
    if resume is None:
        # the run directory is made here so that finetune.json can go in it from the start (a
        # crashed run must still be resumable); train() accepts it since it is still empty
        run_dir = make_run_dir(cfg)
        cfg = dataclasses.replace(cfg, out_dir=str(run_dir.parent), name=run_dir.name)
    else:
        run_dir = Path(resume)
    hooks = [_WriteRecord(run_dir / RECORD, p.record), *p.prepared.callbacks, *callbacks]
    try:
        return train(cfg, model=p.prepared.model, loaders=p.loaders, callbacks=hooks,
                     resume=resume, resume_changes=resume_changes,
                     param_groups=p.prepared.param_groups, force=force)
    except BaseException:
        if resume is None and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # failed before writing anything: leave no empty directory behind
        raise
