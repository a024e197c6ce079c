"""Throughput of a whole `svbench run` (codec + alignment + PESQ + STOI + store) on real speech.

    .venv/bin/python benchmarks/run_bench.py [N_CLIPS]

Runs the grid codec2,opus x 3.2k,6k (three valid pairs: codec2 has no 6k mode) over the first N
LibriSpeech clips with 1 worker and with all cores,
each in a fresh workspace (cold cache), then once more with a metric added (warm decoded cache), and
prints wall time, units per second and audio seconds per wall second.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from svbench import engine
from svbench.executor import make_executor

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librispeech"


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        table = pd.read_csv(SPEECH / "manifest.csv").head(n)
        table["path"] = [str(SPEECH / p) for p in table.path]
        manifest = Path(tmp) / "m.csv"
        table.to_csv(manifest, index=False)
        print(f"{n} clips, {table.duration_s.sum():.0f} s of audio per operating point; {os.cpu_count()} cores")
        print(f"{'case':<34} {'wall s':>8} {'units/s':>8} {'audio s / wall s':>17}")
        for label, workers, metrics, ws in [
            ("cold cache, 1 worker", 1, ("pesq", "stoi"), "a"),
            (f"cold cache, {os.cpu_count()} workers", None, ("pesq", "stoi"), "b"),
            (f"warm cache + estoi, {os.cpu_count()} workers", None, ("pesq", "stoi", "estoi"), "b"),
        ]:
            spec = engine.RunSpec(str(manifest), ("codec2", "opus"), ("3.2k", "6k"), metrics,
                                  workspace=str(Path(tmp) / ws))
            t0 = time.perf_counter()
            outcome = engine.execute(spec, make_executor(workers))
            wall = time.perf_counter() - t0
            audio_s = table.duration_s.sum() * outcome.planned / n
            print(f"{label:<34} {wall:>8.1f} {outcome.computed / wall:>8.2f} {audio_s / wall:>17.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
