"""One small interface for running units of work; the default uses every local core.

An executor takes a function and an iterable of picklable tasks and yields results as they finish,
in any order. It keeps at most ``2 x workers`` tasks in flight, so memory stays bounded on any dataset.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]: ...


class SerialExecutor:
    """In this process; for one core, debugging and tests."""

    workers = 1

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        for task in tasks:
            yield fn(task)


def _single_threaded_worker() -> None:
    # Parallelism comes from the worker processes; a library that also starts a thread per core
    # would oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    torch = sys.modules.get("torch")  # only if already loaded: importing it costs seconds per worker
    if torch is not None:
        torch.set_num_threads(1)


class LocalExecutor:
    """A pool of worker processes on this machine."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[R]:
        pending: set[Future[R]] = set()
        source = iter(tasks)
        with ProcessPoolExecutor(self.workers, initializer=_single_threaded_worker) as pool:
            for task in source:
                pending.add(pool.submit(fn, task))
                if len(pending) >= 2 * self.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)


def make_executor(workers: int | None) -> Executor:
    if workers == 1:
        return SerialExecutor()
    return LocalExecutor(workers)
