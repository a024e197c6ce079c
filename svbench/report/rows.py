"""Which rows a report table has: the spec's filters, the latest run where several hold the same
(dataset, codec, bitrate), one row per row-key combination (plus the rows a spec names that no run has),
and integer codes that tie the tidy frame's rows to the table's rows."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from svbench.bitrate import Bitrate
from svbench.report.spec import Spec

UNIT_KEYS = ["run_id", "codec", "bitrate", "utt_id"]


def select(frame: pd.DataFrame, info: pd.DataFrame, spec: Spec, notes: list[str]) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    for col, wanted in (("codec", spec.codecs), ("dataset", spec.datasets), ("bitrate", spec.bitrates)):
        if wanted:
            if col == "bitrate":
                wanted = tuple(Bitrate.parse(b).label for b in wanted)
            keep &= frame[col].isin(wanted).to_numpy()
    frame = frame[keep] if not keep.all() else frame
    if frame.run_id.nunique() < 2:
        return frame
    # a (dataset, codec, bitrate) stored by several runs: the latest run's units only
    order = {r: i for i, r in enumerate(info.sort_values(["updated", "created"]).run_id)}
    firsts = frame[unit_starts(frame)]
    cells = firsts[["dataset", "codec", "bitrate", "run_id"]].drop_duplicates().astype(str)
    cells = cells.assign(rank=cells.run_id.map(order)).sort_values("rank")
    dup = cells.duplicated(["dataset", "codec", "bitrate"], keep="last")
    if dup.any():
        dropped = cells[dup]
        notes.append("stored by several runs, the latest used: " + ", ".join(
            sorted({f"{d}/{c}@{b}" for d, c, b in dropped[["dataset", "codec", "bitrate"]].itertuples(index=False)})))
        drop = set(dropped[["codec", "bitrate", "run_id"]].itertuples(index=False, name=None))
        triples = frame[["codec", "bitrate", "run_id"]]
        code = row_codes(triples, ["codec", "bitrate", "run_id"])
        labels = triples[~pd.Series(code).duplicated().to_numpy()].astype(str)
        bad = {c for c, t in zip(pd.unique(code), labels.itertuples(index=False, name=None), strict=True) if t in drop}
        frame = frame[~np.isin(code, list(bad))]
    return frame


def codes(column: pd.Series) -> np.ndarray:
    return column.cat.codes.to_numpy() if isinstance(column.dtype, pd.CategoricalDtype) else pd.factorize(column)[0]


def row_codes(frame: pd.DataFrame, row_keys: list[str]) -> np.ndarray:
    """One integer per frame row naming its table row (the row keys' category codes combined)."""
    code = np.zeros(len(frame), dtype=np.int64)
    for col in row_keys:
        c = codes(frame[col]).astype(np.int64)
        code = code * (int(c.max(initial=0)) + 2) + c + 1
    return code


def unit_starts(frame: pd.DataFrame) -> np.ndarray:
    """First row of each unit (tidy frames keep a unit's rows together)."""
    if frame.empty:
        return np.zeros(0, dtype=bool)
    keys = np.stack([codes(frame[c]) for c in UNIT_KEYS])
    starts = np.ones(len(frame), dtype=bool)
    starts[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    return starts


def rows(units: pd.DataFrame, row_of: np.ndarray, row_keys: list[str], spec: Spec) -> pd.DataFrame:
    """One row per table row: row keys (str), bps, kbps measured, units ok and failed; ``_code`` to match."""
    ok = (units.status == "ok").to_numpy()
    kbps = np.where(ok, units.measured_bps.to_numpy(), np.nan) / 1000
    parts = pd.DataFrame({"_code": row_of, "bps": units.bps.to_numpy(), "kbps": kbps, "units_ok": ok,
                          "units_failed": ~ok})
    for col in row_keys:  # category codes to text for the few distinct values only
        column = units[col]
        names = np.asarray(column.cat.categories, dtype=object) if hasattr(column, "cat") else None
        parts[col] = names[column.cat.codes.to_numpy()] if names is not None else column.astype(str).to_numpy()
    rows = parts.groupby("_code", sort=False).agg(
        **{c: (c, "first") for c in row_keys}, bps=("bps", "max"), kbps=("kbps", "mean"),
        units_ok=("units_ok", "sum"), units_failed=("units_failed", "sum")).reset_index()
    rows = pd.concat([rows, _absent(rows, row_keys, spec)], ignore_index=True)
    sort = []
    for col in row_keys:
        if col == "bitrate":
            sort.append(rows.bps.to_numpy())
            continue
        given = list(spec.codecs if col == "codec" else spec.datasets)
        known = given + sorted(set(rows[col]) - set(given))
        sort.append(rows[col].map({v: i for i, v in enumerate(known)}).to_numpy())
    rows = rows.iloc[np.lexsort(sort[::-1])] if len(rows) else rows
    return rows[[*row_keys, "bps", "kbps", "units_ok", "units_failed", "_code"]].reset_index(drop=True)


def _absent(rows: pd.DataFrame, row_keys: list[str], spec: Spec) -> pd.DataFrame:
    """Rows the spec asks for by name (its codecs, datasets, bitrates lists) that no run has: shown empty."""
    listed = {"codec": list(spec.codecs), "dataset": list(spec.datasets),
              "bitrate": [Bitrate.parse(b).label for b in spec.bitrates]}
    if not any(listed[k] for k in row_keys):
        return rows.iloc[:0]
    axes = [listed[k] or sorted(set(rows[k])) for k in row_keys]
    have = set(rows[row_keys].itertuples(index=False, name=None))
    missing = [combo for combo in product(*axes) if combo not in have]
    return pd.DataFrame({**{k: [m[i] for m in missing] for i, k in enumerate(row_keys)},
                         "bps": [_bps(m, row_keys) for m in missing],
                         "kbps": np.nan, "units_ok": 0, "units_failed": 0,
                         "_code": -1 - np.arange(len(missing), dtype=np.int64)})


def _bps(combo: tuple[str, ...], row_keys: list[str]) -> int:
    label = dict(zip(row_keys, combo, strict=True)).get("bitrate")
    try:
        return Bitrate.parse(label).bps if label else 0
    except ValueError:
        return 0
