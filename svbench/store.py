"""The run store: one SQLite file per workspace.

A unit of work (utterance x codec x bitrate) is written with all its scores in one transaction, so
a run killed at any instant keeps every finished unit and no half unit; the primary keys make a
duplicate impossible. Starting the same run again skips the units already stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    config TEXT NOT NULL,       -- JSON: dataset, codecs (+card hashes), bitrates, metrics (+card hashes), options
    environment TEXT NOT NULL   -- JSON: svbench and library versions, git commit, host
);
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    utt_id TEXT NOT NULL,
    codec TEXT NOT NULL,
    bitrate TEXT NOT NULL,       -- label as written by users: 3k, 0.5k; '-' when unknown
    nominal_bps INTEGER,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    stage TEXT,                  -- where an error happened: reference, codec, decoded, align, metric
    error TEXT,
    notes TEXT,                  -- what svbench changed on the way (mix-down, resampling)
    ref_path TEXT,
    deg_path TEXT,
    duration_s REAL,             -- the reference's duration
    compared_s REAL,             -- the span scored, after delay compensation and cutting to common length
    measured_bps REAL,
    delay_ms REAL,
    delay_confidence REAL,
    eval_sr INTEGER,
    cached INTEGER,
    t_codec_s REAL,
    t_metrics_s REAL,
    PRIMARY KEY (run_id, utt_id, codec, bitrate)
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL,
    utt_id TEXT NOT NULL,
    codec TEXT NOT NULL,
    bitrate TEXT NOT NULL,
    metric TEXT NOT NULL,        -- metric card name
    key TEXT NOT NULL,           -- value name (a metric can return several)
    value REAL,                  -- NULL when the metric is not defined for this utterance
    reason TEXT,                 -- why value is NULL
    t_s REAL,                    -- wall seconds the metric took on this unit
    cpu_s REAL,                  -- CPU seconds of the worker process (all its threads) meanwhile
    PRIMARY KEY (run_id, utt_id, codec, bitrate, metric, key),
    FOREIGN KEY (run_id, utt_id, codec, bitrate) REFERENCES units(run_id, utt_id, codec, bitrate)
);
CREATE TABLE IF NOT EXISTS notices (
    run_id TEXT NOT NULL,
    scope TEXT NOT NULL,         -- e.g. 'grid codec2@6k', 'manifest line 7'
    reason TEXT NOT NULL,
    UNIQUE (run_id, scope, reason)
);
"""


@dataclass
class UnitResult:
    utt_id: str
    codec: str
    bitrate: str
    nominal_bps: int | None
    status: str = "ok"
    stage: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    ref_path: str | None = None
    deg_path: str | None = None
    duration_s: float | None = None
    compared_s: float | None = None
    measured_bps: float | None = None
    delay_ms: float | None = None
    delay_confidence: float | None = None
    eval_sr: int | None = None
    cached: bool = False
    t_codec_s: float | None = None
    t_metrics_s: float | None = None
    # (metric, key, value or None, reason or None, wall seconds, CPU seconds)
    scores: list[tuple[str, str, float | None, str | None, float, float]] = field(default_factory=list)

    def fail(self, stage: str, error: str) -> UnitResult:
        self.status, self.stage, self.error = "error", stage, error
        return self


UNIT_COLUMNS = ("utt_id", "codec", "bitrate", "nominal_bps", "status", "stage", "error", "notes", "ref_path",
                "deg_path", "duration_s", "compared_s", "measured_bps", "delay_ms", "delay_confidence", "eval_sr",
                "cached", "t_codec_s", "t_metrics_s")


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a committed unit survives power loss
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    @classmethod
    def existing(cls, path: Path) -> Store:
        """The store at ``path``; FileNotFoundError (a usage error) rather than creating an empty one."""
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no svbench store here (run `svbench run` first, or pass --workspace)")
        return cls(path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def has_run(self, run_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def open_run(self, run_id: str, config: dict[str, Any], environment: dict[str, Any]) -> bool:
        """Create the run or find it; True when it already existed (a resume)."""
        now = _now()
        with self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?)",
                (run_id, now, now, json.dumps(config, sort_keys=True), json.dumps(environment, sort_keys=True)),
            )
        return cur.rowcount == 0

    def done_units(self, run_id: str, ok_only: bool = False) -> set[tuple[str, str, str]]:
        """Units stored for the run; with ``ok_only`` only those that succeeded (failed ones are redone)."""
        where = " AND status = 'ok'" if ok_only else ""
        rows = self.db.execute(f"SELECT utt_id, codec, bitrate FROM units WHERE run_id = ?{where}", (run_id,))
        return {tuple(r) for r in rows}  # type: ignore[misc]

    def add_unit(self, run_id: str, r: UnitResult) -> None:
        unit_key = (run_id, r.utt_id, r.codec, r.bitrate)
        row = {c: getattr(r, c) for c in UNIT_COLUMNS}
        row["notes"] = "; ".join(r.notes) or None
        row["cached"] = int(r.cached)
        with self.db:
            # a unit that failed before and is computed again replaces its old row, in the same transaction
            for table in ("scores", "units"):
                self.db.execute(f"DELETE FROM {table} WHERE run_id = ? AND utt_id = ? AND codec = ? AND bitrate = ?",
                                unit_key)
            self.db.execute(
                f"INSERT INTO units (run_id, {', '.join(row)}) VALUES (?{', ?' * len(row)})",
                (run_id, *row.values()),
            )
            self.db.executemany(
                "INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(*unit_key, *score) for score in r.scores],
            )
            self.db.execute("UPDATE runs SET updated = ? WHERE run_id = ?", (_now(), run_id))

    def add_notices(self, run_id: str, notices: Iterable[tuple[str, str]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO notices VALUES (?, ?, ?)", [(run_id, s, r) for s, r in notices]
            )

    def frame(self, table: str, run_id: str | None = None) -> pd.DataFrame:
        if table not in {"runs", "units", "scores", "notices"}:
            raise ValueError(f"no table {table!r}")
        if run_id is None:
            return pd.read_sql_query(f"SELECT * FROM {table}", self.db)
        return pd.read_sql_query(f"SELECT * FROM {table} WHERE run_id = ?", self.db, params=(run_id,))

    def results(self, run_id: str) -> pd.DataFrame:
        """One row per utterance x codec x bitrate with a column per score key (wide form)."""
        units = self.frame("units", run_id)
        scores = self.frame("scores", run_id)
        if scores.empty:
            return units
        wide = scores.pivot_table(
            index=["utt_id", "codec", "bitrate"], columns="key", values="value", aggfunc="first", dropna=False
        ).reset_index()
        wide.columns.name = None
        return units.merge(wide, on=["utt_id", "codec", "bitrate"], how="left")

    def latest_run(self) -> str | None:
        row = self.db.execute("SELECT run_id FROM runs ORDER BY updated DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def counts(self, run_id: str) -> dict[str, int]:
        return {
            t: self.db.execute(f"SELECT COUNT(*) FROM {t} WHERE run_id = ?", (run_id,)).fetchone()[0]
            for t in ("units", "scores", "notices")
        }


def _now() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
