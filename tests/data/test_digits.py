import numpy as np

from cnnlab.data.digits import CLASSES, load_digits


def test_digits_shapes_range_and_split():
    xtr, ytr, xte, yte = load_digits(image_size=32)
    assert xtr.shape[1:] == (1, 32, 32) and xte.shape[1:] == (1, 32, 32)
    assert len(xtr) + len(xte) == 1797
    assert abs(len(xte) / 1797 - 0.2) < 0.01
    assert xtr.dtype == np.float32 and 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert set(np.unique(yte)) == set(range(len(CLASSES)))


def test_digits_split_is_reproducible():
    a = load_digits(image_size=8, seed=3)
    b = load_digits(image_size=8, seed=3)
    assert np.array_equal(a[3], b[3]) and np.array_equal(a[2], b[2])
