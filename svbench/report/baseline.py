"""The baseline file of ``svbench check``: per-utterance values, card hashes, versions (docs/check.md).

JSON Lines, so that a change shows in a diff as the lines of the cells it moved, and so that an error
can name its line. Each line is one JSON object; the field it starts with says what it is:

- ``{"baseline": 1, "svbench": ..., "datasets": [...], "alpha": ...}``: line 1, the format version;
- ``{"run": ID, "git_commit": ..., "python": ..., "versions": {...}}``: the runs it was made from;
- ``{"utterances": [...]}``: every utterance id, sorted; cells list their values in this order;
- ``{"metric": NAME, "card_sha256": ..., "keys": {KEY: {"higher_is_better": ..., "tolerance": ...}}}``;
- ``{"codec": NAME, "identity": ...}``: the codec's identity hash (card sha256, plus a checkpoint's);
- ``{"cell": "codec@bitrate key", "codec", "bitrate", "bps", "metric", "key", "values": [...]}``: one
  value per utterance, ``null`` where the utterance has none (failed unit, undefined metric, not run).

Floats are written in full (Python's shortest round-trip form), so a value read back is the value stored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svbench.report.tidy import ReportError

FORMAT_VERSION = 1
CellKey = tuple[str, str, str, str]  # codec, bitrate, metric, key


class BaselineError(ReportError):
    """A baseline that cannot be read or compared (exit 2); the message names the file, line and field."""


@dataclass
class Baseline:
    header: dict[str, Any]
    runs: list[dict[str, Any]]
    utterances: list[str]
    metrics: dict[str, dict[str, Any]]  # name -> {"card_sha256": str, "keys": {key: {higher_is_better, tolerance}}}
    codecs: dict[str, str]  # codec label -> identity hash ("" for precomputed files)
    cells: dict[CellKey, np.ndarray] = field(default_factory=dict)  # values aligned with utterances, NaN = none
    bps: dict[tuple[str, str], int] = field(default_factory=dict)
    path: Path | None = None

    def key_info(self, metric: str, key: str) -> dict[str, Any]:
        return dict(self.metrics.get(metric, {}).get("keys", {}).get(key, {}))


def cell_name(cell: CellKey) -> str:
    codec, bitrate, _metric, key = cell
    return f"{codec}@{bitrate} {key}"


# ---------------------------------------------------------------- writing


def dumps(b: Baseline) -> str:
    lines = [{"baseline": FORMAT_VERSION, **b.header}]
    lines += [{"run": r["run"], **{k: v for k, v in r.items() if k != "run"}} for r in b.runs]
    lines.append({"utterances": b.utterances})
    lines += [{"metric": name, **info} for name, info in sorted(b.metrics.items())]
    lines += [{"codec": name, "identity": ident} for name, ident in sorted(b.codecs.items())]
    for cell in sorted(b.cells, key=lambda c: (c[0], b.bps.get((c[0], c[1]), 0), c[1], c[2], c[3])):
        codec, bitrate, metric, key = cell
        values = [None if math.isnan(v) else v for v in b.cells[cell].tolist()]
        lines.append({"cell": cell_name(cell), "codec": codec, "bitrate": bitrate,
                      "bps": b.bps.get((codec, bitrate), 0), "metric": metric, "key": key, "values": values})
    return "".join(json.dumps(line, allow_nan=False) + "\n" for line in lines)


def write(b: Baseline, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(b), encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- reading


def read(path: Path) -> Baseline:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: no baseline file here (make one with `svbench check --update`)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise BaselineError(f"{path}: cannot read the baseline ({err})") from None
    parser = _Parser(path)
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            parser.line(number, line)
    return parser.finish()


_KINDS = ("baseline", "run", "utterances", "cell", "metric", "codec")


class _Parser:
    def __init__(self, path: Path):
        self.path = path
        self.b = Baseline(header={}, runs=[], utterances=[], metrics={}, codecs={}, path=path)
        self.seen_header = False
        self.seen_utterances = False
        self.where = ""

    def fail(self, field_name: str, why: str) -> BaselineError:
        return BaselineError(f"{self.path} line {self.where}: field {field_name!r}: {why}")

    def get(self, obj: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in obj:
            raise self.fail(name, "missing")
        value = obj[name]
        if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(name, f"must be {want}, not {type(value).__name__} ({value!r:.60})")
        return value

    def line(self, number: int, text: str) -> None:
        self.where = str(number)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise BaselineError(f"{self.path} line {number}: not JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise BaselineError(f"{self.path} line {number}: not a JSON object")
        kind = next((k for k in _KINDS if k in obj), None)
        if not self.seen_header and kind != "baseline":
            raise self.fail("baseline", "missing: line 1 must be the header {\"baseline\": 1, ...} "
                            "(is this an svbench baseline?)")
        if kind is None:
            raise BaselineError(f"{self.path} line {number}: no field says what the line is "
                                f"(one of {', '.join(_KINDS)})")
        getattr(self, f"_{kind}")(obj)

    def _baseline(self, obj: dict[str, Any]) -> None:
        if self.seen_header:
            raise self.fail("baseline", "a second header line")
        version = self.get(obj, "baseline", int)
        if version != FORMAT_VERSION:
            raise self.fail("baseline", f"format version {version}; this svbench reads version {FORMAT_VERSION}")
        self.seen_header = True
        self.b.header = {k: v for k, v in obj.items() if k != "baseline"}

    def _run(self, obj: dict[str, Any]) -> None:
        self.get(obj, "run", str)
        self.get(obj, "versions", dict)
        self.b.runs.append(obj)

    def _utterances(self, obj: dict[str, Any]) -> None:
        if self.seen_utterances:
            raise self.fail("utterances", "a second utterances line")
        utts = self.get(obj, "utterances", list)
        bad = next((u for u in utts if not isinstance(u, str)), None)
        if bad is not None:
            raise self.fail("utterances", f"ids must be strings, found {bad!r}")
        if len(set(utts)) != len(utts):
            raise self.fail("utterances", "an utterance id is listed twice")
        self.b.utterances = utts
        self.seen_utterances = True

    def _metric(self, obj: dict[str, Any]) -> None:
        name = self.get(obj, "metric", str)
        self.get(obj, "card_sha256", str)
        keys = self.get(obj, "keys", dict)
        for key, info in keys.items():
            if not isinstance(info, dict):
                raise self.fail(f"keys.{key}", "must be an object {higher_is_better, tolerance}")
            self.get(info, "higher_is_better", bool)
            tol = self.get(info, "tolerance", (int, float))
            if not tol >= 0:
                raise self.fail(f"keys.{key}.tolerance", f"must be >= 0, not {tol}")
        self.b.metrics[name] = {k: v for k, v in obj.items() if k != "metric"}

    def _codec(self, obj: dict[str, Any]) -> None:
        self.b.codecs[self.get(obj, "codec", str)] = self.get(obj, "identity", str)

    def _cell(self, obj: dict[str, Any]) -> None:
        if not self.seen_utterances:
            raise self.fail("cell", "a cell before the utterances line")
        codec, bitrate = self.get(obj, "codec", str), self.get(obj, "bitrate", str)
        metric, key = self.get(obj, "metric", str), self.get(obj, "key", str)
        bps = self.get(obj, "bps", int)
        values = self.get(obj, "values", list)
        if len(values) != len(self.b.utterances):
            raise self.fail("values", f"{len(values)} values, but the utterances line lists "
                            f"{len(self.b.utterances)} utterances")
        try:
            array = np.array(values, dtype=np.float64)  # null -> NaN
        except (TypeError, ValueError):
            bad = next(v for v in values if v is not None and not isinstance(v, int | float))
            raise self.fail("values", f"values must be numbers or null, found {bad!r:.40}") from None
        if metric not in self.b.metrics or key not in self.b.metrics[metric]["keys"]:
            raise self.fail("key", f"{metric}/{key} has no 'metric' line declaring it (card hash, direction, "
                            "tolerance)")
        cell = (codec, bitrate, metric, key)
        if cell in self.b.cells:
            raise self.fail("cell", f"{cell_name(cell)} is listed twice")
        self.b.cells[cell] = array
        self.b.bps[(codec, bitrate)] = bps

    def finish(self) -> Baseline:
        self.where = "end"
        if not self.seen_header:
            raise BaselineError(f"{self.path}: empty file, not a baseline")
        if not self.seen_utterances:
            raise self.fail("utterances", "no utterances line")
        return self.b
