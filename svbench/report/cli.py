"""``svbench report NAME`` and ``svbench runs``: tables, figures and a listening page from the store."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from svbench.report import spec as spec_mod
from svbench.report import tidy
from svbench.report.tidy import ReportError

COMMANDS = ("report", "runs")


def add_parsers(sub: Any) -> None:
    rep = sub.add_parser("report", help="render a report spec (table, figure, listening page) from the store")
    rep.add_argument("name", help="spec name in ./reports or the shipped ones (table1, table2, table3, table5, "
                     "fig-bitrate, html, all), or a path to a .toml spec")
    rep.add_argument("--workspace", default="svbench-work", help="folder holding the store (svbench.sqlite)")
    rep.add_argument("--run", action="append", default=[], metavar="ID",
                     help="use this run (repeat for several; a unique prefix is enough); default: the spec's, "
                     "else every run in the workspace")
    rep.add_argument("-o", "--output", type=Path, help="output folder (default: WORKSPACE/reports)")
    rep.add_argument("--format", help="comma separated: csv,md,tex for tables, png,pdf for figures "
                     "(default: the spec's)")
    rep.add_argument("--common", action="store_true",
                     help="restrict every cell to the utterances defined in all cells of its dataset")
    rep.add_argument("--overlay", type=Path, metavar="FILE.csv",
                     help="published values (metric,codec,kbps,value[,source]) to draw and compare against")
    runs = sub.add_parser("runs", help="list the runs in a workspace")
    runs.add_argument("--workspace", default="svbench-work")


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        return cmd_report(args, console) if args.command == "report" else cmd_runs(args)
    except ReportError as err:
        console.print(f"svbench {args.command}: {err}", style="red", markup=False, highlight=False, soft_wrap=True)
        return 2


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from svbench.report.overlay import Overlay

    spec = spec_mod.load(spec_mod.find(args.name))
    store = Path(args.workspace) / "svbench.sqlite"
    formats = tuple(f.strip() for f in (args.format or "").split(",") if f.strip())
    known = spec_mod.TABLE_FORMATS + spec_mod.FIGURE_FORMATS
    bad = [f for f in formats if f not in known]
    if bad:
        raise ReportError(f"--format {bad[0]!r}: not one of {', '.join(known)}")
    specs = _expand(spec)
    overlay = Overlay(args.overlay) if args.overlay else None
    info = tidy.runs(store, args.run or list(spec.runs) or None)
    frame = tidy.load(store, info.run_id.tolist())
    out = args.output or Path(args.workspace) / "reports" / ("html" if spec.kind == "html" else "")
    out.mkdir(parents=True, exist_ok=True)
    written = render_all(specs, (frame, info, out, formats, args.common, overlay, store))
    sounds = [p for p in written if p.suffix == ".wav"]
    for path in written:
        if path.suffix != ".wav":
            console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    if sounds:
        console.print(f"wrote {len(sounds)} audio files under {sounds[0].parent.parent}", markup=False,
                      highlight=False, soft_wrap=True)
    return 0


_SHARED: tuple[Any, ...] = ()  # what a forked figure process inherits (never pickled)


def render_all(specs: list[spec_mod.Spec], shared: tuple[Any, ...]) -> list[Path]:
    """Every spec's files, in spec order. With several specs on Linux the figures are drawn in one forked
    process while this one writes the tables (the frame is inherited, not copied): two cores, less wall time."""
    global _SHARED
    figures = [i for i, s in enumerate(specs) if s.kind == "figure"]
    if len(specs) < 2 or not figures or sys.platform != "linux" or (os.cpu_count() or 1) < 2:
        return [p for s in specs for p in render(s, *shared)]
    _SHARED = shared
    done: dict[int, list[Path]] = {}
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            pending = {i: pool.submit(_render_inherited, specs[i]) for i in figures}
            for i, s in enumerate(specs):
                if i not in pending:
                    done[i] = render(s, *shared)
            done.update({i: f.result() for i, f in pending.items()})
    finally:
        _SHARED = ()
    return [p for i in range(len(specs)) for p in done[i]]


def _render_inherited(spec: spec_mod.Spec) -> list[Path]:
    return render(spec, *_SHARED)


def _expand(spec: spec_mod.Spec) -> list[spec_mod.Spec]:
    """``all``: every table and figure spec (or its ``include`` list); others: the spec itself."""
    if spec.kind != "all":
        return [spec]
    names = list(spec.include) or spec_mod.every()
    return [spec_mod.load(spec_mod.find(n)) for n in names]


def render(spec: spec_mod.Spec, frame: Any, info: Any, out: Path, formats: tuple[str, ...], common: bool,
           overlay: Any, store: Path) -> list[Path]:
    from svbench.report import aggregate
    from svbench.report import render as tables

    if spec.kind == "html":
        from svbench.report import html

        return html.write(spec, frame, info, out, common, overlay, store)
    result = aggregate.aggregate(frame, info, spec, common)
    if spec.kind == "figure":
        from svbench.report import figures

        chosen = tuple(f for f in formats if f in spec_mod.FIGURE_FORMATS) or spec.formats
        return figures.write(result, out, chosen, overlay)
    chosen = tuple(f for f in formats if f in spec_mod.TABLE_FORMATS) or spec.formats
    written = []
    for fmt in chosen:
        path = out / f"{spec.name}.{fmt}"
        if fmt == "csv":
            tables.write_csv(result, path, overlay)
        else:
            text = tables.markdown(result, overlay) if fmt == "md" else tables.latex(result, overlay)
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def cmd_runs(args: argparse.Namespace) -> int:
    store = Path(args.workspace) / "svbench.sqlite"
    info = tidy.runs(store)
    db = tidy.connect(store)
    try:
        units = db.execute("SELECT run_id, codec, bitrate, MAX(nominal_bps), SUM(status = 'ok'), "
                           "SUM(status = 'error') FROM units GROUP BY run_id, codec, bitrate").fetchall()
    finally:
        db.close()
    table = Table(title=f"runs in {store}", show_lines=True, expand=False)
    table.add_column("run / date", no_wrap=True)
    table.add_column("dataset", overflow="fold")
    table.add_column("codec: bitrates", overflow="fold")
    table.add_column("metrics", overflow="fold")
    table.add_column("units ok / failed", justify="right", min_width=9)
    for r in info.itertuples():
        mine = sorted((u for u in units if u[0] == r.run_id), key=lambda u: (u[1], u[3] or 0))
        grid: dict[str, list[str]] = {}
        for _, codec, bitrate, *_rest in mine:
            grid.setdefault(codec, []).append(bitrate)
        ok, failed = sum(u[4] for u in mine), sum(u[5] for u in mine)
        table.add_row(f"{r.run_id}\n{str(r.created)[:16].replace('T', ' ')}", r.dataset,
                      "\n".join(f"{c}: {', '.join(b)}" for c, b in grid.items()) or "(no units yet)",
                      ", ".join(r.config.get("metrics", [])), f"{ok} / {failed}")
    Console().print(table)
    return 0
