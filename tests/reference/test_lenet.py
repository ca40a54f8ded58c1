import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import InputShapeError
from cnnlab.reference import LeNet5, gradcheck


def torch_lenet(params, x):
    """The same network in torch float64 ops, on copies of the NumPy parameters."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), p["features.c1.weight"], p["features.c1.bias"])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["features.c3.weight"], p["features.c3.bias"])), 2).flatten(1)
    h = F.relu(F.linear(h, p["classifier.c5.weight"], p["classifier.c5.bias"]))
    h = F.relu(F.linear(h, p["classifier.f6.weight"], p["classifier.f6.bias"]))
    return F.linear(h, p["classifier.output.weight"], p["classifier.output.bias"]), p


def test_parameter_count_is_the_common_lenet5():
    assert LeNet5().num_params() == 61_706
    assert LeNet5(num_classes=2, in_chans=3).num_params() == 61_706 - 8 * 84 - 8 + 2 * 6 * 25


def test_loss_and_every_gradient_match_torch():
    model = LeNet5(seed=1)
    r = np.random.default_rng(0)
    x, y = r.uniform(size=(4, 1, 32, 32)), np.array([3, 1, 4, 1])
    loss, grads, scores = model.loss(x, y)

    t_scores, p = torch_lenet(model.params, x)
    t_loss = F.cross_entropy(t_scores, torch.tensor(y))
    t_loss.backward()
    np.testing.assert_allclose(scores, t_scores.detach().numpy(), rtol=0, atol=1e-10)
    assert abs(loss - t_loss.item()) < 1e-10
    assert set(grads) == set(model.params)
    for name, g in grads.items():
        assert g.shape == model.params[name].shape
        np.testing.assert_allclose(g, p[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_params_load_into_the_zoo_lenet5_and_give_its_logits_and_gradients():
    # The fast path: the torch model cnnlab trains must compute exactly what the reference does.
    import cnnlab

    model = LeNet5(seed=4)
    zoo = cnnlab.create_model("lenet5").double()
    zoo.load_state_dict({k: torch.tensor(v) for k, v in model.params.items()}, strict=True)
    r = np.random.default_rng(5)
    x, y = r.uniform(size=(3, 1, 32, 32)), np.array([9, 0, 2])
    loss, grads, scores = model.loss(x, y)
    t_scores = zoo(torch.tensor(x))
    F.cross_entropy(t_scores, torch.tensor(y)).backward()
    np.testing.assert_allclose(scores, t_scores.detach().numpy(), rtol=0, atol=1e-10)
    for name, p in zoo.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_first_layer_bias_gradient_passes_gradcheck():
    # The deepest gradient: it travels back through every layer of the network.
    model = LeNet5(seed=2)
    r = np.random.default_rng(3)
    x, y = r.uniform(size=(2, 1, 32, 32)), np.array([0, 7])
    _, grads, _ = model.loss(x, y)
    b = model.params["features.c1.bias"]
    assert gradcheck(lambda _: model.loss(x, y)[0], b, grads["features.c1.bias"]) < 1e-7


def test_predict_and_wrong_input_shape():
    model = LeNet5()
    x = np.zeros((5, 1, 32, 32))
    pred = model.predict(x, batch_size=2)
    assert pred.shape == (5,) and pred.dtype.kind == "i"
    with pytest.raises(InputShapeError, match=r"\(N, 1, 32, 32\)"):
        model.forward(np.zeros((5, 1, 28, 28)))
