"""A tiny real run (LeNet-5, one epoch on the embedded digits) and its report, built once."""

import pytest


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    import torch

    from cnnlab.train.config import TrainConfig
    from cnnlab.train.run import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(epochs=1, quiet=True, out_dir=str(out), name="digits", precision="32",
                      threads=1)
    return train(cfg).run_dir


@pytest.fixture(scope="session")
def report_path(run_dir, tmp_path_factory):
    from cnnlab.report import write_report

    return write_report(run_dir, tmp_path_factory.mktemp("report") / "report.html", n_examples=4)
