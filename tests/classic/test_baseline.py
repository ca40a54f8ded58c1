"""cnnlab.classic.baseline: features + linear classifier on (a slice of) the embedded digits."""

import numpy as np
import pytest

from cnnlab.classic.baseline import extract_features, load_feature_file, run_baseline
from cnnlab.data.digits import load_digits
from cnnlab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def small_digits():
    xtr, ytr, xte, yte = load_digits(image_size=16)
    return xtr[:500], ytr[:500], xte[:150], yte[:150]


@pytest.mark.parametrize("features,classifier", [("hog", "logistic"), ("gist", "linear-svm"),
                                                 ("pixels", "linear-svm")])
def test_classic_features_classify_digits_well_above_chance(small_digits, features, classifier):
    r = run_baseline(*small_digits, features=features, classifier=classifier)
    assert r.accuracy > 0.85                            # chance is 0.10
    assert r.n_train == 500 and r.n_test == 150
    assert np.sum(r.confusion) == 150
    assert np.trace(r.confusion) == round(r.accuracy * 150)
    assert set(r.per_class_accuracy) == {str(c) for c in range(10)}
    assert r.as_dict()["features"] == features


def test_feature_sizes():
    x = np.random.default_rng(0).random((3, 1, 32, 32))
    assert extract_features(x, "pixels").shape == (3, 1024)
    assert extract_features(x, "hog").shape == (3, 7 * 7 * 4 * 9)      # 4x4-pixel cells
    assert extract_features(x, "gist").shape == (3, 512)
    colour = np.random.default_rng(1).random((2, 3, 16, 16))
    assert extract_features(colour, "gist").shape == (2, 3 * 512)
    assert extract_features(x[:, 0], "hog", pixels_per_cell=(8, 8)).shape == (3, 3 * 3 * 36)


def test_precomputed_features_and_feature_file(tmp_path):
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=5, size=(3, 8))
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(size=(120, 8))
    path = tmp_path / "feats.npz"
    np.savez(path, x_train=x[::2], y_train=y[::2], x_test=x[1::2], y_test=y[1::2])
    r = run_baseline(*load_feature_file(path), features="precomputed", classifier="logistic")
    assert r.accuracy == 1.0 and r.n_features == 8
    # labels carry no signal: accuracy falls to about chance
    shuffled = rng.permutation(y)
    r = run_baseline(x[::2], shuffled[::2], x[1::2], rng.permutation(y)[1::2],
                     features="precomputed")
    assert r.accuracy < 0.6


def test_errors(tmp_path):
    x = np.zeros((4, 3))
    with pytest.raises(DataError, match="differ in length"):
        run_baseline(x, [0, 1, 0], x, [0, 1, 0, 1], features="precomputed")
    with pytest.raises(DataError, match="single class"):
        run_baseline(x, [1, 1, 1, 1], x, [0, 1, 0, 1], features="precomputed")
    with pytest.raises(ConfigError):
        run_baseline(x, [0, 1, 0, 1], x, [0, 1, 0, 1], features="sift")
    with pytest.raises(ConfigError):
        run_baseline(x, [0, 1, 0, 1], x, [0, 1, 0, 1], features="precomputed", classifier="knn")
    np.savez(tmp_path / "partial.npz", x_train=x)
    with pytest.raises(DataError, match="missing"):
        load_feature_file(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_feature_file(tmp_path / "junk.npz")
