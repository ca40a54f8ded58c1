"""Zero-shot classification from text (Ba, Swersky, Fidler & Salakhutdinov, ICCV 2015): a class
never seen in training gets a classifier predicted from its description.

- text.py: TF-IDF encoder fitted on seen-class articles (pluggable: :data:`text.ENCODERS`)
- models.py: the paper's fc, conv and fc+conv models and their training (:func:`fit_zeroshot`)
- baselines.py: closed-form ridge text -> weights; nearest description in a CCA joint space
- evaluate.py: per-class ROC-AUC (unseen, seen, mean), top-1/top-5, generalized setting
- explain.py: word sensitivities and text-to-image retrieval, as PNGs
- data.py / features.py: the CUB layout, and features from any zoo backbone
- run.py: end to end into a run folder (what `cnnlab zeroshot` calls)
"""

from cnnlab.zeroshot.baselines import BASELINES, CCAJointSpace, RidgeTextToWeights
from cnnlab.zeroshot.evaluate import zeroshot_report
from cnnlab.zeroshot.models import (ZeroShotConfig, ZeroShotNet, fit_zeroshot, load_zeroshot,
                                    predict_scores)
from cnnlab.zeroshot.run import (ZeroShotRunConfig, evaluate_run, load_run, predict_described,
                                 train_zeroshot)
from cnnlab.zeroshot.text import TfidfEncoder

__all__ = ["BASELINES", "CCAJointSpace", "RidgeTextToWeights", "TfidfEncoder", "ZeroShotConfig",
           "ZeroShotNet", "ZeroShotRunConfig", "evaluate_run", "fit_zeroshot", "load_run",
           "load_zeroshot", "predict_described", "predict_scores", "train_zeroshot",
           "zeroshot_report"]
