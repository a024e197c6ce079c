"""What the command line shows and writes: messages, a run's summary tables, listings, exported tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from svbench import importers
from svbench import manifest as manifest_mod
from svbench.cards import all_cards
from svbench.manifest import ManifestError
from svbench.metrics.base import metric_status
from svbench.plan import PRECOMPUTED, make_codec


def say(console: Console, text: str, style: str = "") -> None:
    """One message, never wrapped (paths stay whole and greppable) and never read as rich markup."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


SUMMARY_UNIT_COLUMNS = {"codec": "codec", "bitrate": "bitrate", "ok": "ok", "failed": "failed",
                        "undefined": "undef", "kbps": "kbps", "delay_ms": "delay ms", "delay_iqr_ms": "IQR"}


def summary_tables(summary: Any, width: int = 80) -> list[Table]:
    """The run's summary in tables that fit ``width`` columns: one of units per codec and bitrate, then the
    metric means with one row per value and one column per codec@bitrate, split into as many tables as
    the width needs. The whole table is in summary.csv."""
    if summary.empty:
        return [Table(title="svbench summary: nothing stored")]
    units = Table(title="units per codec and bitrate (kbps measured; delay median and IQR, ms)")
    present = [c for c in SUMMARY_UNIT_COLUMNS if c in summary.columns]
    for col in present:
        units.add_column(SUMMARY_UNIT_COLUMNS[col], justify="left" if col in ("codec", "bitrate") else "right")
    for row in summary.to_dict("records"):
        units.add_row(*[fmt(row[c]) for c in present])
    keys = [c for c in summary.columns if c not in SUMMARY_UNIT_COLUMNS and not c.endswith("_n")]
    labels = [f"{r['codec']}@{r['bitrate']}" for r in summary.to_dict("records")]
    key_width = max((len(k) for k in keys), default=6)
    per_table = max(1, (width - key_width - 4) // (max((len(x) for x in labels), default=5) + 3))
    tables = [units]
    for start in range(0, len(labels), per_table):
        part = list(range(start, min(start + per_table, len(labels))))
        means = Table(title="means over utterances" + (" (cont.)" if start else ""))
        means.add_column("value", justify="left")
        for i in part:
            means.add_column(labels[i], justify="right")
        for key in keys:
            means.add_row(key, *[fmt(summary[key].iloc[i]) for i in part])
        if keys:
            tables.append(means)
    return tables


def export_tables(folder: Path, results: Any, scores: Any, summary: Any, fmt: str) -> list[tuple[Path, int]]:
    """The run's per-utterance results, scores and summary as CSV or Parquet files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in {"results": results, "scores": scores, "summary": summary}.items():
        target = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_parquet(target, index=False)
        written.append((target, len(frame)))
    return written


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def listing(what: str) -> Table:
    """What `svbench list codecs|metrics|datasets` shows."""
    table = Table(title=f"svbench {what}")
    if what == "codecs":
        for col in ("codec", "status", "bitrates", "description / how to install"):
            table.add_column(col)
        for name, card in sorted(all_cards("codecs").items()):
            try:
                codec = make_codec(card)
                reason = codec.unavailable_reason()
                rates = codec.bitrates_text()
            except (KeyError, ImportError) as err:
                reason, rates = str(err), ""
            table.add_row(name, "unavailable" if reason else "ok", rates, reason or card.data.get("description", ""))
        table.add_row(PRECOMPUTED, "ok", "from folder names", "already-decoded files: --decoded DIR")
    elif what == "metrics":
        for col in ("metric", "status", "description / reason"):
            table.add_column(col)
        for name, status, text in metric_status():
            table.add_row(name, status, text)
    else:
        for col in ("dataset", "utterances", "manifest"):
            table.add_column(col)
        for name, path in importers.known_datasets().items():
            try:
                count = str(len(manifest_mod.load(path).utterances))
            except ManifestError as err:
                count = f"unreadable: {err}"
            table.add_row(name, count, str(path))
    return table
