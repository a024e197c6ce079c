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

import hashlib
import json
import multiprocessing
import os
import sqlite3
import sys
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
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


_PARALLEL = sys.platform == "linux" and (os.cpu_count() or 1) > 1


def load(store_path: Path, run_ids: list[str] | None = None, parallel: bool = _PARALLEL) -> pd.DataFrame:
    """The tidy frame of the given runs (default: every run in the store); columns as in the module doc.

    Rows are sorted by run_id, codec, bps, bitrate, utt_id, metric, key. Text columns are pandas
    ``Categorical`` (str categories, NaN where absent), which keeps 1.7 million rows small and fast to
    group: compare them with strings as usual, group with ``observed=True``. ``bps`` is int64;
    ``measured_bps``, ``delay_ms`` and ``value`` are float64.

    The store's units and scores, read once, are kept beside the store as an Arrow file named by the
    store's state (:func:`_state`); a later load of an unchanged store reads that file instead of a
    million SQLite rows. Any write to the store changes the state, so a stale file is never read.
    """
    info = runs(store_path, run_ids)
    frame = _stored_frame(Path(store_path), parallel)
    wanted = frame.run_id.isin(info.run_id).to_numpy()
    if not wanted.all():
        frame = frame[wanted].reset_index(drop=True)
        for col in frame.select_dtypes("category"):  # categories of runs not asked for
            frame[col] = frame[col].cat.remove_unused_categories()
    frame["dataset"] = frame.run_id.map(dict(zip(info.run_id, info.dataset, strict=True)))
    config = dict(zip(info.run_id, info.config, strict=True))
    frame["metric_card"] = _lookup(frame, config, "metric_cards", "metric")
    frame["codec_card"] = _lookup(frame, config, "codec_cards", "codec")
    return frame[list(COLUMNS)]


def _state(store_path: Path) -> str:
    """What changes with every write to the store: size and modification time of the store and its
    write-ahead log, the last rowids of units and scores, the runs' last update."""
    stats = []
    for path in (store_path, store_path.with_name(store_path.name + "-wal")):
        st = path.stat() if path.exists() else None
        if st is not None and st.st_size:  # a reader's empty log is no change
            stats.append((st.st_size, st.st_mtime_ns))
    db = connect(store_path)
    try:
        rows = db.execute("SELECT (SELECT max(rowid) FROM units), (SELECT count(*) FROM units), "
                          "(SELECT max(rowid) FROM scores), (SELECT max(updated) FROM runs)").fetchone()
    finally:
        db.close()
    # with the columns: a file kept by a version of another layout is never read
    return hashlib.sha256(json.dumps([COLUMNS, stats, rows]).encode()).hexdigest()[:16]


def keep(store_path: Path) -> None:
    """Keep the store's rows for the next report or check unless they are kept already (a run calls this
    when it has written everything, its notices included)."""
    if not _kept(store_path, _state(store_path)).exists():
        _stored_frame(store_path, parallel=False)


def _kept(store_path: Path, state: str) -> Path:
    return store_path.with_name(f".{store_path.name}.tidy-{state}.arrow")


def _stored_frame(store_path: Path, parallel: bool) -> pd.DataFrame:
    """Every run's rows (no dataset or card columns): from the Arrow file of the store's state if there is
    one, else read from SQLite and written to that file (when the store did not change meanwhile and the
    folder is writable; otherwise simply not kept)."""
    state = _state(store_path)
    kept = _kept(store_path, state)
    try:
        return pd.read_feather(kept)
    except (OSError, ValueError):  # absent (the usual miss) or unreadable: read the store
        pass
    frame = _read(store_path, parallel)
    if _state(store_path) == state:
        try:
            part = kept.with_name(f"{kept.name}.{os.getpid()}.part")
            frame.to_feather(part)
            os.replace(part, kept)
            for old in store_path.parent.glob(f".{store_path.name}.tidy-*.arrow"):
                if old != kept:
                    old.unlink(missing_ok=True)
        except OSError:
            part.unlink(missing_ok=True)
    return frame


def _read(store_path: Path, parallel: bool) -> pd.DataFrame:
    """Every run's units and scores from SQLite, in :func:`load`'s order, without the columns taken from
    the runs' configs."""
    # on Linux the key index and the values are read by a forked process meanwhile (two cores, no shared lock); its
    # snapshot is checked against this connection's below and the scan done again here if they differ
    db = connect(store_path)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) if parallel else None
    try:
        early = pool.submit(_scan_keys, store_path) if pool is not None else None
        db.execute("BEGIN")  # one read snapshot for every query below, even while a run is writing
        units = _read_units(db)
        seen = db.execute("SELECT count(*), ifnull(sum(rowid), 0) FROM scores").fetchone()
        keys = early.result() if early is not None else None
        if keys is None or (keys["count"], keys["sum"]) != tuple(seen):  # a run wrote in between
            keys = _scan_keys(db)
        scores = _read_scores(db, units["n_scores"], keys)
    finally:
        db.close()
        if pool is not None:
            pool.shutdown()
    bare = np.flatnonzero(units["n_scores"] == 0)  # units with no score rows still get one row
    pos = np.concatenate([scores["unit"], bare])
    none = np.full(len(bare), -1)
    coded = {col: np.concatenate([scores[col][0], none]) for col in ("metric", "key", "reason")}
    value = np.concatenate([scores["value"], np.full(len(bare), np.nan)])
    # sorted once, on integer codes (categories are sorted), before any column is built
    order = np.lexsort([coded["key"], coded["metric"], units["utt_id"][0][pos], units["bitrate"][0][pos],
                        units["bps"][pos], units["codec"][0][pos], units["run_id"][0][pos]])
    pos = pos[order]
    frame = pd.DataFrame({col: _cat(units[col], pos) for col in _UNIT_TEXT})
    for col in ("bps", "measured_bps", "delay_ms"):
        frame[col] = units[col][pos]
    for col in ("metric", "key", "reason"):
        frame[col] = pd.Categorical.from_codes(coded[col][order], scores[col][1])
    frame["value"] = value[order]
    return frame


def _cat(coded: tuple[np.ndarray, list[str]], pos: np.ndarray) -> pd.Categorical:
    codes, cats = coded
    return pd.Categorical.from_codes(codes[pos], cats)


_SEP, _ROW = "\x1f", "\x1e"  # unit separator / record separator: never in metric names or keys
_SAME_UNIT = "s.run_id = u.run_id AND s.utt_id = u.utt_id AND s.codec = u.codec AND s.bitrate = u.bitrate"
_UNIT_TEXT = ("run_id", "codec", "bitrate", "utt_id", "status", "stage", "error")


def _read_units(db: sqlite3.Connection) -> dict[str, Any]:
    """Every unit in primary-key order with its number of score rows: text columns as (codes, categories),
    numbers as arrays."""
    rows = db.execute("SELECT run_id, codec, bitrate, utt_id, status, stage, error, nominal_bps, measured_bps, "
                      f"delay_ms, (SELECT count(*) FROM scores s WHERE {_SAME_UNIT}) FROM units u "
                      "ORDER BY run_id, utt_id, codec, bitrate").fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 11
    out: dict[str, Any] = {c: _codes(list(v)) for c, v in zip(_UNIT_TEXT, cols[:7], strict=True)}
    out["bps"] = np.array([b or 0 for b in cols[7]], dtype=np.int64)
    for col, values in (("measured_bps", cols[8]), ("delay_ms", cols[9])):
        out[col] = np.array([np.nan if v is None else v for v in values], dtype="float64")
    out["n_scores"] = np.array(cols[10], dtype=np.intp)
    return out


def _scan_keys(db: sqlite3.Connection | Path) -> dict[str, Any]:
    """One scan of the scores' primary-key index, (run_id, utt_id, codec, bitrate, metric, key) in that
    order: every row's rowid and its metric and key as codes; the values in table (rowid) order; the count
    and rowid sum of the rows (which tell whether two connections saw the same rows). Given a path, on a
    connection of its own."""
    own = not isinstance(db, sqlite3.Connection)
    conn = connect(Path(db)) if own else db
    try:
        if own:
            conn.execute("BEGIN")
        rowids, mks = conn.execute(
            "SELECT group_concat(rowid, ' '), group_concat(metric || char(31) || key, char(30)) "
            "FROM scores INDEXED BY sqlite_autoindex_scores_1 ORDER BY run_id, utt_id, codec, bitrate, metric, key"
        ).fetchone()
        rows = conn.execute("SELECT value FROM scores ORDER BY rowid").fetchall()
    except sqlite3.OperationalError as err:
        raise ReportError(f"the store's scores table lacks svbench's primary key ({err})") from None
    finally:
        if own:
            conn.close()
    rid = np.fromstring(rowids, dtype=np.int64, sep=" ") if rowids else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {"rid": rid, "count": len(rid), "sum": int(rid.sum()),
                           "values": np.array([v for (v,) in rows], dtype="float64")}  # in rowid order; None -> NaN
    mk_codes, mk = _codes(mks.split(_ROW) if mks else [])
    pairs = [m.split(_SEP, 1) for m in mk]
    for i, col in enumerate(("metric", "key")):
        cats = sorted({p[i] for p in pairs})
        remap = np.array([cats.index(p[i]) for p in pairs], dtype=np.intp)
        out[col] = (remap[mk_codes] if len(mk_codes) else mk_codes, cats)
    return out


def _read_scores(db: sqlite3.Connection, n_scores: np.ndarray, keys: dict[str, Any]) -> dict[str, Any]:
    """Every score row in primary-key order (so a unit's rows follow each other, units in the order of
    :func:`_read_units`): the unit's position, metric, key and reason as codes, and the value.

    Fetching 1.7 million rows as Python tuples takes many seconds, so the key index is scanned once for
    rowids and names as two concatenated strings (split in C, :func:`_scan_keys`), values come in table
    order as one-column rows (exact doubles: SQLite's own float-to-text conversion drops the last digit of
    some) and are put in key order by rowid, and reasons are read only where there is one."""
    rid = keys["rid"]
    n = int(n_scores.sum())
    empty = np.zeros(0, dtype=np.intp)
    if not n:
        return {"unit": empty, "value": np.zeros(0), "metric": (empty, []), "key": (empty, []),
                "reason": (empty, [])}
    if len(rid) != n:
        raise ReportError(f"{len(rid)} score rows but the units count {n}: score rows without their unit")
    order = np.argsort(rid, kind="stable")
    by_rowid = rid[order]
    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)  # key-order row -> its place in table order
    out: dict[str, Any] = {"unit": np.repeat(np.arange(len(n_scores)), n_scores), "value": keys["values"][rank],
                           "metric": keys["metric"], "key": keys["key"]}
    reasons = db.execute("SELECT rowid, reason FROM scores WHERE reason IS NOT NULL ORDER BY rowid").fetchall()
    reason_codes = np.full(n, -1, dtype=np.intp)
    if reasons:
        where = np.searchsorted(by_rowid, np.array([r[0] for r in reasons], dtype=np.int64))
        codes, cats = _codes([r[1] for r in reasons])
        at = np.empty(n, dtype=np.intp)
        at[rank] = np.arange(n)  # table-order place -> key-order row
        reason_codes[at[where]] = codes
    else:
        cats = []
    out["reason"] = (reason_codes, cats)
    return out


def _codes(items: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """(codes, sorted distinct values) of a long list with few distinct values; None is code -1."""
    cats = sorted(c for c in dict.fromkeys(items) if c is not None)
    index: dict[str | None, int] = {c: i for i, c in enumerate(cats)}
    index[None] = -1
    return np.fromiter(map(index.__getitem__, items), dtype=np.intp, count=len(items)), cats


def _lookup(frame: pd.DataFrame, config: dict[str, dict[str, Any]], field: str, by: str) -> pd.Categorical:
    """Map (run_id, by) through the run config's ``field`` dict (a card hash per metric or codec)."""
    runs_cat, by_cat = frame.run_id.cat, frame[by].cat
    table = [[config.get(r, {}).get(field, {}).get(k) for k in by_cat.categories] + [None]
             for r in runs_cat.categories]
    hashes = pd.Categorical([h for row in table for h in row])
    width = len(by_cat.categories) + 1
    flat = runs_cat.codes.to_numpy().astype(np.int64) * width + np.where(by_cat.codes < 0, width - 1, by_cat.codes)
    return pd.Categorical.from_codes(hashes.codes[flat], hashes.categories)


def units(store_path: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    """The ``units`` rows of the given runs (every column), for renderers that need paths (the HTML page)."""
    ids = runs(store_path, run_ids).run_id.tolist()
    db = connect(store_path)
    try:
        return pd.read_sql_query(f"SELECT * FROM units WHERE run_id IN ({','.join('?' * len(ids))})", db,
                                 params=ids)
    finally:
        db.close()
