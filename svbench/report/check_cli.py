"""The ``svbench check`` command: parser, run, the table on the terminal and the JUnit XML for CI."""

from __future__ import annotations

import argparse
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from svbench.report import baseline as baseline_mod
from svbench.report import check, detect
from svbench.report.tidy import ReportError

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
LIST_ALL_UP_TO = 40  # up to this many cells, unchanged ones are listed too
COLOUR = {"regressed": "red", "missing": "red", "improved": "green", "new": "cyan", "unchanged": "default"}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("check", help="compare results with a baseline file (regression check for CI)",
                       description="Compare the results in a store with a baseline, per codec x bitrate x metric "
                       "key. Exit 1 on a regression or a missing cell, 0 otherwise, 2 on a usage error. "
                       "Method and file format: docs/check.md.")
    p.add_argument("--baseline", type=Path, required=True, help="baseline file (JSON Lines, see docs/check.md)")
    p.add_argument("--workspace", default="svbench-work", help="folder holding the run store")
    p.add_argument("--run", action="append", default=[], metavar="ID",
                   help="run id (or unique prefix) to check; repeat for several (default: every run; for a "
                   "codec@bitrate in several runs, the latest)")
    p.add_argument("--tolerance", default="", metavar="SPEC",
                   help="absolute tolerances by metric key or card name, e.g. pesq_nb=0.02,stoi=0.005 "
                   "(default: each metric card's [check] tolerance)")
    p.add_argument("--junit", type=Path, help="also write JUnit XML: one test case per cell")
    p.add_argument("--update", action="store_true", help="write the current results as the baseline (exit 0)")
    p.add_argument("--all", action="store_true", help="list unchanged cells too (default: when at most "
                   f"{LIST_ALL_UP_TO} cells)")


def parse_tolerances(spec: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, value = item.partition("=")
        try:
            tol = float(value)
        except ValueError:
            tol = math.nan
        if not sep or not name.strip() or not tol >= 0 or math.isinf(tol):
            raise ReportError(f"--tolerance {item!r}: write NAME=VALUE with a finite VALUE >= 0, "
                              "e.g. pesq_nb=0.02,stoi=0.005")
        out[name.strip()] = tol
    return out


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    try:
        return _check(args, console)
    except ReportError as err:
        console.print(f"[red]svbench check: {err}[/red]", soft_wrap=True)
        return EXIT_USAGE


def _check(args: argparse.Namespace, console: Console) -> int:
    tolerances = parse_tolerances(args.tolerance)
    current = check.load_current(Path(args.workspace) / "svbench.sqlite", args.run or None)
    old = None
    if not args.update or args.baseline.exists():
        try:
            old = baseline_mod.read(args.baseline)
        except ReportError as err:
            if not args.update:
                raise
            console.print(f"[yellow]replacing an unreadable baseline: {err}[/yellow]", soft_wrap=True)
    if old is not None:
        known = {k for _, _, m, k in old.cells} | {m for _, _, m, _ in old.cells}
        known |= {str(v) for col in ("key", "metric") for v in current.frame[col].dropna().unique()}
        unknown = sorted(set(tolerances) - known)
        if unknown:
            raise ReportError(f"--tolerance names {', '.join(unknown)}: no such metric or key in the baseline or "
                              "the current results")
        refused = check.refusals(old, current)
        if refused and not args.update:
            raise baseline_mod.BaselineError(f"{args.baseline}: refused, not compared: " + "; ".join(refused))
        if refused:
            console.print(f"[yellow]replacing, not comparing: {'; '.join(refused)}[/yellow]", soft_wrap=True)
        if not refused:
            cells = check.compare(old, current, tolerances)
            notices = current.notices + context_notices(old, current) + detect.notices(current.frame)
            report(console, cells, notices, args.baseline, args.all)
            if args.junit:
                write_junit(cells, notices, args.junit, args.baseline)
            if not args.update:
                bad = [c for c in cells if c.status in ("regressed", "missing")]
                return EXIT_FAILURES if bad else EXIT_OK
    new = check.make_baseline(current)
    baseline_mod.write(new, args.baseline)
    console.print(f"wrote {args.baseline}: {len(new.cells)} cells, {len(new.utterances)} utterances, "
                  f"runs {', '.join(r['run'] for r in new.runs)}", soft_wrap=True)
    return EXIT_OK


def _num(x: float, digits: int = 3) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1e}" if x < 0.001 else f"{x:.3f}"


def report(console: Console, cells: list[check.Cell], notices: list[tuple[str, str]], path: Path,
           show_all: bool) -> None:
    counts = {s: sum(c.status == s for c in cells) for s in check.STATUSES}
    listed = [c for c in cells if show_all or len(cells) <= LIST_ALL_UP_TO or c.status != "unchanged"]
    table = Table(title=f"svbench check against {path.name}", caption=f"change: mean paired difference; "
                  f"Wilcoxon signed-rank, Holm over {sum(not math.isnan(c.p) for c in cells)} cells, "
                  f"alpha {check.ALPHA}", title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 0))
    for col, justify in (("codec@bitrate", "left"), ("key", "left"), ("status", "left"), ("base", "right"),
                         ("now", "right"), ("change", "right"), ("tol", "right"), ("n", "right"),
                         ("p Holm", "right")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    order = {s: i for i, s in enumerate(check.STATUSES)}
    for c in sorted(listed, key=lambda c: order[c.status]):
        change = "-" if math.isnan(c.change) else f"{c.change:+.3f}"
        tol = "-" if math.isnan(c.tolerance) else f"{c.tolerance:g}"
        table.add_row(f"{c.cell[0]}@{c.cell[1]}", c.cell[3], f"[{COLOUR[c.status]}]{c.status}[/]", _num(c.base_mean),
                      _num(c.now_mean), change, tol, str(c.n), _p(c.p_holm))
    console.print(table)
    for c in cells:
        if c.reason and c.status != "new":  # unchanged cells too: utterances left out of the pairing
            console.print(f"[{COLOUR[c.status]}]{c.status} {c.name}: {c.reason}[/]", soft_wrap=True)
    for scope, reason in notices:
        console.print(f"[yellow]notice {scope}: {reason}[/yellow]", soft_wrap=True)
    console.print(", ".join(f"{counts[s]} {s}" for s in check.STATUSES) + (
        "" if len(listed) == len(cells) else " (unchanged cells not listed: --all)"), soft_wrap=True)


def write_junit(cells: list[check.Cell], notices: list[tuple[str, str]], path: Path, baseline_path: Path) -> None:
    failing = [c for c in cells if c.status in ("regressed", "missing")]
    suites = ET.Element("testsuites", name="svbench check", tests=str(len(cells)), failures=str(len(failing)))
    suite = ET.SubElement(suites, "testsuite", name=f"svbench check {baseline_path.name}", tests=str(len(cells)),
                          failures=str(len(failing)), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("baseline", baseline_path.name), ("alpha", str(check.ALPHA)),
                        ("test", "Wilcoxon signed-rank, two-sided, Holm over the compared cells")):
        ET.SubElement(props, "property", name=name, value=value)
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=f"svbench.check.{c.cell[0]}@{c.cell[1]}",
                             name=c.cell[3], time="0")
        detail = (f"status {c.status}; baseline {_num(c.base_mean, 4)}, now {_num(c.now_mean, 4)}, change "
                  f"{_num(c.change, 4)}, tolerance {c.tolerance:g}, n {c.n}, p (Holm) {_p(c.p_holm)}"
                  + (f"; {c.reason}" if c.reason else ""))
        if c.status in ("regressed", "missing"):
            ET.SubElement(case, "failure", message=f"{c.name}: {c.status}", type=c.status).text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    if notices:
        ET.SubElement(suite, "system-out").text = "\n".join(f"{s}: {r}" for s, r in notices)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def context_notices(baseline: baseline_mod.Baseline, current: check.Current) -> list[tuple[str, str]]:
    """What differs around the numbers: codec identities and package versions."""
    out = []
    now_codecs = current.frame.groupby("codec", observed=True).codec_card.unique()
    for codec, ident in baseline.codecs.items():
        if codec in now_codecs.index:
            now = ",".join(sorted(str(v) for v in now_codecs[codec] if isinstance(v, str)))
            if now != ident:
                out.append((f"codec {codec}", f"changed since the baseline (identity {ident[:12] or '-'} -> "
                            f"{now[:12] or '-'}): its cells compare the new output"))
    old: dict[str, Any] = {}
    for run in baseline.runs:
        old.update(run.get("versions", {}))
    new: dict[str, Any] = {}
    for env in current.runs.environment:
        new.update(env.get("versions", {}))
    changed = [f"{pkg} {old[pkg]} -> {new[pkg]}" for pkg in sorted(old) if pkg in new and old[pkg] != new[pkg]]
    if changed:
        out.append(("versions", "differ from the baseline's: " + ", ".join(changed)))
    return out
