"""Tables from an aggregation: CSV (tidy, machine-readable), Markdown, LaTeX (pandas Styler, booktabs)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from svbench.report.aggregate import CI_METHOD, Resolved, Result
from svbench.report.overlay import Overlay

LABELS = {"dataset": "dataset", "codec": "codec", "bitrate": "bitrate"}


def wide(result: Result, overlay: Overlay | None = None) -> pd.DataFrame:
    """The CSV form: one row per table row; per column ``<id>_mean, _ci_lo, _ci_hi, _n, _undefined,
    _left_out`` (left out by --common), ``_reason`` (a median column: ``<id>`` instead of the mean and CI);
    with an overlay ``<id>_published``, ``<id>_diff`` (ours - theirs)."""
    out = result.rows.copy()
    for col in result.columns:
        cells = result.cell(col.id)
        if col.aggregate == "median":
            out[col.id] = cells["median"].to_numpy()
        else:
            for stat in ("mean", "ci_lo", "ci_hi"):
                out[f"{col.id}_{stat}"] = cells[stat].to_numpy()
        out[f"{col.id}_n"] = cells["n"].to_numpy()
        out[f"{col.id}_undefined"] = cells["undefined"].to_numpy()
        out[f"{col.id}_left_out"] = cells["left_out"].to_numpy()
        out[f"{col.id}_reason"] = cells["reason"].to_numpy()
        if overlay is not None:
            theirs = overlay.lookup(result, col)
            ours = out[col.id] if col.aggregate == "median" else out[f"{col.id}_mean"]
            out[f"{col.id}_published"] = theirs
            out[f"{col.id}_diff"] = ours - theirs
    return out


def write_csv(result: Result, path: Path, overlay: Overlay | None = None) -> Path:
    wide(result, overlay).to_csv(path, index=False, float_format="%.6g")
    return path


def empty_column(cells: pd.DataFrame) -> str | None:
    """The one reason when no cell of a column has a value (said once under the table, not in each cell)."""
    reasons = set(cells.reason.dropna())
    return reasons.pop() if len(cells) and (cells.n == 0).all() and len(reasons) == 1 else None


def _value(c: dict, col: Resolved, tex: bool = False, quiet: bool = False) -> str:
    """One cell's text: mean ± half-width (or the median), * when partial; an empty cell's reason unless
    ``quiet`` (the column's one reason is said under the table)."""
    if c["n"] == 0:
        return "--" if tex else "–" if not c["reason"] or quiet else f"– ({c['reason']})"
    d = col.decimals
    if col.aggregate == "median":
        text = f"{c['median']:.{d}f}"
    else:
        half = (c["ci_hi"] - c["ci_lo"]) / 2
        pm = r" $\pm$ " if tex else " ± "
        text = f"{c['mean']:.{d}f}" + (f"{pm}{half:.{d}f}" if math.isfinite(half) else "")
    mark = "*" if c["partial"] else ""
    return text + mark + (f" (n={c['n']})" if (c["undefined"] or c["left_out"]) and not tex else "")


def texts(result: Result, col: Resolved, tex: bool = False) -> list[str]:
    cells = result.cell(col.id)
    quiet = empty_column(cells) is not None
    return [_value(c, col, tex, quiet) for c in cells.to_dict("records")]


def _arrow(col: Resolved, tex: bool) -> str:
    if tex:
        return r"$\uparrow$" if col.higher_is_better else r"$\downarrow$"
    return "↑" if col.higher_is_better else "↓"


def _header(col: Resolved, tex: bool = False) -> str:
    unit = f" [{col.unit}]" if col.unit else ""
    name = _tex_escape(col.name) if tex else col.name
    return f"{name}{unit} {_arrow(col, tex)}"


def _row_labels(result: Result, tex: bool = False) -> pd.DataFrame:
    labels = result.rows[result.row_keys].copy()
    labels["kbps"] = [f"{k:.2f}" if np.isfinite(k) else "–" for k in result.rows.kbps]
    labels["ok/failed"] = [f"{o}/{f}" for o, f in zip(result.rows.units_ok, result.rows.units_failed, strict=True)]
    if tex:
        labels = labels.map(_tex_escape)
    return labels


def footer(result: Result) -> list[str]:
    lines = [f"{CI_METHOD}; n = utterances with a value; kbps = measured bitrate (mean over ok units)."]
    medians = [c.name for c in result.columns if c.aggregate == "median"]
    if medians:
        lines.append(f"Median over utterances (no interval): {', '.join(medians)}.")
    for col in result.columns:
        why = empty_column(result.cell(col.id))
        if why:
            lines.append(f"{col.name}: no values ({why}).")
    return lines + result.notes


def markdown(result: Result, overlay: Overlay | None = None) -> str:
    table = _row_labels(result)
    for col in result.columns:
        cells = result.cell(col.id)
        table[_header(col)] = texts(result, col)
        if overlay is not None:
            theirs = overlay.lookup(result, col)
            ours = cells["median" if col.aggregate == "median" else "mean"].to_numpy()
            table[f"{col.name} published"] = [_num(v, col.decimals) for v in theirs]
            table[f"Δ {col.name}"] = [_num(v, col.decimals, sign=True) for v in ours - theirs]
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if c in result.row_keys else "---:" for c in table.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    if not body:
        body = ["| " + " | ".join(["(no rows: none of the runs has these codecs, datasets or bitrates)"]
                                  + [""] * (len(table.columns) - 1)) + " |"]
    text = [f"### {result.spec.title}", "", head, rule, *body, ""]
    return "\n".join(text + [f"- {line}" for line in footer(result)]) + "\n"


def _num(v: float, d: int, sign: bool = False) -> str:
    return "–" if not np.isfinite(v) else f"{v:+.{d}f}" if sign else f"{v:.{d}f}"


def latex(result: Result, overlay: Overlay | None = None) -> str:
    table = _row_labels(result, tex=True)
    bold: dict[str, list[bool]] = {}
    for col in result.columns:
        cells = result.cell(col.id)
        head = _header(col, tex=True)
        table[head] = texts(result, col, tex=True)
        stat = cells["median" if col.aggregate == "median" else "mean"].to_numpy(dtype=float)
        finite = np.isfinite(stat)
        best = (stat[finite].max() if col.higher_is_better else stat[finite].min()) if finite.any() else np.nan
        bold[head] = list(finite & (stat == best))
        if overlay is not None:
            theirs = overlay.lookup(result, col)
            table[f"{_tex_escape(col.name)} pub."] = [_num(v, col.decimals) for v in theirs]
            table[rf"$\Delta$ {_tex_escape(col.name)}"] = [_num(v, col.decimals, sign=True) for v in stat - theirs]
    styler = table.style.hide(axis="index")
    for head, flags in bold.items():
        styler = styler.apply(lambda _c, f=flags: ["textbf:--rwrap;" if b else "" for b in f], subset=[head])
    caption = _tex_escape(f"{result.spec.title}. {' '.join(footer(result))}")
    fmt = "l" * len(result.row_keys) + "r" * (len(table.columns) - len(result.row_keys))
    return styler.to_latex(hrules=True, caption=caption, column_format=fmt, position_float="centering",
                           label=f"tab:{result.spec.name}")


_TEX = {"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "±": r"$\pm$", "√": r"$\surd$", "·": r"$\cdot$",
        "–": "--"}


def _tex_escape(text: object) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))
