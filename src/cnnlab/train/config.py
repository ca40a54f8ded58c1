"""TrainConfig: every setting of a training run, with the digits/LeNet-5 recipe as defaults.

`cnnlab train` with no arguments uses these defaults; a YAML file in configs/ overrides them and
command-line flags override the file (see :mod:`cnnlab.config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from cnnlab.errors import ConfigError

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
                        "adamw"]
ScheduleName = Literal["constant", "step", "plateau", "cosine", "onecycle"]


@dataclass(frozen=True)
class TrainConfig:
    """Schema and defaults of one training run (defaults: LeNet-5 on the embedded digits)."""

    model: str = "lenet5"
    data: str | None = None            # None or "digits": the embedded digits; else an image
                                       # folder or .tar/.tar.gz/.zip archive (cnnlab.data)
    image_size: int | None = None      # None: the model's registered input size (32 for LeNet-5)
    val_fraction: float = 0.1          # held out of the training split for model selection
    test_fraction: float = 0.0         # image folders without test/: held out for the test report
    random_shift: int = 2              # train-time translation by up to this many pixels; 0: off
    hflip: bool | None = None          # random left-right mirror; None: on for image folders only
    data_cache: str | None = None      # image folders: cnnlab.data's on-disk cache of decoded
                                       # arrays (later runs skip decoding); None: decode each run
    # Defaults measured for LeNet-5 on digits (2 CPU cores, 5 seeds): test accuracy 98.3-99.4%,
    # mean 98.9%, in about 10 s. Without random_shift the same recipe plateaus near 97%.
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.02
    optimizer: OptimizerName = "momentum"
    momentum: float | None = None      # None: 0.9 for momentum/nesterov, 0 for sgd/rmsprop
    nesterov: bool = False             # Nesterov momentum for sgd/momentum ("nesterov" implies it)
    weight_decay: float = 5e-4         # L2 penalty on conv/linear weights
    decay_bias_and_norm: bool = False  # also decay biases and norm-layer scales/shifts
    l1: float = 0.0                    # L1 penalty on the same weights, added to the loss; with
                                       # weight_decay > 0 too, the elastic net (Zou & Hastie 2005)
    dropout: float | None = None       # None: the model's own rate; else passed to its builder
    init: Literal["default", "xavier", "kaiming"] = "default"  # default: each paper's own
    clip_grad_norm: float | None = None  # rescale gradients to at most this global L2 norm
    accumulate: int = 1                # batches per optimiser step (effective batch: batch_size *
                                       # accumulate); the schedule counts optimiser steps
    monitor_every: int = 50            # diagnostics (cnnlab.diagnose.TrainingMonitor) every N
                                       # optimiser steps into RUN/diagnostics.jsonl; 0: off
    tensorboard: bool = True           # RUN/tensorboard/: per-epoch metrics, and the monitor's
                                       # per-layer stats and weight/grad histograms
    early_stopping_patience: int = 0   # stop after this many epochs without a val_acc1 gain;
                                       # 0: off. Its state is checkpointed, so resumes stop alike
    checkpoint_every: int = 0          # also save `last` every N steps mid-epoch (batch position
                                       # and data order included); 0: at epoch ends only
    step_log: bool = False             # RUN/steps.jsonl: each step's loss, lr and sample indices
    compile: bool = False              # torch.compile the model for training; off by default:
                                       # measured 0.94x (ResNet-20) and 0.55x (LeNet-5) on the
                                       # 2-core CPU (benchmarks/compile_bench.py)
    ema_decay: float | None = None     # e.g. 0.999: validate, test and keep as `best` an
                                       # exponential moving average of the weights
    schedule: ScheduleName = "cosine"
    warmup_epochs: float = 0.0         # linear warm-up (Goyal et al. 2017); may be fractional
    lr_step_epochs: int = 30           # "step": multiply by lr_decay every this many epochs
    lr_decay: float = 0.1              # "step"/"plateau": the factor (AlexNet divides by 10)
    plateau_patience: int = 3          # "plateau": epochs without val improvement before decay
    min_lr: float = 0.0                # "cosine": the floor
    label_smoothing: float = 0.0       # Szegedy et al. 2016 (Inception-v3) use 0.1
    loss: Literal["ce", "svm"] = "ce"  # softmax cross-entropy or multiclass hinge (SVM)
    precision: Literal["auto", "bf16", "32"] = "auto"  # auto: bf16 autocast where fast
    channels_last: bool | None = None  # None: on for conv nets where it pays off
    device: str = "auto"               # auto: cuda if available, else cpu
    threads: int | None = None         # CPU intra-op threads; None: 1 for tiny models, else torch's
    seed: int = 0
    deterministic: bool = False        # torch.use_deterministic_algorithms for the run
    out_dir: str = "runs"
    name: str | None = None            # run directory name; None: MODEL-YYYYmmdd-HHMMSS
    quiet: bool = False                # no progress bar or per-epoch lines
    # for the built-in recipes (cnnlab.recipes)
    lr_milestones: tuple[float, ...] = ()  # "step": multiply by lr_decay at each of these epochs
                                       # (fractional: He et al. 2016 decay at iterations 32k/48k)
                                       # instead of every lr_step_epochs
    alternate_flip: bool = False       # with hflip: each image is mirrored on every other epoch
                                       # (random phase per image) instead of a fresh coin flip
                                       # each epoch (Jordan 2024, airbench)
    tta: Literal["none", "flip", "flip-translate"] = "none"  # also report the final val/test
                                       # accuracy averaged over mirrored (and 1-px shifted) views

    # names other tools use, suggested when such a key arrives (cnnlab.config)
    SYNONYMS: ClassVar[dict[str, str]] = {
        "learning_rate": "lr", "num_epochs": "epochs", "max_epochs": "epochs", "bs": "batch_size",
        "wd": "weight_decay", "scheduler": "schedule", "lr_schedule": "schedule",
        "smoothing": "label_smoothing", "amp": "precision", "output_dir": "out_dir",
        "dataset": "data", "arch": "model", "input_size": "image_size",
        "l1_penalty": "l1", "drop_rate": "dropout", "gradient_clip": "clip_grad_norm",
        "grad_clip": "clip_grad_norm", "accumulate_grad_batches": "accumulate",
        "ema": "ema_decay", "model_ema_decay": "ema_decay",
        "early_stopping": "early_stopping_patience",
        "save_every": "checkpoint_every", "checkpoint_every_n_steps": "checkpoint_every",
    }

    def __post_init__(self):
        def need(ok: bool, msg: str):
            if not ok:
                raise ConfigError(msg)

        need(self.epochs >= 1, f"epochs must be >= 1; got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1; got {self.batch_size}")
        need(self.lr > 0, f"lr must be > 0; got {self.lr}. Try 0.05 for SGD or 1e-3 for Adam.")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0; got {self.weight_decay}")
        need(self.l1 >= 0, f"l1 must be >= 0; got {self.l1}. Try 1e-5.")
        need(self.dropout is None or 0 <= self.dropout < 1,
             f"dropout must be in [0, 1); got {self.dropout}. 0.5 is AlexNet's rate.")
        need(self.clip_grad_norm is None or self.clip_grad_norm > 0,
             f"clip_grad_norm must be > 0; got {self.clip_grad_norm}. Try 1.0, or omit it.")
        need(self.ema_decay is None or 0 < self.ema_decay < 1,
             f"ema_decay must be in (0, 1); got {self.ema_decay}. 0.999 is usual.")
        need(self.monitor_every >= 0, f"monitor_every must be >= 0 (0: off); got "
             f"{self.monitor_every}")
        need(self.accumulate >= 1, f"accumulate must be >= 1; got {self.accumulate}")
        need(self.early_stopping_patience >= 0, f"early_stopping_patience must be >= 0 (0: off); "
             f"got {self.early_stopping_patience}")
        need(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0 (0: epoch ends only); "
             f"got {self.checkpoint_every}")
        need(self.momentum is None or 0 <= self.momentum < 1,
             f"momentum must be in [0, 1); got {self.momentum}")
        need(0 <= self.label_smoothing < 1,
             f"label_smoothing must be in [0, 1); got {self.label_smoothing}. 0.1 is usual.")
        need(self.loss == "ce" or self.label_smoothing == 0,
             f"label_smoothing applies to the cross-entropy loss only; got loss={self.loss!r} "
             f"with label_smoothing={self.label_smoothing}. Drop one of them.")
        need(0 <= self.warmup_epochs < self.epochs,
             f"warmup_epochs must be in [0, epochs={self.epochs}); got {self.warmup_epochs}")
        need(0 < self.lr_decay <= 1, f"lr_decay must be in (0, 1]; got {self.lr_decay}")
        need(self.lr_step_epochs >= 1, f"lr_step_epochs must be >= 1; got {self.lr_step_epochs}")
        need(self.plateau_patience >= 0,
             f"plateau_patience must be >= 0; got {self.plateau_patience}")
        need(0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr={self.lr}]; got {self.min_lr}")
        need(0 <= self.val_fraction < 1, f"val_fraction must be in [0, 1); got {self.val_fraction}")
        need(0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1,
             f"test_fraction must be in [0, 1) and below 1 - val_fraction; "
             f"got {self.test_fraction} with val_fraction {self.val_fraction}")
        need(self.random_shift >= 0, f"random_shift must be >= 0; got {self.random_shift}")
        need(self.threads is None or self.threads >= 1, f"threads must be >= 1; got {self.threads}")
        need(self.image_size is None or self.image_size >= 1,
             f"image_size must be >= 1; got {self.image_size}")
        need(self.name is None or ("/" not in self.name and "\\" not in self.name
                                   and self.name not in {"", ".", ".."}),
             f"name must be a plain directory name; got {self.name!r}. "
             "Use --out-dir for the parent.")
        need(self.device == "auto" or self.device.split(":")[0] in {"cpu", "cuda", "mps"},
             f"device must be auto, cpu, cuda, cuda:N or mps; got {self.device!r}")
        need(list(self.lr_milestones) == sorted(self.lr_milestones)
             and all(0 < m < self.epochs for m in self.lr_milestones),
             f"lr_milestones must be increasing epochs in (0, epochs={self.epochs}); "
             f"got {list(self.lr_milestones)}. For a shorter run, scale them too, e.g. "
             f"--set 'lr_milestones=[{self.epochs / 2:g}, {self.epochs * 3 / 4:g}]'")
        need(not self.lr_milestones or self.schedule == "step",
             f"lr_milestones apply to schedule 'step'; got schedule {self.schedule!r}. "
             "Add --schedule step or drop lr_milestones.")
