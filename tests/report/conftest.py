"""A tiny real run (LeNet-5, one epoch on the embedded digits) and its report, built once."""

import pytest


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    import torch

    from toys import digits_run

    torch.set_num_threads(1)
    return digits_run(tmp_path_factory.mktemp("runs"), name="digits", threads=1)


@pytest.fixture(scope="session")
def report_path(run_dir, tmp_path_factory):
    from cnnlab.report import write_report

    return write_report(run_dir, tmp_path_factory.mktemp("report") / "report.html", n_examples=4)
