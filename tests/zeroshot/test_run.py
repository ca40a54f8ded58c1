import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.errors import ConfigError, DataError
from cnnlab.zeroshot.models import ZeroShotConfig, predict_scores
from cnnlab.zeroshot.run import (ZeroShotRunConfig, evaluate_run, explain_run, load_run,
                                 predict_described, train_zeroshot)


def config(path, **kw):
    model = ZeroShotConfig(kind=kw.pop("kind", "fc"), epochs=5, hidden=16, embed_dim=8)
    return ZeroShotRunConfig(data=str(path), backbone="lenet5", image_size=32, model=model, **kw)


def test_train_writes_a_run_that_evaluates_and_predicts(tiny_cub, tmp_path):
    torch.manual_seed(0)
    record = train_zeroshot(config(tiny_cub.parent, kind="fc+conv"), tmp_path / "run")
    m = record["metrics"]["fc+conv"]
    assert set(record["metrics"]) == {"fc+conv", "baseline_ridge", "baseline_cca"}
    assert m["n_unseen_images"] == 8 and m["n_seen_images"] == 4     # 1 of 4 per seen class
    assert record["n_train_images"] == 12
    run = load_run(tmp_path / "run")
    again = evaluate_run(run)
    assert again["auc_unseen"] == pytest.approx(m["auc_unseen"], abs=1e-6)
    img = tiny_cub / "images" / "001.Red_Bird" / "0.jpg"
    p = predict_described(run, [img, img], {"x": "a red bird", "y": "a blue songbird"})
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1) and np.allclose(p[0], p[1])
    with pytest.raises(DataError, match="'z'"):
        predict_described(run, [img], {"x": "red", "z": "purple zebra"})
    written = explain_run(run, n_classes=2, k=3, out_dir=tmp_path / "png")
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == [
        "retrieval_00.png", "retrieval_01.png", "words_00.png", "words_01.png"]
    assert Image.open(written[-1]).size[0] > 100


def test_predict_reproduces_the_training_features(tiny_cub, tmp_path):
    """A random-init backbone is saved with the run: predict scores an image as evaluation did."""
    train_zeroshot(config(tiny_cub.parent), tmp_path / "run")
    torch.manual_seed(123)                    # a fresh random init must not leak into predict
    run = load_run(tmp_path / "run")
    assert (tmp_path / "run" / "backbone.safetensors").is_file()
    with np.load(tmp_path / "run" / "test.npz") as z:
        rel, feats = str(z["rels"][-1]), z["feats"][-1:]
    # two seen classes' articles: distinct vectors (the unseen colours are out of vocabulary)
    texts = {c: (tiny_cub / "wikipedia" / f"{c}.txt").read_text() for c in run.record["seen"][:2]}
    p = predict_described(run, [tiny_cub.parent / rel], texts)
    scores = predict_scores(run.net, run.encoder.transform(texts), feats)
    assert abs(scores[0, 0] - scores[0, 1]) > 1e-3                 # the check can fail
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(scores), 1).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_unseen_data_never_touches_the_fit(tiny_cub, tmp_path):
    """Split discipline: poisoning unseen-class images and articles leaves the fit unchanged."""
    cfg = config(tiny_cub.parent)
    torch.manual_seed(0)
    train_zeroshot(cfg, tmp_path / "a")
    for cls in ("005.Black_Bird", "006.White_Bird"):
        (tiny_cub / "wikipedia" / f"{cls}.txt").write_text("poison zebra giraffe red blue")
        for f in (tiny_cub / "images" / cls).iterdir():
            f.write_bytes((tiny_cub / "images" / "001.Red_Bird" / "0.jpg").read_bytes())
    torch.manual_seed(0)
    train_zeroshot(cfg, tmp_path / "b")
    enc_a, enc_b = (json.loads((tmp_path / r / "encoder.json").read_text()) for r in "ab")
    assert enc_a == enc_b and "zebra" not in enc_a["vocabulary"]
    sa, sb = (torch.load(tmp_path / r / "model.pt", weights_only=True)["state_dict"] for r in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # ... while the evaluation did see the change
    fa, fb = (np.load(tmp_path / r / "test.npz")["feats"] for r in "ab")
    ta, tb = (np.load(tmp_path / r / "test.npz")["text"] for r in "ab")
    assert not np.array_equal(fa, fb) and not np.array_equal(ta, tb)


def test_bad_config(tiny_cub):
    with pytest.raises(ConfigError, match="baseline"):
        train_zeroshot(config(tiny_cub.parent, baselines=("svm",)))
    with pytest.raises(ConfigError, match="seen_test_fraction"):
        config(tiny_cub.parent, seen_test_fraction=0)
    with pytest.raises(ConfigError, match="not a zero-shot run"):
        load_run(tiny_cub)


def test_finetuning_sees_only_seen_training_images(tiny_cub, monkeypatch):
    """Split discipline of --finetune-seen: the backbone never trains on an unseen-class image
    nor on a held-out seen image (the seen AUC is measured on those)."""
    import cnnlab.zeroshot.features as features
    from cnnlab.zeroshot.run import prepare

    given = {}
    original = features.finetune_backbone

    def spy(data, rels, labels, classes, *args, **kw):
        given.update(rels=list(rels), labels=list(labels), classes=list(classes))
        return original(data, rels, labels, classes, *args, **kw)

    monkeypatch.setattr(features, "finetune_backbone", spy)
    prep = prepare(config(tiny_cub.parent, finetune_epochs=1))
    assert given["rels"] == prep.finetune_rels and len(given["rels"]) == 12
    assert given["classes"] == prep.seen
    folders = {r.split("/")[-2] for r in given["rels"]}
    assert folders == set(prep.seen) and not folders & set(prep.unseen)
    assert not set(given["rels"]) & set(prep.test["rels"].tolist())
    # each image keeps its own class label
    assert [prep.seen[y] for y in given["labels"]] == [r.split("/")[-2] for r in given["rels"]]
    assert prep.backbone_record["finetuned_on_seen"]["images"] == 12


def test_finetuned_backbone_is_saved_and_reusable_as_weights(tiny_cub, tmp_path):
    """The fine-tuned backbone goes into the run as a cnnlab checkpoint: predict reproduces the
    features, and --weights accepts it (a cnnlab weights file names its model and size)."""
    torch.manual_seed(0)
    record = train_zeroshot(config(tiny_cub.parent, finetune_epochs=2), tmp_path / "run")
    assert record["backbone"]["finetuned_on_seen"]["epochs"] == 2
    assert record["backbone"]["weights"] == "random init"
    saved = tmp_path / "run" / "backbone.safetensors"
    cfg = ZeroShotRunConfig(data=str(tiny_cub.parent), backbone="lenet5", weights=str(saved),
                            image_size=None, model=config(tiny_cub.parent).model)
    from cnnlab.zeroshot.run import prepare

    again = prepare(cfg)
    assert again.image_size == 32                        # from the checkpoint's header
    with np.load(tmp_path / "run" / "test.npz") as z:
        np.testing.assert_allclose(again.test["feats"], z["feats"], rtol=1e-4, atol=1e-5)
        rel, feats = str(z["rels"][0]), z["feats"][:1]
    # and features differ from the random init's: the fine-tuning changed the backbone
    torch.manual_seed(0)
    plain = prepare(config(tiny_cub.parent))
    assert not np.allclose(plain.test["feats"], again.test["feats"], atol=1e-3)
    run = load_run(tmp_path / "run")
    texts = {c: (tiny_cub / "wikipedia" / f"{c}.txt").read_text() for c in run.record["seen"][:2]}
    p = predict_described(run, [tiny_cub.parent / rel], texts)
    scores = predict_scores(run.net, run.encoder.transform(texts), feats)
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(scores), 1).numpy(),
                               rtol=1e-4, atol=1e-5)


def test_negative_finetune_epochs_is_an_error(tiny_cub):
    with pytest.raises(ConfigError, match="finetune_epochs"):
        config(tiny_cub.parent, finetune_epochs=-1)


def test_mirror_views_double_the_training_rows_and_average_the_test_rows():
    from cnnlab.zeroshot.run import mean_of_views, training_rows

    rng = np.random.default_rng(0)
    f0, f1 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    m0 = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    m1 = m0[..., ::-1] + 1.0            # the mirror image's map: flipped, plus a change
    mask, labels = np.array([True, False, True, True]), np.array([5, 6, 7, 8])
    tr = training_rows([(f0, m0), (f1, m1)], mask, labels)
    assert tr["images"] == 3 and list(tr["labels"]) == [5, 7, 8, 5, 7, 8]
    np.testing.assert_array_equal(tr["feats"], np.concatenate([f0[mask], f1[mask]]))
    np.testing.assert_array_equal(tr["maps"][3:], m1[mask])      # the mirror view as it is
    feats, maps = mean_of_views([(f0, m0), (f1, m1)])
    np.testing.assert_allclose(feats, (f0 + f1) / 2)
    np.testing.assert_allclose(maps, m0 + 0.5, rtol=1e-5)        # flipped back, then averaged
    one = mean_of_views([(f0, None)])
    assert one[1] is None and np.array_equal(one[0], f0)


def test_without_mirror_views_each_image_is_one_row(tiny_cub):
    from cnnlab.zeroshot.run import prepare

    with_mirror = prepare(config(tiny_cub.parent))
    plain = prepare(config(tiny_cub.parent, mirror_views=False))
    assert plain.train["images"] == with_mirror.train["images"] == len(plain.train["labels"])
    assert len(with_mirror.train["labels"]) == 2 * len(plain.train["labels"])
    assert with_mirror.test["feats"].shape == plain.test["feats"].shape


def test_validation_split_holds_out_seen_classes_and_reads_no_unseen_one(tiny_cub, tmp_path):
    from cnnlab.zeroshot.data import read_cub

    data = read_cub(tiny_cub.parent)
    seen, unseen = data.split("hard")
    spec = data.validation_split("hard", 1)
    v_seen, v_unseen = data.split(spec)
    assert v_seen + v_unseen == seen and not set(v_seen + v_unseen) & set(unseen)
    assert v_unseen == seen[-1:]
    with pytest.raises(ConfigError, match="validation split"):
        data.validation_split("hard", len(seen))
    # poisoning the real unseen classes changes nothing in a validation run
    record = train_zeroshot(config(tiny_cub.parent, validate=1), tmp_path / "a")
    assert record["unseen"] == v_unseen and record["seen"] == v_seen
    for cls in unseen:
        for f in (tiny_cub / "images" / cls).iterdir():
            f.write_bytes(b"not an image")
    again = train_zeroshot(config(tiny_cub.parent, validate=1), tmp_path / "b")
    same = [json.dumps(r["metrics"], sort_keys=True) for r in (record, again)]   # NaN-safe
    assert same[0] == same[1] and not again["skipped"]
