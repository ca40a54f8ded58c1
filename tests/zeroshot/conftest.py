"""Synthetic zero-shot data: classes are combinations of attributes (colour, pattern, size); each
attribute word names a direction of the image features, and each class's description uses its words
among filler words shared by every class. An unseen class is a new combination of known words."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cnnlab.zeroshot.text import TfidfEncoder

COLOURS = ["red", "blue", "green", "yellow"]
PATTERNS = ["striped", "spotted", "plain"]
SIZES = ["small", "large"]
FILLER = "the bird lives in forests and sings at dawn near water"


def make_synthetic(seed: int = 0, dim: int = 24, per_class: int = 20, noise: float = 0.6,
                   map_hw: int = 4):
    rng = np.random.default_rng(seed)
    words = COLOURS + PATTERNS + SIZES
    directions = {w: rng.normal(size=dim) for w in words}
    combos = list(itertools.product(COLOURS, PATTERNS, SIZES))       # 24 classes
    order = rng.permutation(len(combos))
    combos = [combos[i] for i in order]
    names = [f"{c}_{p}_{s}" for c, p, s in combos]
    texts = {n: f"a {c} {p} {s} bird. {FILLER}. it is {c} and {p}." for n, (c, p, s) in
             zip(names, combos)}
    feats, labels = [], []
    for k, combo in enumerate(combos):
        centre = sum(directions[w] for w in combo)
        feats.append(centre + noise * rng.normal(size=(per_class, dim)))
        labels += [k] * per_class
    feats = np.concatenate(feats).astype(np.float32)
    labels = np.asarray(labels)
    # conv maps: the same signal at every position of a small map, plus per-pixel noise
    maps = (feats[:, :, None, None]
            + noise * rng.normal(size=(len(feats), dim, map_hw, map_hw))).astype(np.float32)
    seen, unseen = names[:18], names[18:]
    return {"names": names, "texts": texts, "feats": feats, "maps": maps, "labels": labels,
            "seen": seen, "unseen": unseen, "directions": directions}


@pytest.fixture(scope="session")
def synthetic():
    return make_synthetic()


TINY_COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30),
                "yellow": (230, 220, 40), "black": (20, 20, 20), "white": (235, 235, 235)}


def make_tiny_cub(root, per_class: int = 4, size: int = 16, seed: int = 0):
    """A CUB-like folder: one class per colour, solid-colour JPEGs with noise, one article each."""
    import json

    from PIL import Image

    rng = np.random.default_rng(seed)
    base = root / "cub200-2010"
    ids = []
    for i, (word, rgb) in enumerate(TINY_COLOURS.items(), start=1):
        name = f"{i:03d}.{word.title()}_Bird"
        ids.append(i)
        (base / "images" / name).mkdir(parents=True)
        for j in range(per_class):
            px = np.clip(np.asarray(rgb) + rng.normal(0, 20, (size, size, 3)), 0, 255)
            Image.fromarray(px.astype(np.uint8)).save(base / "images" / name / f"{j}.jpg")
        (base / "wikipedia").mkdir(exist_ok=True)
        (base / "wikipedia" / f"{name}.txt").write_text(
            f"the {word} bird is a small songbird.\nits feathers are {word} all over.\n",
            encoding="utf-8")
    (base / "splits.json").write_text(json.dumps(
        {"hard": {"seen_class_ids": ids[:4], "unseen_class_ids": ids[4:]}}), encoding="utf-8")
    return base


@pytest.fixture
def tiny_cub(tmp_path):
    return make_tiny_cub(tmp_path)


def split_arrays(d):
    """Seen-class text and images for fitting, unseen-class text and images for testing."""
    enc = TfidfEncoder().fit({n: d["texts"][n] for n in d["seen"]})
    col = {n: i for i, n in enumerate(d["names"])}
    seen_ids, unseen_ids = [col[n] for n in d["seen"]], [col[n] for n in d["unseen"]]
    m_seen, m_unseen = np.isin(d["labels"], seen_ids), np.isin(d["labels"], unseen_ids)
    return {
        "enc": enc,
        "t_seen": enc.transform({n: d["texts"][n] for n in d["seen"]}),
        "t_unseen": enc.transform({n: d["texts"][n] for n in d["unseen"]}),
        "y_seen": np.asarray([seen_ids.index(c) for c in d["labels"][m_seen]]),
        "y_unseen": np.asarray([unseen_ids.index(c) for c in d["labels"][m_unseen]]),
        "f_seen": d["feats"][m_seen], "f_unseen": d["feats"][m_unseen],
        "m_seen": d["maps"][m_seen], "m_unseen": d["maps"][m_unseen],
    }


@pytest.fixture(scope="module")
def arrays(synthetic):
    return split_arrays(synthetic)


@pytest.fixture(scope="session")
def arrays(synthetic):
    return split_arrays(synthetic)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These tests run many tiny ops: on a shared 2-core machine, intra-op threads only contend
    (a 0.5 s fit took 15 s under load). Restored afterwards; library code never sets threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
