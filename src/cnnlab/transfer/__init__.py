"""Transfer learning: layer groups, freezing, discriminative rates, key mapping, features, advice.

- :func:`layer_groups` (groups.py): stem, stage1..K, head, classifier of any zoo model.
- :func:`freeze` / :func:`unfreeze` / :func:`freeze_bn` (freeze.py).
- :func:`discriminative_param_groups`, :class:`GradualUnfreezing` (lr.py, Howard & Ruder 2018).
- :func:`load_mapped` (keymap.py): timm / legacy torchvision / user-mapped weight files.
- :func:`extract_features` / :func:`feature_set` (features.py): activations at a named layer.
- :func:`recommend` (recommend.py): the CS231n strategy table; :func:`prepare` (prepare.py) applies
  a strategy and returns (model, param_groups, callbacks) for training.
"""

from cnnlab.transfer.features import extract_features, feature_set, save_features
from cnnlab.transfer.freeze import freeze, freeze_all_but, freeze_bn, unfreeze, unfreeze_bn
from cnnlab.transfer.groups import LayerGroup, LayerGroups, layer_groups
from cnnlab.transfer.keymap import load_mapped, parse_rules, remap_state_dict
from cnnlab.transfer.lr import (
    GradualUnfreezing, discriminative_param_groups, layerwise_decay, parse_lr_mults,
)
from cnnlab.transfer.prepare import Prepared, prepare
from cnnlab.transfer.recommend import Recommendation, recommend

__all__ = [
    "GradualUnfreezing", "LayerGroup", "LayerGroups", "Prepared", "Recommendation",
    "discriminative_param_groups", "extract_features", "feature_set", "freeze", "freeze_all_but",
    "freeze_bn", "layer_groups", "layerwise_decay", "load_mapped", "parse_lr_mults",
    "parse_rules", "prepare", "recommend", "remap_state_dict", "save_features", "unfreeze",
    "unfreeze_bn",
]
