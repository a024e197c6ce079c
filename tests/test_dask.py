"""svbench on a real multi-process Dask cluster over TCP on loopback: a `dask scheduler` and `dask worker`
processes (one thread each), a worker killed mid-run, a unit that kills its worker every time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from svbench import engine
from svbench.dask_cluster import env_name
from svbench.dask_executor import SCHEDULER_CONFIG
from svbench.executor import SerialExecutor
from svbench.store import Store

SVBENCH = [sys.executable, "-m", "svbench"]
DASK = str(Path(sys.executable).with_name("dask"))  # the `dask` command of this environment


class LoopbackCluster:
    """A scheduler and workers as separate process groups; every process is killed on exit, even on failure."""

    def __init__(self, folder: Path, config: dict[str, object]):
        folder.mkdir()
        self.folder, self.procs, self.workers = folder, [], []
        self.file = folder / "scheduler.json"
        env = {**os.environ, **{env_name(k): str(v) for k, v in config.items()}}  # as docs/scaling.md says
        self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(self.file)], env)

    def _start(self, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.folder / f"proc{len(self.procs)}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.procs.append(proc)
        return proc

    def add_worker(self) -> subprocess.Popen:
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.1)
        worker = self._start([DASK, "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                              "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(self.folder)])
        self.workers.append(worker)
        return worker

    @property
    def address(self) -> str:
        return json.loads(self.file.read_text())["address"]

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout="60s") as client:
            client.wait_for_workers(n, timeout=90)

    def workers_connected(self) -> int:
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout="30s") as client:
            return len(client.scheduler_info()["workers"])

    def kill_a_busy_worker(self) -> None:
        """SIGKILL a worker that is evaluating a task now (its nanny too: no restart)."""
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout="30s") as client:
            busy = [addr for addr, keys in client.processing().items() if keys]
            assert busy, "no worker is evaluating anything"
            nanny = client.run(os.getppid, workers=busy[:1])[busy[0]]  # a worker process is its nanny's child
        self.kill(next(proc for proc in self.workers if proc.pid == nanny))

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's nanny and its worker process
        proc.wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.kill(proc)


@pytest.fixture
def loopback(tmp_path) -> Iterator[Callable[..., LoopbackCluster]]:
    """start(n_workers, scheduler config) -> a running cluster; all its processes are killed at teardown."""
    started: list[LoopbackCluster] = []

    def start(n_workers: int, config: dict[str, object] = SCHEDULER_CONFIG) -> LoopbackCluster:
        started.append(LoopbackCluster(tmp_path / f"dask{len(started)}", config))
        for _ in range(n_workers):
            started[-1].add_worker()
        started[-1].wait_for_workers(n_workers)
        return started[-1]

    try:
        yield start
    finally:
        for c in started:
            c.close()


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(str(db), timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def frames(outcome_store: Path, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = Store(outcome_store)
    try:
        return store.frame("units", run_id), store.frame("scores", run_id)
    finally:
        store.close()


def test_a_run_on_a_loopback_cluster_loses_a_worker_and_stores_every_unit_once_with_local_values(
        loopback, librispeech_manifest, tmp_path):
    cluster = loopback(2)
    manifest = librispeech_manifest(4, max_s=4.0)
    codecs, bitrates, metrics = ("opus", "codec2"), ("1.2k", "3.2k"), ("pesq", "stoi")
    ws = tmp_path / "ws"
    run = subprocess.Popen([*SVBENCH, "run", "--codec", ",".join(codecs), "--bitrate", ",".join(bitrates),
                            "--dataset", str(manifest), "--metrics", ",".join(metrics), "--workspace", str(ws),
                            "--scheduler", cluster.address, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 90
        while stored(ws / "svbench.sqlite") == 0 and time.time() < deadline and run.poll() is None:
            time.sleep(0.05)
        at_kill = stored(ws / "svbench.sqlite")
        cluster.kill_a_busy_worker()  # its task must be rerun on the other worker
        out, err = run.communicate(timeout=120)
    finally:
        LoopbackCluster.kill(run)
    assert run.returncode == 0, err.decode()
    report = json.loads(out)
    total = 4 * 4  # 4 clips x (opus, codec2) x (1.2k, 3.2k): every pair is valid
    assert 0 < at_kill < total, "the kill must land mid-run"
    assert cluster.workers_connected() == 1
    assert report["computed"] == total
    units, scores = frames(Path(report["store"]), report["run_id"])
    assert len(units) == total and not units.duplicated(["utt_id", "codec", "bitrate"]).any()
    assert (units.status == "ok").all()
    assert len(list((ws / "cache").rglob("*.npz"))) == total  # the workers filled the decoded cache

    # the same run in this process, one unit after another
    local = engine.execute(engine.RunSpec(str(manifest), codecs, bitrates, metrics, workspace=str(tmp_path / "local")),
                           SerialExecutor())
    local_units, local_scores = frames(local.store_path, local.run_id)
    key = ["utt_id", "codec", "bitrate", "key"]
    ours = scores.set_index(key).value.sort_index()
    theirs = local_scores.set_index(key).value.sort_index()
    assert len(ours) == 2 * total and ours.index.equals(theirs.index)
    assert (ours == theirs).all(), "values differ between the Dask cluster and the in-process run"
    cols = ["utt_id", "codec", "bitrate", "measured_bps", "delay_ms", "compared_s", "eval_sr"]
    pd.testing.assert_frame_equal(units[cols].sort_values(cols[:3]).reset_index(drop=True),
                                  local_units[cols].sort_values(cols[:3]).reset_index(drop=True))


KILLER = """\
import os, shutil, sys
mode, source, target = sys.argv[1:4]
if mode == "encode" and os.path.getsize(source) == int(sys.argv[4]):
    os.kill(os.getppid(), 9)  # the Dask worker process that runs this codec program
shutil.copyfile(source, target)
"""


def test_a_unit_that_kills_its_worker_every_time_becomes_one_error_row(loopback, librispeech_manifest, tmp_path):
    """A codec program that kills its worker on one file (as a segfaulting codec would) on every try."""
    # one retry instead of svbench's two: each death costs a worker restart (seconds); the bound is the same code
    config = {**SCHEDULER_CONFIG, "distributed.scheduler.allowed-failures": 1}
    cluster = loopback(2, config)
    manifest = librispeech_manifest(3, max_s=3.0)
    table = pd.read_csv(manifest, dtype={"id": str})
    target = table.iloc[1]
    frames_16k = sf.info(target.path).frames  # LibriSpeech is 16 kHz: the card's rate, so no resampling
    missing = pd.DataFrame([{"id": "not-on-workers", "path": str(tmp_path / "elsewhere" / "x.flac")}])
    pd.concat([table[["id", "path"]], missing]).to_csv(manifest, index=False)
    (tmp_path / "killer.py").write_text(KILLER)
    (tmp_path / "codecs").mkdir()
    (tmp_path / "codecs" / "killer.toml").write_text(
        'name = "killer"\nadapter = "command"\nsample_rate = 16000\n[bitrates]\nlist = ["6k"]\n[params]\n'
        'audio_format = "raw"\n'
        f'encode = ["{sys.executable}", "{tmp_path / "killer.py"}", "encode", "{{input}}", "{{bitstream}}", '
        f'"{2 * frames_16k}"]\n'
        f'decode = ["{sys.executable}", "{tmp_path / "killer.py"}", "decode", "{{bitstream}}", "{{output}}"]\n')
    done = subprocess.run([*SVBENCH, "run", "--codec", "opus,killer", "--bitrate", "6k", "--dataset", str(manifest),
                           "--metrics", "stoi", "--workspace", str(tmp_path / "ws"), "--json"],
                          cwd=tmp_path, env={**os.environ, "SVBENCH_SCHEDULER": cluster.address},
                          capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 1, done.stderr  # 1: some units failed (README: exit codes)
    report = json.loads(done.stdout)
    units, _ = frames(Path(report["store"]), report["run_id"])
    assert len(units) == 8 and not units.duplicated(["utt_id", "codec", "bitrate"]).any()
    by = units.set_index(["utt_id", "codec"])
    lost = by.loc[(target.id, "killer")]
    assert lost.status == "error" and lost.stage == "worker"
    tries = config["distributed.scheduler.allowed-failures"] + 1  # Dask gives up after this many deaths
    assert f"died on each of {tries} tries" in lost.error and "tcp://127.0.0.1:" in lost.error
    for codec in ("opus", "killer"):  # a file the workers cannot see: the error names the worker's host
        row = by.loc[("not-on-workers", codec)]
        assert row.stage == "reference" and "file not found" in row.error
        assert f"(on worker host {socket.gethostname()})" in row.error
    others = units[(units.utt_id != "not-on-workers") & ((units.utt_id != target.id) | (units.codec != "killer"))]
    assert len(others) == 5 and (others.status == "ok").all()  # the target's opus unit too
    cluster.wait_for_workers(2)  # the nannies restarted the killed workers


def test_cluster_slurm_dry_run_prints_a_job_of_single_threaded_workers():
    done = subprocess.run([*SVBENCH, "cluster", "slurm", "--jobs", "100", "--cores", "32", "--memory", "128GB",
                           "--walltime", "02:00:00", "--queue", "cpu", "--dry-run"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    # dask-jobqueue's SLURM job: one task with all the job's cores, one worker per core of one thread
    assert "#SBATCH --cpus-per-task=32" in script and "#SBATCH -p cpu" in script and "#SBATCH -t 02:00:00" in script
    assert "--nthreads 1" in script and "--nworkers 32" in script
    assert "--lifetime 115m" in script  # retire 5 minutes before the walltime, handing tasks back


def _where(task: tuple[int, int]) -> tuple[tuple[int, int], str]:
    from distributed import get_worker

    return task, get_worker().get_current_task()  # the Dask task (key) that evaluated this unit


def test_the_dask_executor_pulls_units_lazily_and_keeps_an_utterance_in_one_task():
    """Dask's in-process (threaded) cluster: the same scheduler and executor code, started in a second."""
    from distributed import LocalCluster

    from svbench.dask_executor import IN_FLIGHT_PER_THREAD, MAX_BATCH, DaskExecutor

    pulled = 0

    def units():  # 30 "utterances" of 20 units each, consecutive as the engine orders them
        nonlocal pulled
        for i in range(600):
            pulled += 1
            yield (i // 20, i)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        seen, ahead, tasks = 0, 0, {}
        for unit, key in DaskExecutor(cluster.scheduler_address).map_unordered(_where, units(), group=lambda u: u[0]):
            seen += 1
            ahead = max(ahead, pulled - seen)
            tasks.setdefault(key, []).append(unit)
    assert seen == 600 and sorted(u for us in tasks.values() for u in us) == [(i // 20, i) for i in range(600)]
    assert all(len({u[0] for u in us}) == 1 and len(us) <= MAX_BATCH for us in tasks.values())
    assert len(tasks) == 30 * -(-20 // MAX_BATCH)  # each utterance in as few tasks as the cap allows
    # never more than 2 tasks per worker thread in flight, plus the utterance being cut into tasks (read whole)
    # and the one unit grouping reads ahead: bounded by the cluster's size, not the dataset's
    assert ahead <= IN_FLIGHT_PER_THREAD * 2 * MAX_BATCH + 20 + 1


def _blas_threads(_task: object) -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info()]


def test_the_in_process_executor_computes_with_one_thread_per_library_as_workers_do():
    """A multi-threaded BLAS sums in another order (STOI moved by 1e-16 on a LibriSpeech clip with 2 threads),
    so --workers 1 must use the workers' single thread to give their values; the caller's pools come back."""
    from threadpoolctl import threadpool_info

    from svbench.executor import SerialExecutor

    before = [pool["num_threads"] for pool in threadpool_info()]
    inside = list(SerialExecutor().map_unordered(_blas_threads, [0, 1]))
    assert inside == [[1] * len(before)] * 2
    assert [pool["num_threads"] for pool in threadpool_info()] == before
