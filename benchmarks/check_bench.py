"""How long `svbench check` takes on a store of LibriSpeech test-clean size.

The stores come from ``make_store`` of benchmarks/report_bench.py (synthetic, seeded: 2,620 utterances x
10 codecs x 8 bitrates x 8 metrics = 1,676,800 score rows). Its metric card hashes are placeholders, so
they are replaced by the real cards' hashes (the baseline records each key's tolerance from its card).
The baseline is made from one store with `svbench check --update`; the checked store is the same seed
with one cell really moved (PESQ of svcodec@3k 0.05 lower on every utterance), so the check has one
regression to find among 640 cells. Both commands run as a user runs them (a new process); the CPU time
is printed beside the wall time because on a shared machine the wall time mostly measures the others.

    .venv/bin/python benchmarks/check_bench.py      # target: check < 10 s (2-core machine)

The check runs twice: first on the changed store (it reads the SQLite rows and keeps them beside the
store), then again, as a check after `svbench run` (which keeps them when it ends).
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_bench import METRICS, make_store  # noqa: E402

from svbench.cards import get_card  # noqa: E402


def real_card_hashes(store: Path) -> None:
    with sqlite3.connect(store) as db:
        for run_id, config in db.execute("SELECT run_id, config FROM runs").fetchall():
            conf = json.loads(config)
            conf["metric_cards"] = {m: get_card("metrics", m).sha256 for m in METRICS}
            db.execute("UPDATE runs SET config = ? WHERE run_id = ?", (json.dumps(conf), run_id))


def svbench(*args: str) -> tuple[str, int, str]:
    """Run ``svbench ARGS`` in a new process: (wall and CPU seconds as text, exit code, stderr)."""
    t0, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "svbench", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "80"}, check=False)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU (load average {os.getloadavg()[0]:.1f})", done.returncode, done.stderr


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        base_ws, now_ws = Path(tmp) / "base", Path(tmp) / "now"
        t0 = time.perf_counter()
        for ws in (base_ws, now_ws):
            make_store(ws / "svbench.sqlite", seed=0)
            real_card_hashes(ws / "svbench.sqlite")
        with sqlite3.connect(now_ws / "svbench.sqlite") as db:
            db.execute("UPDATE scores SET value = value - 0.05 WHERE codec = 'svcodec' AND bitrate = '3k' "
                       "AND key = 'pesq_nb'")
            rows = db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        print(f"stores: 2 x {rows:,} score rows, made in {time.perf_counter() - t0:.1f} s")
        baseline = Path(tmp) / "baseline.jsonl"
        wall, code, err = svbench("check", "--baseline", str(baseline), "--workspace", str(base_ws), "--update")
        assert code == 0, err
        print(f"check --update: {wall}, baseline {baseline.stat().st_size / 1e6:.1f} MB")
        # first on the store as changed above (check reads its SQLite rows and keeps them), then as after a run
        for case in ("first check of this store (reads SQLite)", "check after a run (reads the kept rows)"):
            wall, code, err = svbench("check", "--baseline", str(baseline), "--workspace", str(now_ws),
                                      "--junit", str(Path(tmp) / "junit.xml"))
            summary = err.strip().splitlines()[-1]
            assert code == 1 and "regressed svcodec@3k pesq_nb" in err and summary.startswith("1 regressed"), err
            print(f"check, {case}: {wall}; exit {code}: {summary}")
        print("target: < 10 s wall on an idle 2-core machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
