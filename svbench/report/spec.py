"""Report specs: TOML files in ``reports/`` (shipped in the wheel, also read from ``./reports``).

A spec says which runs, how rows are formed, which columns (metric keys) to show and how to
aggregate them. A malformed spec is refused naming the file, the line (where it can be found) and
the field. See docs/reports.md for every field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svbench.cards import card_dirs
from svbench.report.tidy import ReportError

KINDS = ("table", "figure", "html", "all")
ROW_KEYS = ("dataset", "codec", "bitrate")
AGGREGATES = ("mean", "median")
TABLE_FORMATS = ("csv", "md", "tex")
FIGURE_FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class Column:
    metric: str  # metric card name
    key: str  # value key, a glob (``pesq_*`` matches pesq_nb and pesq_wb; each found key is its own column)
    name: str  # display name
    id: str  # name in CSV headers (``<id>_mean``)
    unit: str = ""
    direction: str | None = None  # "higher" | "lower"; None: from the metric card the run used
    aggregate: str = "mean"
    decimals: int = 2


@dataclass(frozen=True)
class Spec:
    name: str
    path: Path
    kind: str = "table"
    title: str = ""
    caption: str = ""
    runs: tuple[str, ...] = ()
    rows: tuple[str, ...] = ("codec", "bitrate")
    codecs: tuple[str, ...] = ()  # keep only these, in this order (empty: all, alphabetical)
    datasets: tuple[str, ...] = ()
    bitrates: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    formats: tuple[str, ...] = ()
    include: tuple[str, ...] = ()  # kind "all" and "html": the specs it renders
    split: bool = False  # figure: one file per column instead of one figure with a panel per column
    clips: int = 6  # html: utterances on the listening page
    extra: dict[str, Any] = field(default_factory=dict)


_TOP = {"title": str, "caption": str, "kind": str, "runs": list, "rows": list, "codecs": list, "datasets": list,
        "bitrates": list, "columns": list, "formats": list, "include": list, "split": bool, "clips": int,
        "description": str}
_COLUMN = {"metric": str, "key": str, "name": str, "id": str, "unit": str, "direction": str, "aggregate": str,
           "decimals": int}


def find(name: str) -> Path:
    """A spec by name (``table3``) in ./reports, the project tree or the wheel; or a path to a .toml file."""
    as_path = Path(name)
    if as_path.suffix == ".toml":
        if not as_path.is_file():
            raise ReportError(f"{name}: no such report spec file")
        return as_path
    for folder in card_dirs("reports"):
        candidate = folder / f"{name}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for folder in card_dirs("reports") for p in folder.glob("*.toml")})
    raise ReportError(f"no report spec named {name!r} (known: {', '.join(known) or 'none'}; or give a .toml path)")


def load(path: Path) -> Spec:
    raw = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as err:
        raise ReportError(f"{path}: not valid TOML: {err}") from None

    def fail(where: str, why: str, line_of: str | None = None, block: int | None = None) -> ReportError:
        line = _line(raw, line_of or where.split(".")[-1].split("[")[0], block)
        return ReportError(f"{path}:{f' line {line}:' if line else ''} field '{where}': {why}")

    for key, value in data.items():
        if key not in _TOP:
            raise fail(key, f"unknown field (known: {', '.join(sorted(_TOP))})")
        if not isinstance(value, _TOP[key]):
            raise fail(key, f"must be {_TOP[key].__name__}, got {type(value).__name__} {value!r}")
    kind = data.get("kind", "table")
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    for key in ("runs", "rows", "codecs", "datasets", "bitrates", "formats", "include"):
        bad = [v for v in data.get(key, []) if not isinstance(v, str)]
        if bad:
            raise fail(key, f"must be a list of strings, got {bad[0]!r}")
    rows = tuple(data.get("rows", ["codec", "bitrate"]))
    if not rows or any(r not in ROW_KEYS for r in rows) or len(set(rows)) != len(rows):
        raise fail("rows", f"a list of distinct names from {', '.join(ROW_KEYS)}, got {list(rows)!r}")
    allowed = FIGURE_FORMATS if kind == "figure" else TABLE_FORMATS
    bad = [f for f in data.get("formats", []) if f not in allowed]
    if bad:
        raise fail("formats", f"{bad[0]!r} is not one of {', '.join(allowed)}")
    columns = []
    for i, col in enumerate(data.get("columns", [])):
        where = f"columns[{i}]"
        if not isinstance(col, dict):
            raise fail(where, "each column is a table ([[columns]] with metric = ...)", "columns")
        for key, value in col.items():
            if key not in _COLUMN:
                raise fail(f"{where}.{key}", f"unknown field (known: {', '.join(sorted(_COLUMN))})", key, i)
            if not isinstance(value, _COLUMN[key]):
                raise fail(f"{where}.{key}", f"must be {_COLUMN[key].__name__}, got {value!r}", key, i)
        if "metric" not in col:
            raise fail(f"{where}.metric", "missing (the metric card name, e.g. metric = \"pesq\")",
                       "[[columns]]", i)
        if col.get("direction", "higher") not in ("higher", "lower"):
            raise fail(f"{where}.direction", f"must be 'higher' or 'lower', got {col['direction']!r}", "direction", i)
        if col.get("aggregate", "mean") not in AGGREGATES:
            raise fail(f"{where}.aggregate", f"must be one of {', '.join(AGGREGATES)}, got {col['aggregate']!r}",
                       "aggregate", i)
        key = col.get("key", f"{col['metric'].replace('-', '_')}*")
        agg = col.get("aggregate", "mean")
        ident = col.get("id") or re.sub(r"[^A-Za-z0-9_]+", "", key.replace("*", "")) + ("_median" * (agg == "median"))
        columns.append(Column(col["metric"], key, col.get("name", ident), ident, col.get("unit", ""),
                              col.get("direction"), agg, col.get("decimals", 2)))
    ids = [c.id for c in columns]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise fail("columns", f"two columns have the id {dup!r}: give one an id = \"...\"", "[[columns]]",
                   ids.index(dup) + 1)
    if kind in ("table", "figure") and not columns:
        raise fail("columns", "a table or figure needs at least one [[columns]] entry", "kind")
    return Spec(name=path.stem, path=path, kind=kind, title=data.get("title", path.stem),
                caption=data.get("caption", ""), runs=tuple(data.get("runs", [])), rows=rows,
                codecs=tuple(data.get("codecs", [])), datasets=tuple(data.get("datasets", [])),
                bitrates=tuple(data.get("bitrates", [])), columns=tuple(columns),
                formats=tuple(data.get("formats", allowed)), include=tuple(data.get("include", [])),
                split=data.get("split", False), clips=data.get("clips", 6))


def _line(raw: str, name: str, block: int | None = None) -> int | None:
    """The line where ``name = ...`` is written (a ``[[columns]]`` header: that header itself), inside the
    block-th ``[[columns]]`` table when ``block`` is given; None if it cannot be found."""
    lines = raw.splitlines()
    headers = [i for i, text in enumerate(lines) if text.strip().startswith("[[columns]]")]
    start, stop = 0, len(lines)
    if block is not None and block < len(headers):
        start = headers[block]
        stop = headers[block + 1] if block + 1 < len(headers) else len(lines)
        if name == "[[columns]]":
            return start + 1
    pattern = rf"^\s*{re.escape(name)}\s*="
    hits = [i + 1 for i in range(start, stop) if re.search(pattern, lines[i])]
    return hits[0] if hits else None


def every() -> list[str]:
    """Names of every spec that renders by itself (not ``all``), in name order."""
    names = sorted({p.stem for folder in card_dirs("reports") for p in folder.glob("*.toml")})
    return [n for n in names if load(find(n)).kind in ("table", "figure")]
