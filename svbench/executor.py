"""One small interface for running units of work; the default uses every local core.

An executor takes a function and an iterable of picklable tasks and yields results as they finish,
in any order. It keeps at most ``2 x workers`` tasks in flight, so memory stays bounded on any dataset.

Two optional hooks: ``group(task)`` names the tasks that should run together on one worker (they
come consecutively: the engine groups the units of one utterance so its reference is read once);
``on_lost(task, error)`` turns a task that killed its worker on every try into a result (an error
row) instead of ending the run. Executors that cannot lose a worker without losing the run (this
process, a process pool) may ignore both.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from svbench import settings

T = TypeVar("T")
R = TypeVar("R")
OnLost = Callable[[T, BaseException], R]


class Executor(Protocol):
    workers: int

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T], on_lost: OnLost | None = None,
                      group: Callable[[T], Hashable] | None = None) -> Iterator[R]: ...


class SerialExecutor:
    """In this process, with the workers' one thread per library (a multi-threaded BLAS sums in another
    order: STOI moved by 1e-16 on a LibriSpeech clip), restored afterwards; for one core, debugging, tests."""

    workers = 1

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T], on_lost: OnLost | None = None,
                      group: Callable[[T], Hashable] | None = None) -> Iterator[R]:
        with one_thread():
            for task in tasks:
                yield fn(task)


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """single_threaded_worker() for the duration, then the previous settings again."""
    saved = {var: os.environ.get(var) for var in THREAD_VARS}
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(1)  # restores the pools' sizes on exit
    try:
        with limits:
            single_threaded_worker()
            yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)


def single_threaded_worker() -> None:
    """Parallelism comes from the worker processes; a library that also starts a thread per core
    would oversubscribe the machine. BLAS pools already started are limited through threadpoolctl."""
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # threadpoolctl comes with scikit-learn (librosa); without it the variables suffice
        pass
    torch = sys.modules.get("torch")  # only if already loaded: importing it costs seconds per worker
    if torch is not None:
        torch.set_num_threads(1)


def _pool_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    single_threaded_worker()


class LocalExecutor:
    """A pool of worker processes on this machine."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, fn: Callable[[T], R], tasks: Iterable[T], on_lost: OnLost | None = None,
                      group: Callable[[T], Hashable] | None = None) -> Iterator[R]:
        pending: set[Future[R]] = set()
        source = iter(tasks)
        pool = ProcessPoolExecutor(self.workers, initializer=_pool_worker)
        try:
            for task in source:
                pending.add(pool.submit(fn, task))
                if len(pending) >= 2 * self.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in done)
        except BaseException:  # Ctrl-C or a failure: stop now, leave no worker behind
            workers = list(getattr(pool, "_processes", {}).values())  # the pool has no public terminate
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.join(5)
            raise
        pool.shutdown(wait=True)


def make_executor(workers: int | None, kind: str | None = None, scheduler: str | None = None) -> Executor:
    """``local``: this process for one worker, else a process pool; ``dask``: a Dask LocalCluster of
    ``workers`` processes. A scheduler address (tcp://HOST:PORT, or $SVBENCH_SCHEDULER unless the
    kind is ``local``) joins that Dask cluster instead."""
    if kind == "local" and scheduler:
        raise ValueError("--scheduler joins a Dask cluster; it cannot be combined with --executor local")
    if kind != "local":
        scheduler = scheduler or settings.scheduler()
    if scheduler or kind == "dask":
        from svbench.dask_executor import DaskExecutor

        return DaskExecutor(scheduler, workers)
    if workers == 1:
        return SerialExecutor()
    return LocalExecutor(workers)
