"""The store as one tidy frame: the single input of every report renderer and of ``svbench check``.

:func:`load` returns one row per (run_id, dataset, codec, bitrate, utt_id, metric, key) with these
columns, in this order (a stable contract: renderers and ``check`` build on them):

============== ========================================================================================
run_id         the run's id (``runs.run_id``)
dataset        the dataset's name: the manifest's folder for ``.../NAME/manifest.csv``, else the
               manifest's file stem (as ``svbench list datasets`` names them)
codec          codec label as stored (card name, or a precomputed folder's label)
bitrate        the bitrate label as users write it (``3k``, ``0.5k``; ``-`` when unknown)
bps            nominal bit/s (int; 0 when unknown)
utt_id         utterance id from the manifest
status         the unit's status: ``ok`` or ``error``
stage          where a failed unit failed (reference, codec, decoded, align, metric, internal); else NA
error          the failed unit's error message; else NA
measured_bps   bits the codec produced / duration (float; NaN for precomputed or failed units)
delay_ms       estimated codec delay (float; NaN with ``--align none`` or a failed unit)
metric         metric card name (NA on the single row of a unit with no score rows, e.g. a failed unit)
key            value name inside the metric (``pesq_nb``, ``f0rmse_hz``); NA as for ``metric``
value          the value (float); NaN when the metric is not defined for the utterance (see ``reason``)
reason         why ``value`` is NaN (``not defined: ...``, ``failed: ...``); else NA
metric_card    sha256 of the metric card the run used (from the run config's ``metric_cards``)
codec_card     the codec's identity hash in the run config's ``codec_cards`` (card sha256, plus a
               neural codec's checkpoint); NA for precomputed files
============== ========================================================================================

The store is opened read-only (an SQLite ``mode=ro`` URI), so a report never creates or changes a
store. A missing store or an unknown run id raises :class:`ReportError` (the command exits 2).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("run_id", "dataset", "codec", "bitrate", "bps", "utt_id", "status", "stage", "error", "measured_bps",
           "delay_ms", "metric", "key", "value", "reason", "metric_card", "codec_card")


class ReportError(ValueError):
    """Bad input to a report or check (no store, unknown run, malformed spec): a usage error, exit 2."""


def connect(store_path: Path) -> sqlite3.Connection:
    """Open a store read-only; never creates one."""
    store_path = Path(store_path)
    if not store_path.is_file():
        raise ReportError(f"{store_path}: no run store here (run `svbench run --workspace ...` first)")
    uri = "file:" + urllib.parse.quote(str(store_path.resolve())) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, timeout=60)
        db.execute("SELECT 1 FROM runs LIMIT 1")
    except sqlite3.DatabaseError as err:
        raise ReportError(f"{store_path}: not a readable svbench store ({err})") from None
    return db


def dataset_name(path: str) -> str:
    p = Path(path)
    return p.parent.name if p.name == "manifest.csv" and p.parent.name else p.stem


def runs(store_path: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per run: run_id, created, updated, dataset, config (dict), environment (dict), oldest first.
    Unknown ids raise :class:`ReportError`; a unique prefix of an id is accepted."""
    db = connect(store_path)
    try:
        rows = db.execute("SELECT run_id, created, updated, config, environment FROM runs ORDER BY created, run_id")
        frame = pd.DataFrame(rows.fetchall(), columns=["run_id", "created", "updated", "config", "environment"])
    finally:
        db.close()
    frame["config"] = [json.loads(c) for c in frame.config]
    frame["environment"] = [json.loads(e) for e in frame.environment]
    frame["dataset"] = [dataset_name(c.get("dataset", "")) for c in frame.config]
    if run_ids:
        chosen = [_resolve(frame.run_id.tolist(), r, store_path) for r in run_ids]
        frame = frame[frame.run_id.isin(chosen)]
    elif frame.empty:
        raise ReportError(f"{store_path}: the store holds no runs")
    return frame.reset_index(drop=True)


def _resolve(known: list[str], wanted: str, store_path: Path) -> str:
    matches = [k for k in known if k == wanted] or [k for k in known if k.startswith(wanted)]
    if len(matches) != 1:
        what = "no run" if not matches else f"{len(matches)} runs"
        raise ReportError(f"{store_path}: {what} with id {wanted!r} (known: {', '.join(known) or 'none'})")
    return matches[0]


def load(store_path: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    """The tidy frame of the given runs (default: every run in the store); columns as in the module doc."""
    info = runs(store_path, run_ids)
    ids = info.run_id.tolist()
    marks = ",".join("?" * len(ids))
    db = connect(store_path)
    try:
        units = pd.read_sql_query(
            "SELECT rowid AS uid, run_id, codec, bitrate, nominal_bps AS bps, utt_id, status, stage, error, "
            f"measured_bps, delay_ms FROM units WHERE run_id IN ({marks})", db, params=ids)
        cur = db.execute(
            "SELECT u.rowid, s.metric, s.key, s.value, s.reason FROM scores s JOIN units u "
            "ON u.run_id = s.run_id AND u.utt_id = s.utt_id AND u.codec = s.codec AND u.bitrate = s.bitrate "
            f"WHERE s.run_id IN ({marks})", ids)
        scores = _columns(cur.fetchall(), ["uid", "metric", "key", "value", "reason"])
    finally:
        db.close()
    units["bps"] = units.bps.fillna(0).astype("int64")
    for col in ("measured_bps", "delay_ms"):
        units[col] = units[col].astype("float64")
    scores["value"] = scores.value.astype("float64")
    bare = units.loc[~units.uid.isin(scores.uid), ["uid"]]  # units with no score rows still get one row
    rows = pd.concat([scores, bare], ignore_index=True) if len(bare) else scores
    pos = pd.Index(units.uid).get_indexer(rows.uid)
    frame = units.iloc[pos].reset_index(drop=True).drop(columns="uid")
    for col in ("metric", "key", "value", "reason"):
        frame[col] = rows[col].to_numpy()
    frame["value"] = frame.value.astype("float64")
    config = dict(zip(info.run_id, info.config, strict=True))
    names = dict(zip(info.run_id, info.dataset, strict=True))
    frame["dataset"] = frame.run_id.map(names)
    frame["metric_card"] = _lookup(frame, config, "metric_cards", "metric")
    frame["codec_card"] = _lookup(frame, config, "codec_cards", "codec")
    frame = frame[list(COLUMNS)]
    order = ["run_id", "codec", "bps", "bitrate", "utt_id", "metric", "key"]
    return frame.sort_values(order, kind="stable", na_position="first").reset_index(drop=True)


def _columns(rows: list[tuple[Any, ...]], names: list[str]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({n: pd.Series(dtype="float64" if n == "value" else "object") for n in names})
    return pd.DataFrame.from_records(rows, columns=names)


def _lookup(frame: pd.DataFrame, config: dict[str, dict[str, Any]], field: str, by: str) -> np.ndarray:
    """Map (run_id, by) through the run config's ``field`` dict (a card hash per metric or codec)."""
    out = pd.Series(pd.NA, index=frame.index, dtype="object")
    for run_id, conf in config.items():
        mask = (frame.run_id == run_id).to_numpy()
        out[mask] = frame.loc[mask, by].map(conf.get(field, {})).to_numpy()
    return out.to_numpy()


def units(store_path: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    """The ``units`` rows of the given runs (every column), for renderers that need paths (the HTML page)."""
    ids = runs(store_path, run_ids).run_id.tolist()
    db = connect(store_path)
    try:
        return pd.read_sql_query(f"SELECT * FROM units WHERE run_id IN ({','.join('?' * len(ids))})", db,
                                 params=ids)
    finally:
        db.close()
