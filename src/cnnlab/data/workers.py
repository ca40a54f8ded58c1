"""Run a per-file function over a source's files in a process pool: bounded memory, progress bar.

The main process reads the payloads (archive members stream through it in archive order; folder
files are read by the workers themselves) and hands them out in chunks; at most a few chunks per
worker are in flight, so a large archive is never held in memory at once. Results come back in
submission order. Workers are forked on Linux (no re-import of torch per worker; PyTorch's
DataLoader does the same) and spawned elsewhere.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator

PARALLEL_MIN_FILES = 256      # below this, starting processes costs more than it saves
CHUNK = 32                    # files per task: amortises inter-process overhead on tiny JPEGs
INFLIGHT_PER_WORKER = 4


def default_workers(n_files: int) -> int:
    """Worker processes to use for `n_files`: 0 (in-process) for small jobs, else up to 8 CPUs."""
    if n_files < PARALLEL_MIN_FILES:
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(0, min(8, cpus)) if cpus > 1 else 0


def _call_chunk(fn, chunk):
    return [fn(task) for task in chunk]


def run_tasks(fn: Callable, tasks: Iterable, total: int, num_workers: int | None = None,
              progress: bool | None = None, desc: str = "") -> Iterator:
    """Yield fn(task) for every task, in order; `fn` must be a module-level function (picklable)."""
    from tqdm.auto import tqdm

    workers = default_workers(total) if num_workers is None else max(0, int(num_workers))
    # the pool is forked before the progress bar starts its monitor thread
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ctx.Pool(workers) if workers else None
    bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False,
               disable=None if progress is None else not progress)   # None: only on a terminal
    try:
        if pool is None:
            for task in tasks:
                yield fn(task)
                bar.update(1)
            return
        pending: deque = deque()
        chunk: list = []

        def drain(limit):
            while len(pending) > limit:
                results = pending.popleft().get()
                bar.update(len(results))
                yield from results

        for task in tasks:
            chunk.append(task)
            if len(chunk) == CHUNK:
                pending.append(pool.apply_async(_call_chunk, (fn, chunk)))
                chunk = []
                yield from drain(workers * INFLIGHT_PER_WORKER)
        if chunk:
            pending.append(pool.apply_async(_call_chunk, (fn, chunk)))
        yield from drain(0)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()      # also on early exit (strict mode, errors): no stray workers
            pool.join()
