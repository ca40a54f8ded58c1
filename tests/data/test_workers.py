import functools

import pytest

from cnnlab.data.workers import PARALLEL_MIN_FILES, default_workers, run_tasks


def square_plus(offset, x):
    return x * x + offset


def fail_on_seven(x):
    if x == 7:
        raise ValueError("seven")
    return x


@pytest.mark.parametrize("workers", [0, 2])
def test_results_come_back_in_order(workers):
    fn = functools.partial(square_plus, 1)
    out = list(run_tasks(fn, iter(range(150)), 150, num_workers=workers, progress=False))
    assert out == [x * x + 1 for x in range(150)]


def test_worker_errors_propagate():
    with pytest.raises(ValueError, match="seven"):
        list(run_tasks(fail_on_seven, range(100), 100, num_workers=2, progress=False))


def test_small_jobs_run_in_process():
    assert default_workers(PARALLEL_MIN_FILES - 1) == 0
    assert default_workers(10**6) >= 0
