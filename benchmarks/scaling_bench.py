"""Scaling of `svbench run` over workers, Dask against in-process and the process pool, worker memory,
and the SQLite writer's rate (docs/scaling.md uses these figures).

    .venv/bin/python benchmarks/scaling_bench.py [N_CLIPS] [--metrics paper]

Scores the first N LibriSpeech clips of ../shared (default 16) through codec2 at 3.2k with the paper's
eight metrics, each case in a fresh workspace (cold decoded cache), wall time including the start of
the cluster or pool and the loading of every model:

  in-process (--workers 1) | Dask LocalCluster, 1 worker | Dask, 2 workers | process pool, 2 workers

and prints audio-seconds scored per wall-second, the CPU seconds per audio-second of the metrics, the
peak RSS of each Dask worker (every paper metric's model loaded), then a short run (4 clips, pesq and
stoi) where the fixed start-up cost shows, and the store's writer rate (units and score rows per
second, one transaction per unit as in a run). Times are wall-clock: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask
import pandas as pd
from distributed import Client, LocalCluster

from svbench import engine
from svbench.cli import _metric_names
from svbench.dask_executor import SCHEDULER_CONFIG, DaskExecutor
from svbench.executor import LocalExecutor, SerialExecutor
from svbench.store import Store, UnitResult

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech"


def manifest(folder: Path, n: int) -> tuple[Path, float]:
    table = pd.read_csv(SPEECH / "manifest.csv", dtype={"id": str}).head(n)
    table["path"] = [str(SPEECH / p) for p in table.path]
    out = folder / f"m{n}.csv"
    table.to_csv(out, index=False)
    return out, float(table.duration_s.sum())


def timed(spec: engine.RunSpec, kind: str, workers: int) -> dict[str, Any]:
    """One run; for Dask, the cluster is started inside the timing and asked for its peak RSS at the end."""
    t0 = time.perf_counter()
    rss: list[float] = []
    if kind == "dask":
        with dask.config.set(SCHEDULER_CONFIG), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster, Client(cluster) as client:
            outcome = engine.execute(spec, DaskExecutor(cluster.scheduler_address))
            wall = time.perf_counter() - t0
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
            rss = [kib / 1024 for kib in peaks.values()]
    else:
        executor = SerialExecutor() if kind == "serial" else LocalExecutor(workers)
        outcome = engine.execute(spec, executor)
        wall = time.perf_counter() - t0
        if kind == "serial":
            rss = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
    store = Store(outcome.store_path)
    try:
        units, scores = store.frame("units", outcome.run_id), store.frame("scores", outcome.run_id)
    finally:
        store.close()
    assert (units.status == "ok").all(), units[units.status != "ok"].error.tolist()
    per_metric = scores.drop_duplicates(["utt_id", "metric"])  # a metric's time is repeated on each of its keys
    return {"wall": wall, "audio": units.duration_s.sum(), "units": len(units), "rss": rss,
            "cpu_per_audio_s": per_metric.cpu_s.sum() / units.duration_s.sum(),
            "metric_s_per_audio_s": units.t_metrics_s.sum() / units.duration_s.sum(), "scores": scores}


def writer_rate(folder: Path, template: pd.DataFrame, n: int = 2000) -> tuple[float, float]:
    """Units (each with the paper's score rows) per second into a fresh store, one transaction per unit."""
    rows = [(r.metric, r.key, r.value, r.reason, r.t_s, r.cpu_s) for r in template.itertuples()]
    store = Store(folder / "writer.sqlite")
    store.open_run("bench", {}, {})
    base = UnitResult("u", "codec2", "3.2k", 3200, duration_s=10.0, scores=rows)
    t0 = time.perf_counter()
    for i in range(n):
        store.add_unit("bench", replace(base, utt_id=f"u{i}"))
    wall = time.perf_counter() - t0
    store.close()
    return n / wall, n * len(rows) / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=16)
    parser.add_argument("--metrics", default="paper")
    args = parser.parse_args()
    metrics = _metric_names(args.metrics)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        m, audio = manifest(tmp, args.n)
        print(f"{args.n} clips, {audio:.0f} s of audio; codec2 3.2k; metrics {','.join(metrics)}")
        print(f"{'case':<32} {'wall s':>7} {'audio s / wall s':>17} {'x 1 worker':>10}  peak RSS per worker")
        base: dict[str, Any] = {}
        results = {}
        cases = [("in-process (--workers 1)", "serial", 1), ("Dask LocalCluster, 1 worker", "dask", 1),
                 ("Dask LocalCluster, 2 workers", "dask", 2), ("process pool, 2 workers", "pool", 2)]
        for label, kind, workers in cases:
            spec = engine.RunSpec(str(m), ("codec2",), ("3.2k",), metrics, workspace=str(tmp / f"{kind}{workers}"))
            r = results[label] = timed(spec, kind, workers)
            base = base or r
            rss = ", ".join(f"{x:.0f} MB" for x in r["rss"]) or "-"
            speed, ratio = r["audio"] / r["wall"], (r["audio"] / r["wall"]) / (base["audio"] / base["wall"])
            print(f"{label:<32} {r['wall']:>7.1f} {speed:>17.2f} {ratio:>10.2f}  {rss}")
        first = results["in-process (--workers 1)"]
        for label, r in results.items():
            same = r["scores"].set_index(["utt_id", "key"]).value.sort_index()
            assert same.equals(first["scores"].set_index(["utt_id", "key"]).value.sort_index()), label
        print("values identical in every case: yes")
        print(f"metrics: {first['cpu_per_audio_s']:.3f} CPU-s and {first['metric_s_per_audio_s']:.3f} wall-s "
              "per audio-second (in-process)")

        m4, audio4 = manifest(tmp, 4)
        print(f"\nshort run: 4 clips ({audio4:.0f} s), pesq,stoi, codec2 3.2k")
        for label, kind in [("process pool, 2 workers", "pool"), ("Dask LocalCluster, 2 workers", "dask")]:
            spec = engine.RunSpec(str(m4), ("codec2",), ("3.2k",), ("pesq", "stoi"), workspace=str(tmp / f"s{kind}"))
            print(f"{label:<32} {timed(spec, kind, 2)['wall']:>7.1f} s")

        units_s, rows_s = writer_rate(tmp, first["scores"][first["scores"].utt_id == first["scores"].utt_id.iloc[0]])
        print(f"\nSQLite writer: {units_s:.0f} units/s = {rows_s:.0f} score rows/s "
              "(WAL, synchronous=FULL, one transaction per unit)")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":  # the Dask workers are spawned processes: they must not run this again
    main()
