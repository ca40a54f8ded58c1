"""Training: a short `fit` loop plus hooks; configs, losses, optimisers, schedules, checkpoints."""

from cnnlab.train.config import TrainConfig
from cnnlab.train.loop import History, evaluate, fit
from cnnlab.train.run import RunResult, resume_config, train

__all__ = ["History", "RunResult", "TrainConfig", "evaluate", "fit", "resume_config", "train"]
