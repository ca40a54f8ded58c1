"""Side-by-side comparison: numbers agree with summary(), latency is measured, the chart is a PNG."""

import pytest
from torch import nn

from cnnlab.analyze.compare import (compare, comparison_dict, comparison_table, measure_latency,
                                    plot_comparison)
from cnnlab.analyze import summary
from cnnlab.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return compare(["lenet5", "resnet20"], repeats=2)


def test_numbers_agree_with_summary(small):
    lenet, resnet = small
    assert lenet.input_shape == (1, 32, 32) and resnet.input_shape == (3, 32, 32)
    ref = summary("resnet20", 32, device="meta")
    assert (resnet.params, resnet.macs, resnet.activation_bytes) == (
        ref.params, ref.macs, ref.activation_bytes)
    assert resnet.params == 269_722                  # He et al. 2016, table 6: 0.27M
    assert resnet.macs > lenet.macs > 0
    assert all(m.latency_ms > 0 and m.latency_runs == 2 for m in small)


def test_table_and_dict(small):
    text = comparison_table(small)
    assert "lenet5" in text and "resnet20" in text and "median of 2" in text
    d = comparison_dict(small)
    assert [m["name"] for m in d["models"]] == ["lenet5", "resnet20"]
    assert d["environment"]["threads"] >= 1


def test_chart_is_a_png(small, tmp_path):
    path = plot_comparison(small, tmp_path / "sub" / "chart.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_measure_latency_restores_mode_and_validates():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout()).train()
    assert measure_latency(model, (1, 8, 8), repeats=2) > 0
    assert model.training
    with pytest.raises(ConfigError):
        measure_latency(model, (1, 8, 8), repeats=0)


def test_compare_without_latency_and_with_no_names():
    (m,) = compare(["lenet5"], latency=False)
    assert m.latency_ms is None and m.latency_runs == 0
    with pytest.raises(ConfigError):
        compare([])
