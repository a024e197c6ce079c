"""Runs on Dask: a LocalCluster on this machine, an existing cluster, or SLURM/PBS jobs (dask-jobqueue).

The client (``svbench run``) plans the grid and writes every result into the SQLite store as it
arrives; workers only evaluate. Units of one utterance are submitted together, up to ``MAX_BATCH``
per Dask task, so a worker reads and checks a reference once per task, not once per codec x bitrate,
and keeps every codec and metric model loaded between tasks (the engine's per-process caches). The
cap keeps tasks short enough to balance a large cluster (80 units of one utterance would make one
long task). At most ``2 x worker threads`` tasks are in flight, so the scheduler is never flooded
and memory stays flat on any dataset.

Faults: when a worker dies, Dask reruns its tasks on another worker. A task whose workers die
``allowed-failures + 1`` times ends in ``KilledWorker``; a batch that does is split into single units
so the healthy ones are still computed, and a single unit that does becomes an error row
(``on_lost``) naming the last worker's address, never an endless retry and never a lost run.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import time
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, WorkerPlugin, as_completed
from distributed.scheduler import KilledWorker

from svbench.executor import OnLost, single_threaded_worker

# Scheduler settings svbench relies on (set on the schedulers it starts; for a scheduler started by
# hand, export them: DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2 and ..._WORKER_SATURATION=1.0).
# allowed-failures: a task is retried after its worker died this many times, then it is KilledWorker.
# worker-saturation 1.0: a worker holds only the tasks it runs, so a death blames only those.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 2, "distributed.scheduler.worker-saturation": 1.0}
# Housekeeping that costs a worker ~4 % of its core and is only for the dashboard: the statistical profiler
# (every 10 ms), the event-loop watchdog tick (20 ms), the system monitor (500 ms). Measured idle on this
# 2-core machine: worker 0.79 -> 0.18 CPU-s per 20 s, client + scheduler 0.86 -> 0.28.
QUIET_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "2s"}
IN_FLIGHT_PER_THREAD = 2
MAX_BATCH = 8  # units per task: one codec at 8 bitrates of one utterance, in the usual grid order


class SvbenchWorker(WorkerPlugin):
    """On every worker, present and future: one thread per library, and errors that name the host."""

    name = "svbench"

    def setup(self, worker: Any) -> None:
        single_threaded_worker()
        from svbench import unit

        unit.WORKER_HOST = socket.gethostname()


class WorkerLost(Exception):
    def __init__(self, err: KilledWorker):
        last = getattr(err.last_worker, "address", err.last_worker)
        super().__init__(f"the worker evaluating this unit died on each of {err.allowed_failures + 1} tries "
                         f"(last on worker {last}), so the unit itself kills its worker "
                         "(a codec program crashing on this file?); see that worker's log")


def _run_batch(fn: Callable[[Any], Any], batch: list[Any]) -> list[Any]:
    return [fn(task) for task in batch]


class DaskExecutor:
    """``address``: join that scheduler; without one, start a LocalCluster of ``workers`` processes."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        import os

        self.address = address
        self.workers = workers or os.cpu_count() or 1

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Client]:
        if self.address:
            try:
                client = Client(self.address, timeout="30s")
            except (OSError, TimeoutError) as err:
                raise ValueError(f"cannot reach the Dask scheduler at {self.address}: {err}") from None
            with client:
                yield client
            return
        with dask.config.set({**SCHEDULER_CONFIG, **QUIET_CONFIG}), LocalCluster(
            n_workers=self.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            yield client

    def map_unordered(self, fn: Callable[[Any], Any], tasks: Iterable[Any], on_lost: OnLost | None = None,
                      group: Callable[[Any], Hashable] | None = None) -> Iterator[Any]:
        groups = (list(g) for _, g in itertools.groupby(tasks, group)) if group else ([t] for t in tasks)
        batches = (g[i : i + MAX_BATCH] for g in groups for i in range(0, len(g), MAX_BATCH))
        first = next(batches, None)
        if first is None:  # nothing to do: start no cluster
            return
        with self._connect() as client:
            client.register_plugin(SvbenchWorker())
            yield from _stream(client, fn, itertools.chain([first], batches), on_lost)


def _stream(client: Client, fn: Callable[[Any], Any], batches: Iterator[list[Any]],
            on_lost: OnLost | None) -> Iterator[Any]:
    running: dict[Future, list[Any]] = {}
    finished = as_completed()
    limit, checked = IN_FLIGHT_PER_THREAD, 0.0

    def submit(batch: list[Any]) -> None:
        future = client.submit(_run_batch, fn, batch, key=f"svbench-{uuid.uuid4().hex}")
        running[future] = batch
        finished.add(future)

    def collect(future: Future) -> Iterator[Any]:
        batch = running.pop(future)
        if future.status == "finished":
            results = future.result()
            future.release()
            yield from results
            return
        err = future.exception()
        future.release()
        if not isinstance(err, KilledWorker):
            raise err
        if len(batch) > 1:  # one of its units kills workers: find it, compute the others
            for task in batch:
                submit([task])
        elif on_lost is None:
            raise err
        else:
            yield on_lost(batch[0], WorkerLost(err))

    for batch in batches:
        submit(batch)
        if time.monotonic() - checked > 2:  # workers come and go (jobs start, end, die)
            limit = max(IN_FLIGHT_PER_THREAD, IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
            checked = time.monotonic()
        while len(running) >= limit:
            yield from collect(next(finished))
    while running:
        yield from collect(next(finished))
