"""Published values to draw beside ours: a CSV with columns metric,codec,kbps,value[,source].

A published row matches a table column when its ``metric`` is the column's value key, id or name, or
else its metric card name (case-insensitive), and a table row when its ``codec`` is the row's codec
(case-insensitive) and its ``kbps`` the row's nominal bitrate (within 0.5%).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svbench.report.tidy import ReportError

REQUIRED = ("metric", "codec", "kbps", "value")


class Overlay:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            table = pd.read_csv(self.path, dtype={"metric": str, "codec": str, "source": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ReportError(f"{path}: cannot read the overlay CSV ({err})") from None
        missing = [c for c in REQUIRED if c not in table.columns]
        if missing:
            raise ReportError(f"{path}: overlay needs columns {','.join(REQUIRED)}[,source]; "
                              f"missing {', '.join(missing)}")
        for col in ("kbps", "value"):
            numbers = pd.to_numeric(table[col], errors="coerce")
            bad = numbers.isna() & table[col].notna()
            if bad.any():
                line = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # header is line 1
                raise ReportError(f"{path}: line {line}: field '{col}': not a number: {table[col][bad].iloc[0]!r}")
            table[col] = numbers
        if "source" not in table.columns:
            table["source"] = self.path.name
        table["metric_l"] = table.metric.str.lower()
        table["codec_l"] = table.codec.str.lower()
        self.table = table

    def points(self, metric: str, key: str, ident: str, name: str) -> pd.DataFrame:
        """The published rows for one column: codec, kbps, value, source."""
        t = self.table
        names = {key.lower(), ident.lower(), name.lower()}
        rows = t[t.metric_l.isin(names)]
        if rows.empty:
            rows = t[t.metric_l == metric.lower()]
        return rows[["codec", "kbps", "value", "source"]].reset_index(drop=True)

    def lookup(self, result, col) -> np.ndarray:  # type: ignore[no-untyped-def]
        """Published value per table row of ``result`` for column ``col`` (NaN where none)."""
        pts = self.points(col.metric, col.key, col.id, col.name)
        out = np.full(len(result.rows), np.nan)
        if pts.empty or "codec" not in result.rows:
            return out
        codecs = pts.codec.str.lower().to_numpy()
        kbps = pts.kbps.to_numpy(dtype=float)
        for i, (codec, bps) in enumerate(zip(result.rows.codec, result.rows.bps, strict=True)):
            hit = (codecs == str(codec).lower()) & (np.abs(kbps * 1000 - bps) <= 0.005 * max(bps, 1))
            if hit.any():
                out[i] = pts.value.to_numpy(dtype=float)[np.flatnonzero(hit)[0]]
        return out
