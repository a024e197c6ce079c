"""One aggregation for every renderer: per table row x metric key, the mean over utterances with a 95%
confidence interval, n, the median, the undefined count, and the row's units ok and failed.

The confidence interval is Student's t over utterances: mean +- t(0.975, n-1) * s / sqrt(n), with s the
sample standard deviation (ddof 1) and the quantile from SciPy (``scipy.special.stdtrit``, which
``scipy.stats.t.ppf`` calls); n = 1 has no interval.
Nothing is averaged silently: a unit that failed counts in ``units_failed``, an ok unit with no value
for a key counts in that cell's ``undefined`` (with the most common reason), and when the cells of one
dataset are over different utterance sets the result says so (``partial`` cells, a note); ``common``
restricts every cell to the utterances defined in all of them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from svbench.report import rows as rows_mod
from svbench.report.spec import ROW_KEYS, Column, Spec

CI_METHOD = "95% CI over utterances: Student t, mean ± t(0.975, n-1)·s/√n (scipy)"


@dataclass
class Resolved:
    """A spec column bound to one value key found in the data."""

    id: str
    name: str
    metric: str
    key: str
    unit: str
    higher_is_better: bool
    aggregate: str
    decimals: int
    stored: bool = True  # False: no run stored a value under this key (the cells say so)


@dataclass
class Result:
    spec: Spec
    row_keys: list[str]
    rows: pd.DataFrame  # row keys, bps, kbps (measured, mean over ok units), units_ok, units_failed
    cells: pd.DataFrame  # row keys, column, mean, ci_lo, ci_hi, n, median, undefined, reason, partial
    columns: list[Resolved]
    notes: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None  # the tidy rows the table is made of (after filters and --common)

    def cell(self, column: str) -> pd.DataFrame:
        """The cells of one column, in row order, aligned with ``rows``."""
        part = self.cells[self.cells.column == column]  # one cell per row, in row order (``_row``)
        return part.sort_values("_row").reset_index(drop=True)


def aggregate(frame: pd.DataFrame, info: pd.DataFrame, spec: Spec, common: bool = False) -> Result:
    """``frame``: :func:`svbench.report.tidy.load`; ``info``: :func:`svbench.report.tidy.runs` of the same runs."""
    notes: list[str] = []
    frame = rows_mod.select(frame, info, spec, notes)
    row_keys = [k for k in ROW_KEYS if k not in spec.rows and frame[k].nunique() > 1] + list(spec.rows)
    for key in row_keys[: len(row_keys) - len(spec.rows)]:
        notes.append(f"rows also split by {key}: the runs hold several")
    columns = _resolve(frame, info, spec.columns)
    if frame.empty:
        return _empty(spec, row_keys, columns, notes)
    row_of = rows_mod.row_codes(frame, row_keys)
    units = rows_mod.unit_starts(frame)
    unit_cols = list(dict.fromkeys([*row_keys, "status", "bps", "measured_bps"]))
    rows = rows_mod.rows(frame.loc[units, unit_cols], row_of[units], row_keys, spec)
    row_index = pd.Index(rows.pop("_code")).get_indexer(row_of)
    values = _values(frame, row_index, columns)
    full = values
    if common:
        values, n_common = _common(values, rows)
        notes.append(f"--common: every cell over the same utterances ({n_common} per dataset: "
                     "those defined in every cell)")
    cells = _cells(values, full, frame, row_index, rows, row_keys, columns)
    partial = cells[cells.partial & (cells.n > 0)]
    if len(partial):
        notes.append(f"{len(partial)} cell(s) over fewer utterances than others of their dataset (marked *: failed "
                     "units or undefined values); --common restricts every cell to the same utterances")
    return Result(spec, row_keys, rows, cells, columns, notes, frame)


def _empty(spec: Spec, row_keys: list[str], columns: list[Resolved], notes: list[str]) -> Result:
    wanted = [f"{name} {', '.join(values)}" for name, values in (("codecs", spec.codecs), ("datasets", spec.datasets),
                                                                  ("bitrates", spec.bitrates)) if values]
    notes.append("no rows: none of the runs has " + ("; ".join(wanted) if wanted else "any unit"))
    rows = pd.DataFrame({**{k: pd.Series(dtype=str) for k in row_keys}, "bps": pd.Series(dtype="int64"),
                         "kbps": pd.Series(dtype=float), "units_ok": pd.Series(dtype="int64"),
                         "units_failed": pd.Series(dtype="int64")})
    cells = pd.DataFrame({"_row": pd.Series(dtype="int64"), "column": pd.Series(dtype=str),
                          **{k: pd.Series(dtype=str) for k in row_keys},
                          **{c: pd.Series(dtype=float) for c in ("mean", "ci_lo", "ci_hi", "median")},
                          "n": pd.Series(dtype="int64"), "undefined": pd.Series(dtype="int64"),
                          "left_out": pd.Series(dtype="int64"),
                          "reason": pd.Series(dtype=object), "partial": pd.Series(dtype=bool)})
    return Result(spec, row_keys, rows, cells, columns, notes, None)


def _resolve(frame: pd.DataFrame, info: pd.DataFrame, columns: tuple[Column, ...]) -> list[Resolved]:
    found: list[Resolved] = []
    finite = frame.value.notna().to_numpy()
    metric_cats, key_cats = frame.metric.cat.categories, frame.key.cat.categories
    pair_codes = rows_mod.codes(frame.metric)[finite].astype(np.int64) * (len(key_cats) + 1) + \
        rows_mod.codes(frame.key)[finite]
    pairs = np.flatnonzero(np.bincount(pair_codes)) if len(pair_codes) else pair_codes  # the (metric, key) found
    keys_by_metric: dict[str, list[str]] = {}
    for pair in pairs.tolist():
        keys_by_metric.setdefault(metric_cats[pair // (len(key_cats) + 1)], []).append(
            key_cats[pair % (len(key_cats) + 1)])
    for col in columns:
        keys = sorted(k for k in keys_by_metric.get(col.metric, []) if fnmatch.fnmatchcase(k, col.key))
        hib = (col.direction == "higher") if col.direction else _higher_is_better(info, col.metric)
        for key in keys or [col.key]:
            several = len(keys) > 1
            found.append(Resolved(f"{col.id}_{key}" if several else col.id,
                                  f"{col.name} ({key})" if several else col.name,
                                  col.metric, key, col.unit, hib, col.aggregate, col.decimals, bool(keys)))
    return found


def _higher_is_better(info: pd.DataFrame, metric: str) -> bool:
    """From the metric definition the runs stored; else from the metric card's class."""
    for config in info.config:
        definition = config.get("metric_definitions", {}).get(metric)
        if definition and "higher_is_better" in definition:
            return bool(definition["higher_is_better"])
    try:
        from svbench.metrics.base import load_metric

        return bool(load_metric(metric).higher_is_better)
    except (KeyError, ImportError, ValueError):
        return True


def _values(frame: pd.DataFrame, row_index: np.ndarray, columns: list[Resolved]) -> pd.DataFrame:
    """Finite values of the resolved columns from ok units: _row, dataset, utt (codes), column (position), value."""
    ok = (frame.status == "ok").to_numpy() & frame.value.notna().to_numpy()
    metric_cats, key_cats = list(frame.metric.cat.categories), list(frame.key.cat.categories)
    metric, key = rows_mod.codes(frame.metric), rows_mod.codes(frame.key)
    utt, dataset, value = rows_mod.codes(frame.utt_id), rows_mod.codes(frame.dataset), frame.value.to_numpy()
    parts = []
    for i, col in enumerate(columns):
        if col.metric not in metric_cats or col.key not in key_cats:
            continue
        mask = ok & (metric == metric_cats.index(col.metric)) & (key == key_cats.index(col.key))
        parts.append(pd.DataFrame({"_row": row_index[mask], "dataset": dataset[mask], "utt": utt[mask], "column": i,
                                   "value": value[mask]}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("_row", "dataset", "utt", "column")}
                            ).assign(value=pd.Series(dtype="float64"))
    return pd.concat(parts, ignore_index=True)


def _common(values: pd.DataFrame, rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep, per dataset, the utterances that have a value in every non-empty cell of that dataset."""
    kept, sizes = [], []
    for _, part in values.groupby("dataset", sort=False):
        cell = part._row.to_numpy() * 10_000 + part.column.to_numpy()
        n_cells = len(np.unique(cell))
        per_utt = pd.Series(cell).groupby(part.utt.to_numpy()).nunique()
        full = per_utt.index[per_utt.to_numpy() == n_cells]
        sizes.append(len(full))
        kept.append(part[part.utt.isin(full)])
    return (pd.concat(kept, ignore_index=True) if kept else values), (min(sizes) if sizes else 0)


def _cells(values: pd.DataFrame, full: pd.DataFrame, frame: pd.DataFrame, row_index: np.ndarray,
           rows: pd.DataFrame, row_keys: list[str], columns: list[Resolved]) -> pd.DataFrame:
    """``values`` the cells are computed over; ``full`` before --common (undefined counts come from it)."""
    n_rows, n_cols = len(rows), len(columns)
    cells = pd.DataFrame({"_row": np.repeat(np.arange(n_rows), n_cols), "_col": np.tile(np.arange(n_cols), n_rows)})
    g = values.groupby(["_row", "column"]).value
    st = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std(ddof=1)})
    if any(c.aggregate == "median" for c in columns):
        st["median"] = g.median()
    st = st.reindex(pd.MultiIndex.from_arrays([cells._row, cells._col]))
    cells["column"] = [columns[i].id for i in cells._col]
    for col in row_keys:
        cells[col] = rows[col].to_numpy()[cells._row] if n_rows else []
    cells["n"] = st.n.fillna(0).astype(int).to_numpy()
    cells["mean"] = st["mean"].to_numpy()
    half = _half_width(st["std"].to_numpy(dtype=float), cells.n.to_numpy())
    cells["ci_lo"], cells["ci_hi"] = cells["mean"] - half, cells["mean"] + half
    cells["median"] = st["median"].to_numpy() if "median" in st else np.nan
    n_full = full.groupby(["_row", "column"]).value.count().reindex(
        pd.MultiIndex.from_arrays([cells._row, cells._col])).fillna(0).astype(int).to_numpy()
    cells["undefined"] = rows.units_ok.to_numpy()[cells._row] - n_full if n_rows else []
    cells["left_out"] = n_full - cells.n.to_numpy()  # by --common
    cells["reason"] = _reasons(frame, row_index, rows, cells, columns)
    # partial: fewer utterances than the union of its dataset's cells in the same column
    union = values.groupby(["dataset", "column"]).utt.nunique()
    ds_of_row = values.drop_duplicates("_row").set_index("_row").dataset
    key = pd.MultiIndex.from_arrays([ds_of_row.reindex(cells._row).to_numpy(), cells._col.to_numpy()])
    cells["partial"] = cells.n.to_numpy() < union.reindex(key).fillna(0).to_numpy()
    return cells.drop(columns=["_col"])


def _half_width(std: np.ndarray, n: np.ndarray) -> np.ndarray:
    """t(0.975, n-1)·s/√n; ``stdtrit`` is the Student t quantile function behind ``scipy.stats.t.ppf``
    (the same numbers; imported alone, without the seconds scipy.stats takes to import)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stdtrit(np.where(n > 1, n - 1, np.nan), 0.975)
        return t * std / np.sqrt(n)


def _reasons(frame: pd.DataFrame, row_index: np.ndarray, rows: pd.DataFrame, cells: pd.DataFrame,
             columns: list[Resolved]) -> list[str | None]:
    """Why a cell lacks values: the most common stored reason of its metric in that row, or what is missing."""
    metric_cats = list(frame.metric.cat.categories)
    reason_cats = list(frame.reason.cat.categories)
    metric, reason = rows_mod.codes(frame.metric).astype(np.int64), rows_mod.codes(frame.reason).astype(np.int64)
    width = len(metric_cats) + 1
    row_metric = row_index.astype(np.int64) * width + metric  # one code per (table row, metric)
    scored = set(np.unique(row_metric[metric >= 0]).tolist())
    has = reason >= 0
    common: dict[int, str] = {}
    if has.any():
        counts = pd.DataFrame({"rm": row_metric[has], "reason": reason[has]}).value_counts()
        top = counts.reset_index().drop_duplicates("rm")  # value_counts sorts by count, largest first
        common = {int(rm): reason_cats[r] for rm, r in zip(top.rm, top.reason, strict=True)}
    out: list[str | None] = []
    units_ok, units_failed = rows.units_ok.to_numpy(), rows.units_failed.to_numpy()
    for r, c, undefined in zip(cells._row.to_numpy(), cells._col.to_numpy(), cells.undefined.to_numpy(), strict=True):
        m = columns[c].metric
        code = int(r) * width + (metric_cats.index(m) if m in metric_cats else width - 1)
        if units_ok[r] == 0 and units_failed[r] == 0:
            out.append("not in these runs")
        elif undefined <= 0:
            out.append(None)
        elif not columns[c].stored and m in metric_cats and code in scored:
            out.append(f"no {columns[c].key} in these runs: {m} stored other keys")
        elif code in common:
            out.append(common[code])
        elif units_ok[r] == 0:
            out.append("no unit ok (all failed)")
        elif m not in metric_cats or code not in scored:
            out.append(f"{m} not computed in these runs")
        else:
            out.append(f"no value {columns[c].key} stored")
    return out
