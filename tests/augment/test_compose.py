"""Compose, parse_spec and the presets; Hypothesis invariants over every transform (F3)."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.augment.compose import (SPEC_NAMES, Compose, check_batch, cifar_train, eval_transform,
                                    from_unit, imagenet_train, parse_spec, to_unit)
from cnnlab.augment.mix import CutMix, Mixup
from cnnlab.errors import ConfigError, InputShapeError

IMAGE_NAMES = [n for n in SPEC_NAMES if n not in ("mixup", "cutmix")]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_compose_passes_one_generator_along():
    calls = []

    def first(x, generator=None):
        calls.append(torch.rand(1, generator=generator).item())
        return x + 1

    def second(x, generator=None):
        calls.append(torch.rand(1, generator=generator).item())
        return x * 2

    out = Compose([first, second])(torch.zeros(1, 1, 2, 2), gen(0))
    assert torch.equal(out, torch.full((1, 1, 2, 2), 2.0))
    g = gen(0)
    assert calls == [torch.rand(1, generator=g).item(), torch.rand(1, generator=g).item()]


def test_parse_spec_builds_the_named_chain():
    tf, mixer = parse_spec("flip, crop=2,jitter=0.2,mixup=0.4", 32)
    assert [type(t).__name__ for t in tf.transforms] == ["HorizontalFlip", "RandomCrop",
                                                         "ColorJitter"]
    assert tf.transforms[1].padding == 2 and tf.transforms[2].brightness == (0.8, 1.2)
    assert isinstance(mixer, Mixup) and mixer.alpha == 0.4
    assert isinstance(parse_spec("cutmix", 8)[1], CutMix)
    assert parse_spec("crop", 32)[0].transforms[0].padding == 4     # CIFAR: 4 at 32 px


def test_parse_spec_errors_name_the_fix():
    with pytest.raises(ConfigError, match="close: \\['flip'\\]"):
        parse_spec("flp", 32)
    with pytest.raises(ConfigError, match="number"):
        parse_spec("rotate=lots", 32)
    with pytest.raises(ConfigError, match="pca needs"):
        parse_spec("pca", 32)
    with pytest.raises(ConfigError, match="one of mixup and cutmix"):
        parse_spec("mixup,cutmix", 32)


def test_presets_shapes_and_eval_determinism():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen(0))
    assert cifar_train()(x, gen(0)).shape == x.shape
    big = torch.randint(0, 256, (2, 3, 40, 50), dtype=torch.uint8, generator=gen(0))
    assert imagenet_train(24)(big, gen(0)).shape == (2, 3, 24, 24)
    ev = eval_transform(32)
    assert ev(big).shape == (2, 3, 32, 32) and torch.equal(ev(big), ev(big))
    assert torch.equal(eval_transform(32, resize=32)(x), x)        # CIFAR: nothing to do


def test_unit_conversion_round_trips_uint8():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(from_unit(to_unit(x), torch.uint8), x)
    with pytest.raises(InputShapeError):
        check_batch(torch.zeros(2, 2))


# F3 of ../shared/RELIABILITY.md: random sizes (1..512 here; 4096 would not stay fast), dtypes and
# seeds; every transform keeps shape (crops: their size), dtype and range, and is seeded.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(IMAGE_NAMES + ["mixup", "cutmix", "eval"]),
       h=st.integers(1, 512), w=st.integers(1, 512), c=st.sampled_from([1, 3]),
       uint8=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_transform_invariants(name, h, w, c, uint8, seed):
    if name == "pca":
        c = 3
    n = 2 if h * w > 64 * 64 else 3
    g = gen(seed)
    x = (torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=g) if uint8
         else torch.rand(n, c, h, w, generator=g))
    if name == "eval":
        tf = eval_transform(min(h, w, 8))
        out = tf(x)
        assert out.shape == (n, c, min(h, w, 8), min(h, w, 8)) and torch.equal(out, tf(x))
    elif name in ("mixup", "cutmix"):
        mixer = parse_spec(name, (h, w))[1]
        y = torch.arange(n)
        out = mixer(x, y, gen(seed)).x
        again = mixer(x, y, gen(seed)).x
        assert out.shape == x.shape and torch.equal(out, again)
    else:
        size = (h, w) if name != "rrc" else (min(h, 16), min(w, 16))
        tf, _ = parse_spec(name, size, data=x)
        out = tf(x, gen(seed))
        assert out.shape == (n, c, *size)
        assert torch.equal(out, tf(x, gen(seed)))
    assert out.dtype == x.dtype
    assert torch.isfinite(out.float()).all()
    if not uint8:
        assert out.min() >= 0 and out.max() <= 1


@pytest.fixture
def deterministic_mode():
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def test_chains_run_bitwise_identically_in_deterministic_mode(deterministic_mode):
    # F4: no op in the chains is refused by torch's deterministic mode, and reruns match bitwise
    x = torch.randint(0, 256, (6, 3, 24, 24), dtype=torch.uint8, generator=gen(0))
    tf, mixer = parse_spec("rrc,flip,jitter,hue,affine,elastic,trivial,erase,cutmix", 24)
    a = mixer(tf(x, gen(4)), torch.arange(6), gen(5))
    b = mixer(tf(x, gen(4)), torch.arange(6), gen(5))
    assert torch.equal(a.x, b.x) and torch.equal(a.lam, b.lam)
