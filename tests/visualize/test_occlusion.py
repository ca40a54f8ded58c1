"""Occlusion sensitivity (Zeiler & Fergus 2014, sec. 4.2)."""

import numpy as np
import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.visualize import occlusion


def test_decisive_patch_lowers_the_score_most(nets):
    model = nets.PatchNet(top=8, left=16, size=8)   # class 0 reads only rows 8..15, cols 16..23
    x = torch.rand(1, 1, 32, 32) + 0.5              # positive everywhere: occluding with 0 hurts
    occ = occlusion(model, x, target=0, patch=8, stride=4, batch_size=5)
    assert occ.scores.shape == (7, 7) and len(occ.boxes) == 49
    worst = int(occ.scores.argmin())
    assert occ.boxes[worst] == (8, 16, 16, 24)
    assert occ.scores.min() < occ.baseline
    assert occ.heatmap.shape == (32, 32) and occ.heatmap.max() == pytest.approx(1)
    assert occ.heatmap.min() >= 0
    # Pixels no occluder position over the decisive square touches have no evidence.
    assert np.all(occ.heatmap[:, :8] == 0) and np.all(occ.heatmap[24:] == 0)
    assert np.unravel_index(occ.heatmap.argmax(), occ.heatmap.shape)[0] in range(8, 16)


def test_positions_cover_the_edge_and_batches_agree(nets):
    model = nets.PatchNet(top=20, left=20, size=6)
    x = torch.rand(1, 1, 26, 26) + 0.5
    a = occlusion(model, x, 0, patch=6, stride=4, batch_size=1)
    b = occlusion(model, x, 0, patch=6, stride=4, batch_size=64)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    assert a.boxes[-1] == (20, 20, 26, 26)          # pinned to the edge: 26 - 6 = 20
    assert a.boxes[int(a.scores.argmin())] == (20, 20, 26, 26)


def test_bad_patch_raises(nets):
    model = nets.PatchNet()
    with pytest.raises(ConfigError, match="patch"):
        occlusion(model, torch.rand(1, 1, 32, 32), patch=40)
