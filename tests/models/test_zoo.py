"""Every registered model, one loop: the classifier protocol and output shapes in train and eval.

Shapes are checked on the meta device (no weights allocated, no compute), so the 140M-parameter
VGGs cost nothing; the family test files run real forwards and backwards on small inputs.
"""

import pytest
import torch

import cnnlab

ALL = cnnlab.list_models()


def _logits(out):
    return out[0] if isinstance(out, tuple) else out     # aux-head models return a namedtuple


@pytest.mark.parametrize("name", ALL)
def test_protocol_and_output_shapes_train_and_eval(name):
    info = cnnlab.model_info(name)
    with torch.device("meta"):
        model = cnnlab.create_model(name, num_classes=7)
        x = torch.empty(2, info.in_chans, info.input_size, info.input_size)
        for method in ("forward_features", "forward_head", "reset_classifier"):
            assert callable(getattr(model, method)), f"{name} lacks {method}"
        assert model.num_classes == 7
        model.eval()
        assert model(x).shape == (2, 7)
        feats = model.forward_features(x)
        assert model.forward_head(feats).shape == (2, 7)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.dim() == 2 and pre.shape[0] == 2
        model.train()
        out = model(x)
        assert _logits(out).shape == (2, 7)
        model.reset_classifier(3)
        assert model.num_classes == 3
        assert _logits(model.eval()(x)).shape == (2, 3)


@pytest.mark.parametrize("name", ALL)
def test_in_chans_changes_the_first_layer(name):
    info = cnnlab.model_info(name)
    other = 1 if info.in_chans == 3 else 3
    with torch.device("meta"):
        model = cnnlab.create_model(name, in_chans=other).eval()
        x = torch.empty(1, other, info.input_size, info.input_size)
        assert model(x).shape == (1, info.num_classes)
