"""Published values to draw beside ours: a CSV with columns metric,codec,kbps,value[,source].

A published row matches a table column when its ``metric`` is the column's value key, id or name, or
else its metric card name (case-insensitive), and a table row when its ``codec`` is the row's codec
(case-insensitive) and its ``kbps`` the row's nominal bitrate (within 0.5%).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from svbench.report.tidy import ReportError

REQUIRED = ("metric", "codec", "kbps", "value")


class Overlay:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, newline="", encoding="utf-8") as fh:
                lines = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as err:
            raise ReportError(f"{path}: cannot read the overlay CSV ({err})") from None
        header = [h.strip() for h in (lines[0] if lines else [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ReportError(f"{path}: line 1: overlay needs columns {','.join(REQUIRED)}[,source]; "
                              f"missing {', '.join(missing)}")
        records = []
        for number, row in enumerate(lines[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header) and header[-1] == "source":  # an unquoted comma inside the source text
                row = row[: len(header) - 1] + [",".join(row[len(header) - 1:])]
            if len(row) != len(header):
                raise ReportError(f"{path}: line {number}: {len(row)} fields, the header has {len(header)}")
            record = dict(zip(header, (c.strip() for c in row), strict=True))
            for col in ("kbps", "value"):
                try:
                    record[col] = float(record[col])
                except ValueError:
                    raise ReportError(f"{path}: line {number}: field '{col}': not a number: {record[col]!r}") from None
            records.append(record)
        table = pd.DataFrame(records, columns=header)
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
