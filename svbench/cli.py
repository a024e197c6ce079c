"""The ``svbench`` command."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from svbench import dask_cluster, demo, engine, importers
from svbench import manifest as manifest_mod
from svbench.bitrate import parse_list
from svbench.cards import all_cards
from svbench.executor import make_executor
from svbench.manifest import ManifestError
from svbench.metrics.base import MetricUnavailable, metric_status
from svbench.neural import cli as neural_cli
from svbench.store import Store

EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
# named metric sets; "paper" is the SVCODEC paper's eight (Tables I-III)
METRIC_SETS = {"paper": ("pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd")}


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _metric_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    for name in _csv(text):
        names += [n for n in METRIC_SETS.get(name, (name,)) if n not in names]
    return tuple(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svbench", description="Evaluate and benchmark low-bitrate speech codecs.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="encode/decode a dataset with codecs at bitrates and score the output")
    run.add_argument("--codec", default="opus", help="codec card name(s), comma separated, or 'precomputed'")
    run.add_argument("--bitrate", default="", help="bitrate(s) as 3k, 0.5k, 6000 (comma separated); "
                     "default: the codec's own operating points")
    run.add_argument("--dataset", help="manifest CSV (id,path,...); default: the embedded demo set")
    run.add_argument("--metrics", default="pesq,stoi",
                     help="metric card names, comma separated, or 'paper' (the SVCODEC paper's eight)")
    run.add_argument("--decoded", action="append", default=[],
                     help="folder of already-decoded files (with --codec precomputed); repeat for several codecs")
    run.add_argument("--label", help="name for the precomputed codec in results (default: folder name)")
    run.add_argument("--eval-sr", type=int,
                     help="compare at this rate (default: the lower of reference and codec rate)")
    run.add_argument("--align", choices=["envelope", "none"], default="envelope", help="delay compensation")
    run.add_argument("--crop-reference", action="store_true",
                     help="decoded files are cropped excerpts: compare against the same span of the reference")
    run.add_argument("--skip-missing", action="store_true",
                     help="precomputed: utterances without a decoded file are noted and left out, not failed")
    run.add_argument("--workspace", default="svbench-work", help="folder holding the SQLite store and the cache")
    run.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    run.add_argument("--executor", choices=["local", "dask"], help="local: this process (--workers 1) or a "
                     "process pool; dask: a Dask LocalCluster of --workers processes (see docs/scaling.md)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="evaluate on the Dask cluster of this "
                     "scheduler, e.g. one from `svbench cluster slurm` (default: $SVBENCH_SCHEDULER)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    run.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")

    neural_cli.add_build_parser(sub)
    dask_cluster.add_cluster_parser(sub)

    lst = sub.add_parser("list", help="what is available on this machine")
    lst.add_argument("what", choices=["codecs", "metrics", "datasets"])

    data = sub.add_parser("data", help="dataset manifests")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    imp = data_sub.add_parser("import", help="make a manifest from a corpus' on-disk layout")
    imp.add_argument("corpus", choices=sorted(importers.IMPORTERS))
    imp.add_argument("root", type=Path)
    imp.add_argument("-o", "--output", type=Path, default=Path("manifest.csv"))

    exp = sub.add_parser("export", help="export a run's per-utterance results and summary")
    exp.add_argument("--run", help="run id (default: the latest)")
    exp.add_argument("--workspace", default="svbench-work")
    exp.add_argument("--format", choices=["csv", "parquet"], default="csv")
    exp.add_argument("-o", "--output", type=Path, default=None, help="folder (default: WORKSPACE/runs/RUN)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "cluster":
            return dask_cluster.cmd_cluster(args, console)
        if args.command == "build":
            return neural_cli.cmd_build(args, console)
        if args.command == "list":
            return cmd_list(args.what, console)
        if args.command == "data":
            n = importers.IMPORTERS[args.corpus](args.root, args.output)
            console.print(f"wrote {n} utterances to {args.output}")
            return EXIT_OK
        if args.command == "export":
            return cmd_export(args, console)
    except (ManifestError, MetricUnavailable, ValueError, KeyError, FileNotFoundError) as err:
        console.print(f"[red]svbench: {err}[/red]")
        return EXIT_USAGE
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    dataset = args.dataset
    if dataset is None:
        dataset = str(demo.build())
        console.print(f"[yellow]No --dataset: using the embedded DEMO set ({dataset}). "
                      "Demo numbers are for trying svbench out; never report them.[/yellow]")
    bitrates = tuple(b.label for b in parse_list(args.bitrate))
    spec = engine.RunSpec(dataset=dataset, codecs=_csv(args.codec), bitrates=bitrates,
                          metrics=_metric_names(args.metrics),
                          decoded=tuple(args.decoded), label=args.label, eval_sr=args.eval_sr, align=args.align,
                          crop_reference=args.crop_reference, skip_missing=args.skip_missing,
                          workspace=args.workspace)
    executor = make_executor(args.workers, args.executor, args.scheduler)
    show = not (args.quiet or args.json)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        disable=not show)
    bar: dict[str, Any] = {}
    with progress:
        outcome = engine.execute(
            spec, executor,
            on_start=lambda n: bar.setdefault("id", progress.add_task("evaluating", total=n)),
            on_unit=lambda _r: progress.advance(bar["id"]),
        )
    store = Store(outcome.store_path)
    try:
        results = store.results(outcome.run_id)
        scores = store.frame("scores", outcome.run_id)
        counts = store.counts(outcome.run_id)
    finally:
        store.close()
    summary = engine.summarize(results)
    out_dir = Path(args.workspace) / "runs" / outcome.run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    results.to_csv(out_dir / "results.csv", index=False)
    summary.to_csv(out_dir / "summary.csv", index=False)
    failures = list(engine.iter_failures(results, scores))
    if args.json:
        print(json.dumps({
            "run_id": outcome.run_id, "resumed": outcome.resumed, "store": str(outcome.store_path),
            "results_csv": str(out_dir / "results.csv"), "planned_units": outcome.planned,
            "already_done": outcome.skipped_done, "computed": outcome.computed, "rows": counts,
            "failures": len(failures), "wall_s": round(outcome.wall_s, 2),
            "notices": [{"scope": s, "reason": r} for s, r in outcome.notices],
            "summary": _records(summary),
        }, indent=2))
    elif not args.quiet:
        for scope, reason in outcome.notices[:8]:
            console.print(f"[yellow]{scope}: {reason}[/yellow]")
        if len(outcome.notices) > 8:
            more = len(outcome.notices) - 8
            console.print(f"[yellow]... and {more} more notices (table 'notices' in the store)[/yellow]")
        console.print(summary_table(summary))
        for line in failures[:20]:
            console.print(f"[red]{line}[/red]")
        if len(failures) > 20:
            console.print(f"[red]... and {len(failures) - 20} more (see results.csv)[/red]")
        verb = "resumed" if outcome.resumed else "new"
        console.print(f"run {outcome.run_id} ({verb}): {outcome.computed} units computed, "
                      f"{outcome.skipped_done} already stored, {outcome.wall_s:.1f} s")
        console.print(f"store: {outcome.store_path}   results: {out_dir}/results.csv   summary: {out_dir}/summary.csv")
    return EXIT_FAILURES if failures else EXIT_OK


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def summary_table(summary: Any) -> Table:
    table = Table(title="svbench summary: means over utterances; kbps measured; delay median and IQR")
    if summary.empty:
        return table
    columns = [c for c in summary.columns if not c.endswith("_n")]
    for col in columns:
        table.add_column(col, justify="left" if col in ("codec", "bitrate") else "right")
    for row in summary.to_dict("records"):
        table.add_row(*[_fmt(row[c]) for c in columns])
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def cmd_list(what: str, console: Console) -> int:
    table = Table(title=f"svbench {what}")
    if what == "codecs":
        for col in ("codec", "status", "bitrates", "description / how to install"):
            table.add_column(col)
        for name, card in sorted(all_cards("codecs").items()):
            try:
                codec = engine.make_codec(card)
                reason = codec.unavailable_reason()
                rates = ", ".join(b.label for b in codec.bitrates())
            except (KeyError, ImportError) as err:
                reason, rates = str(err), ""
            table.add_row(name, "unavailable" if reason else "ok", rates, reason or card.data.get("description", ""))
        table.add_row(engine.PRECOMPUTED, "ok", "from folder names", "already-decoded files: --decoded DIR")
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
    Console().print(table)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    store = Store(Path(args.workspace) / "svbench.sqlite")
    try:
        run_id = args.run or store.latest_run()
        if run_id is None:
            console.print(f"[red]no runs in {store.path}[/red]")
            return EXIT_USAGE
        results = store.results(run_id)
        scores = store.frame("scores", run_id)
    finally:
        store.close()
    out = args.output or Path(args.workspace) / "runs" / run_id
    out.mkdir(parents=True, exist_ok=True)
    tables = {"results": results, "scores": scores, "summary": engine.summarize(results)}
    for name, frame in tables.items():
        target = out / f"{name}.{args.format}"
        if args.format == "csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_parquet(target, index=False)
        console.print(f"wrote {target} ({len(frame)} rows)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
