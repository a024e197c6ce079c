"""Scaling of `svbench run` over workers, Dask against in-process and the process pool, worker memory,
and the SQLite writer's rate (docs/scaling.md uses these figures).

    .venv/bin/python benchmarks/scaling_bench.py [N_CLIPS] [--metrics paper]

Scores the first N LibriSpeech clips of ../shared (default 16) through codec2 at 3.2k with the paper's
eight metrics. Each case is a real `svbench run --json` in its own process and a fresh workspace (cold
decoded cache), so its wall time includes starting the pool or cluster, importing and loading every
model in every worker:

  --workers 1 (in-process) | --executor dask --workers 1 | --executor dask --workers 2 | --workers 2 (pool)

It prints audio-seconds scored per wall-second, the CPU seconds of the case (the run and all its
workers: other jobs on the machine inflate wall time, hardly CPU time), the load average, the peak RSS
of the largest process of the case (a worker holding every paper metric's model), whether every value
equals the in-process run's, the metrics' CPU seconds per audio-second; then a short run (4 clips, pesq
and stoi) where the fixed start-up cost shows, and the store's writer rate (units and score rows per
second: one transaction per unit as in a run, and two faster alternatives). Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from svbench.cli import _metric_names
from svbench.store import UNIT_COLUMNS, Store, UnitResult

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech"
# runs a command and prints its descendants' CPU seconds and largest peak RSS (KiB), all of them waited for
MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "r = resource.getrusage(resource.RUSAGE_CHILDREN); sys.stderr.write(done.stderr); "
           "print(r.ru_utime + r.ru_stime, r.ru_maxrss, done.returncode); print(done.stdout)")


def manifest(folder: Path, n: int) -> tuple[Path, float]:
    table = pd.read_csv(SPEECH / "manifest.csv", dtype={"id": str}).head(n)
    table["path"] = [str(SPEECH / p) for p in table.path]
    out = folder / f"m{n}.csv"
    table.to_csv(out, index=False)
    return out, float(table.duration_s.sum())


def timed(folder: Path, dataset: Path, metrics: tuple[str, ...], workers: int, executor: str) -> dict[str, Any]:
    """One `svbench run` in its own process; its CPU time and peak RSS include every worker's."""
    ws = folder / f"ws-{executor}-{workers}-{len(metrics)}-{dataset.stem}"
    cmd = [sys.executable, "-m", "svbench", "run", "--codec", "codec2", "--bitrate", "3.2k", "--dataset", str(dataset),
           "--metrics", ",".join(metrics), "--workspace", str(ws), "--workers", str(workers),
           "--executor", executor, "--json", "--quiet"]
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    first, _, out = done.stdout.partition("\n")
    cpu, rss_kib, rc = first.split()
    assert rc == "0", done.stderr
    report = json.loads(out)
    store = Store(Path(report["store"]))
    try:
        units, scores = store.frame("units", report["run_id"]), store.frame("scores", report["run_id"])
    finally:
        store.close()
    assert (units.status == "ok").all(), units[units.status != "ok"].error.tolist()
    per_metric = scores.drop_duplicates(["utt_id", "metric"])  # a metric's time is repeated on each of its keys
    return {"wall": wall, "cpu": float(cpu), "rss": int(rss_kib) / 1024, "load": (load0 + os.getloadavg()[0]) / 2,
            "audio": units.duration_s.sum(), "cpu_per_audio_s": per_metric.cpu_s.sum() / units.duration_s.sum(),
            "scores": scores}


def writer_rate(folder: Path, template: pd.DataFrame, n: int = 2000) -> dict[str, tuple[float, float]]:
    """Units (each with one real unit's score rows) per second and score rows per second into a fresh store:
    as svbench writes (Store.add_unit: a transaction per unit, synchronous=FULL), then two alternatives
    for docs/scaling.md: synchronous=NORMAL, and 100 units per transaction (same SQL as add_unit)."""
    rows = [(r.metric, r.key, r.value, r.reason, r.t_s, r.cpu_s) for r in template.itertuples()]
    unit = UnitResult("u", "codec2", "3.2k", 3200, duration_s=10.0, scores=rows)
    rates = {}
    for label, sync, per_tx in [("per unit, synchronous=FULL (svbench)", "FULL", 1),
                                ("per unit, synchronous=NORMAL", "NORMAL", 1),
                                ("100 units per transaction, FULL", "FULL", 100)]:
        store = Store(folder / f"writer-{sync}-{per_tx}.sqlite")
        store.db.execute(f"PRAGMA synchronous={sync}")
        store.open_run("bench", {}, {})
        t0 = time.perf_counter()
        if per_tx == 1:
            for i in range(n):
                store.add_unit("bench", replace(unit, utt_id=f"u{i}"))
        else:
            for start in range(0, n, per_tx):
                with store.db:
                    for i in range(start, start + per_tx):
                        r = replace(unit, utt_id=f"u{i}")
                        row = {c: getattr(r, c) for c in UNIT_COLUMNS} | {"notes": None, "cached": 0}
                        store.db.execute(f"INSERT INTO units (run_id, {', '.join(row)}) VALUES (?{', ?' * len(row)})",
                                         ("bench", *row.values()))
                        store.db.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)",
                                             [("bench", r.utt_id, r.codec, r.bitrate, *sc) for sc in r.scores])
        wall = time.perf_counter() - t0
        store.close()
        rates[label] = (n / wall, n * len(rows) / wall)
    return rates


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
        print(f"{'case':<30} {'wall s':>7} {'audio s/wall s':>14} {'x 1st':>6} {'CPU s':>7} {'load':>5}"
              "  largest RSS  same values")
        cases = [("--workers 1 (in-process)", 1, "local"), ("--executor dask --workers 1", 1, "dask"),
                 ("--executor dask --workers 2", 2, "dask"), ("--workers 2 (process pool)", 2, "local")]
        first: dict[str, Any] = {}
        key = ["utt_id", "key"]
        for label, workers, executor in cases:
            r = timed(tmp, m, metrics, workers, executor)
            first = first or r
            values = r["scores"].set_index(key).value.sort_index()
            base = first["scores"].set_index(key).value.sort_index()
            diff = (values - base).abs()
            same = "yes" if values.index.equals(base.index) and (diff == 0).all() else \
                f"NO: {sorted({k for (_, k), d in diff.items() if d != 0})} up to {diff.max():.3g}"
            speed, ratio = r["audio"] / r["wall"], (r["audio"] / r["wall"]) / (first["audio"] / first["wall"])
            print(f"{label:<30} {r['wall']:>7.1f} {speed:>14.3f} {ratio:>6.2f} {r['cpu']:>7.1f} {r['load']:>5.1f}"
                  f"  {r['rss']:>8.0f} MB  {same}", flush=True)
        print(f"metrics: {first['cpu_per_audio_s']:.3f} CPU-s per audio-second (in-process, model loading included)")

        m4, audio4 = manifest(tmp, 4)
        print(f"\nshort run: 4 clips ({audio4:.0f} s), pesq,stoi, codec2 3.2k")
        for label, executor in [("--workers 2 (process pool)", "local"), ("--executor dask --workers 2", "dask")]:
            r = timed(tmp, m4, ("pesq", "stoi"), 2, executor)
            print(f"{label:<30} {r['wall']:>7.1f} s wall {r['cpu']:>7.1f} s CPU", flush=True)

        one_unit = first["scores"][first["scores"].utt_id == first["scores"].utt_id.iloc[0]]
        print(f"\nSQLite writer, {len(one_unit)} score rows per unit, WAL, store in {tmp}:")
        for label, (units_s, rows_s) in writer_rate(tmp, one_unit).items():
            print(f"  {label:<40} {units_s:>7.0f} units/s {rows_s:>8.0f} score rows/s")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
