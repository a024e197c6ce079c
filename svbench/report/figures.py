"""Metric-vs-bitrate figures (matplotlib, Agg): one panel per column, x = measured kbps, one line and
marker per codec with 95% CI error bars; published values (an overlay) as hollow markers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from svbench.report.aggregate import CI_METHOD, Resolved, Result
from svbench.report.overlay import Overlay

MARKERS = "osD^vP*Xh<>p"


def write(result: Result, out_dir: Path, formats: tuple[str, ...], overlay: Overlay | None = None) -> list[Path]:
    """PNG and/or PDF files: one figure with a panel per column, or one file per column (spec ``split``)."""
    if result.spec.split:
        parts = [([c], f"{result.spec.name}-{c.id}") for c in result.columns]
    else:
        parts = [(list(result.columns), result.spec.name)]
    written = []
    for cols, name in parts:
        fig = figure(result, cols, overlay)
        for fmt in formats:
            path = out_dir / f"{name}.{fmt}"
            # no creation date in the PDF: the same store gives the same file
            fig.savefig(path, dpi=120, metadata={"CreationDate": None} if fmt == "pdf" else None)
            fig.set_layout_engine("none")  # laid out once: the next format reuses the positions
            written.append(path)
    return written


def figure(result: Result, cols: list[Resolved], overlay: Overlay | None = None):  # type: ignore[no-untyped-def]
    """The matplotlib Figure (no pyplot state): a panel per column with values (axes titled by the column's
    name); the columns without any value are named in the figure's note instead of drawn empty."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    empty = [c for c in cols if not (result.cell(c.id).n > 0).any()]
    cols = [c for c in cols if c not in empty] or cols[:1]
    n = max(len(cols), 1)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.6 * nrows + 1.0), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    names = list(dict.fromkeys(_series(result)))
    if overlay is not None:
        names += sorted({c for c in overlay.table.codec if c.lower() not in {m.lower() for m in names}})
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    colors = {m.lower(): cmap(i % cmap.N) for i, m in enumerate(names)}
    handles: dict[str, object] = {}
    for ax, col in zip(axes, cols, strict=False):
        _panel(ax, result, col, overlay, handles, colors)
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    note = "error bars: " + CI_METHOD
    if empty:
        note += "\nno values in these runs: " + ", ".join(c.name for c in empty)
    if overlay is not None:
        note += f"; hollow markers: published values ({overlay.path.name}) at their nominal kbps"
    fig.suptitle(f"{result.spec.title}\n{note}" + ("".join(f"\n{n}" for n in result.notes)), fontsize=8)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncols=min(len(handles), 4), fontsize=8, frameon=False)
    return fig


def _series(result: Result) -> list[str]:
    keys = [k for k in result.row_keys if k != "bitrate"]
    return [" / ".join(str(result.rows[k].iloc[i]) for k in keys) for i in range(len(result.rows))]


def _panel(ax, result: Result, col: Resolved, overlay: Overlay | None, handles: dict,  # type: ignore[no-untyped-def]
           colors: dict) -> None:
    rows, cells = result.rows, result.cell(col.id)
    labels = _series(result)
    x = rows.kbps.to_numpy(dtype=float)
    x = np.where(np.isfinite(x), x, rows.bps.to_numpy(dtype=float) / 1000)  # precomputed files: nominal
    stat = "median" if col.aggregate == "median" else "mean"
    y = cells[stat].to_numpy(dtype=float)
    for j, label in enumerate(dict.fromkeys(labels)):
        idx = np.array([i for i, lab in enumerate(labels) if lab == label])
        idx = idx[np.argsort(x[idx], kind="stable")]
        yerr = None
        if stat == "mean":
            yerr = np.vstack([y[idx] - cells.ci_lo.to_numpy()[idx], cells.ci_hi.to_numpy()[idx] - y[idx]])
            yerr = np.where(np.isfinite(yerr), yerr, 0)
        h = ax.errorbar(x[idx], y[idx], yerr=yerr, marker=MARKERS[j % len(MARKERS)], capsize=3, linewidth=1.2,
                        markersize=5, color=colors.get(label.lower()), label=label)
        handles.setdefault(label, h)
    if overlay is not None:
        pts = overlay.points(col.metric, col.key, col.id, col.name)
        for codec, part in pts.groupby("codec", sort=True):
            part = part.sort_values("kbps")
            label = f"{codec} (published)"
            h = ax.plot(part.kbps, part.value, linestyle=":", marker="o", markerfacecolor="none", linewidth=0.8,
                        markersize=6, color=colors.get(str(codec).lower()), label=label)[0]
            handles.setdefault(label, h)
    arrow = "↑" if col.higher_is_better else "↓"
    ax.set_title(f"{col.name} {arrow}" + (f" [{col.unit}]" if col.unit else ""), fontsize=10)
    ax.set_xlabel("measured kbps")
    ax.grid(True, alpha=0.3)
