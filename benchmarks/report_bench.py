"""How long `svbench report all` takes on a store of LibriSpeech test-clean size.

The store is synthetic (seeded random values, no audio): 2,620 utterances x 10 codecs x 8 bitrates
x 8 metrics (one value each) = 1,676,800 score rows, plus a few failed units and undefined values,
written in one transaction with ``executemany``. Reports read the store only, so its size, not the
values, decides the time. ``make_store`` is importable (the ``svbench check`` benchmark reuses it).

    .venv/bin/python benchmarks/report_bench.py            # target: report all < 10 s (2-core machine)

It runs the report twice: first on the store as written (the report reads the SQLite rows and keeps
them beside the store), then again, as a report after `svbench run` (which keeps them when it ends).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from svbench.store import SCHEMA

CODECS = ("opus", "opus-cbr", "codec2", "codec2-cli", "speex", "evs", "svcodec", "svcodec-v1", "svcodec-v2",
          "soundstream")
BITRATES = ("0.5k", "1k", "1.5k", "2k", "2.5k", "3k", "3.5k", "4k")
# metric card -> (value key, higher is better, mean at the top bitrate, spread)
METRICS = {"pesq": ("pesq_nb", True, 2.8, 0.4), "stoi": ("stoi", True, 0.88, 0.05),
           "visqol": ("visqol", True, 3.2, 0.4), "dnsmos": ("dnsmos_ovrl", True, 3.0, 0.3),
           "f0rmse": ("f0rmse_hz", False, 10.0, 8.0), "sarmse": ("sarmse_db_from8k", False, 6.0, 1.0),
           "lsd": ("lsd_db", False, 9.0, 1.5), "mcd": ("mcd_db_from8k", False, 5.0, 0.8)}


def make_store(path: Path, n_utts: int = 2620, codecs: tuple[str, ...] = CODECS,
               bitrates: tuple[str, ...] = BITRATES, seed: int = 0, failed_share: float = 0.001,
               undefined_share: float = 0.002, dataset: str = "/data/librispeech/test-clean/manifest.csv") -> str:
    """Write a synthetic one-run store at ``path``; returns the run id. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    run_id = f"bench{seed:011d}"
    utts = [f"utt-{i:05d}" for i in range(n_utts)]
    config = {"dataset": dataset, "dataset_sha256": "0" * 64, "codecs": list(codecs),
              "codec_cards": {c: hashlib.sha256(c.encode()).hexdigest() for c in codecs},
              "bitrates": list(bitrates), "metrics": list(METRICS),
              "metric_cards": {m: f"{i:064x}" for i, m in enumerate(METRICS)},
              "metric_definitions": {m: {"name": m, "higher_is_better": hib} for m, (_, hib, _, _) in METRICS.items()},
              "align": "envelope", "eval_sr": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    with db:
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", (run_id, "2026-01-01T00:00:00+00:00",
                   "2026-01-01T00:00:00+00:00", json.dumps(config), json.dumps({"versions": {}})))
        for ci, codec in enumerate(codecs):
            for bi, label in enumerate(bitrates):
                bps = int(float(label.rstrip("k")) * 1000)
                failed = rng.random(n_utts) < failed_share
                measured = bps * rng.normal(1.0, 0.01, n_utts)
                delay = rng.normal(5 + ci, 0.5, n_utts)
                db.executemany("INSERT INTO units (run_id, utt_id, codec, bitrate, nominal_bps, status, stage, error,"
                               " measured_bps, delay_ms) VALUES (?,?,?,?,?,?,?,?,?,?)",
                               [(run_id, u, codec, label, bps, "error" if f else "ok",
                                 "codec" if f else None, "synthetic failure" if f else None,
                                 None if f else float(m), None if f else float(d))
                                for u, f, m, d in zip(utts, failed, measured, delay, strict=True)])
                ok = [u for u, f in zip(utts, failed, strict=True) if not f]
                quality = (bi + 1) / len(bitrates) * (1 - 0.03 * ci)
                for metric, (key, hib, top, spread) in METRICS.items():
                    centre = top * quality if hib else top / quality
                    values = rng.normal(centre, spread, len(ok))
                    undefined = rng.random(len(ok)) < undefined_share
                    db.executemany("INSERT INTO scores (run_id, utt_id, codec, bitrate, metric, key, value, reason) "
                                   "VALUES (?,?,?,?,?,?,?,?)",
                                   [(run_id, u, codec, label, metric, key, None if n else float(v),
                                     "not defined: synthetic" if n else None)
                                    for u, v, n in zip(ok, values, undefined, strict=True)])
    db.close()
    return run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=2620)
    parser.add_argument("--keep", help="folder to keep the store and the report in (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        store = work / "ws" / "svbench.sqlite"
        store.unlink(missing_ok=True)
        t0 = time.perf_counter()
        make_store(store, args.utts)
        load = os.getloadavg()[0]
        rows = sqlite3.connect(store).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        print(f"store: {rows:,} score rows written in {time.perf_counter() - t0:.1f} s ({store})")
        # the first report reads the store's rows and keeps them beside it (as every `svbench run` does when it
        # ends); the second reads what was kept, as a report after a run does
        for case in ("first report of this store (reads SQLite)", "report after a run (reads the kept rows)"):
            t0, cpu0 = time.perf_counter(), _children_cpu()
            done = subprocess.run([sys.executable, "-m", "svbench", "report", "all", "--workspace",
                                   str(store.parent), "-o", str(work / "out")], capture_output=True, text=True,
                                  check=False)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if done.returncode:
                print(done.stderr[-2000:])
            print(f"svbench report all, {case}: exit {done.returncode}, {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"(user+sys; load average before: {load:.1f})")
            load = os.getloadavg()[0]
        print("target: < 10 s wall on an otherwise idle 2-core machine")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
