"""The ``svbench`` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from svbench import dask_cluster, demo, engine, importers, render
from svbench.bitrate import parse_list
from svbench.executor import make_executor
from svbench.manifest import ManifestError
from svbench.metrics.base import MetricUnavailable
from svbench.neural import cli as neural_cli
from svbench.report import check_cli, detect, tidy
from svbench.report import cli as report_cli
from svbench.store import Store

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# named metric sets; "paper" is the SVCODEC paper's eight (Tables I-III)
METRIC_SETS: dict[str, tuple[str, ...]] = {"paper": ("pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd",
                                                    "mcd")}
METRIC_SETS["paper+asr"] = (*METRIC_SETS["paper"], "wer", "cer", "spk-sim", "plcmos")  # beyond the paper (opt-in)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _metric_names(text: str) -> tuple[str, ...]:
    names: list[str] = []
    for name in _csv(text):
        names += [n for n in METRIC_SETS.get(name, (name,)) if n not in names]
    return tuple(names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svbench", description="Evaluate and benchmark low-bitrate speech codecs.")
    parser.add_argument("--version", action="version", version=f"svbench {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="encode/decode a dataset with codecs at bitrates and score the output")
    run.add_argument("--codec", help="codec card name(s), comma separated, or 'precomputed' (default: opus, "
                     "or the codecs named by --grid)")
    run.add_argument("--bitrate", default="", help="bitrate(s) as 3k, 0.5k, 6000, 3kbps (comma separated); "
                     "default: the codec's own operating points")
    run.add_argument("--grid", action="append", default=[], metavar="CODEC=B1,B2",
                     help="a codec with its own bitrates, e.g. --grid opus=6k,8k --grid codec2=1.2k,3.2k; repeat")
    run.add_argument("--dataset", help="manifest CSV (id,path,...), a folder holding manifest.csv, or a name "
                     "from `svbench list datasets`; default: the embedded demo set")
    run.add_argument("--metrics", default="pesq,stoi",
                     help="metric card names, comma separated, or 'paper' (the SVCODEC paper's eight)")
    run.add_argument("--decoded", action="append", default=[],
                     help="folder of already-decoded files (with --codec precomputed); repeat for several codecs")
    run.add_argument("--label", help="name for the precomputed codec in results (default: folder name)")
    run.add_argument("--label-from", metavar="REGEX", help="precomputed: name each --decoded folder's codec by "
                     r"this pattern's first group, e.g. '^\d+ (.+)' turns a demo page's '3 Codec2' into 'Codec2'")
    run.add_argument("--eval-sr", type=int,
                     help="compare at this rate (default: the lower of reference and codec rate)")
    run.add_argument("--align", choices=["envelope", "none"], default="envelope", help="delay compensation")
    run.add_argument("--crop-reference", action="store_true",
                     help="decoded files are cropped excerpts: compare against the same span of the reference")
    run.add_argument("--skip-missing", action="store_true",
                     help="precomputed: utterances without a decoded file are noted and left out, not failed")
    run.add_argument("--workspace", default="svbench-work", help="folder holding the SQLite store and the cache")
    run.add_argument("--no-retry", action="store_true",
                     help="on a resumed run, keep units that failed before instead of computing them again")
    run.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    run.add_argument("--executor", choices=["local", "dask"], help="local: this process (--workers 1) or a "
                     "process pool; dask: a Dask LocalCluster of --workers processes (see docs/scaling.md)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="evaluate on the Dask cluster of this "
                     "scheduler, e.g. one from `svbench cluster slurm` (default: $SVBENCH_SCHEDULER)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or table")
    run.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")

    neural_cli.add_build_parser(sub)
    check_cli.add_parser(sub)
    report_cli.add_parsers(sub)
    dask_cluster.add_cluster_parser(sub)

    lst = sub.add_parser("list", help="what is available on this machine")
    lst.add_argument("what", choices=["codecs", "metrics", "datasets"])

    data = sub.add_parser("data", help="dataset manifests")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    imp = data_sub.add_parser("import", help="make a manifest from a corpus' on-disk layout")
    imp.add_argument("corpus", choices=sorted(importers.IMPORTERS))
    imp.add_argument("root", type=Path)
    imp.add_argument("-o", "--output", type=Path, default=Path("manifest.csv"))
    imp.add_argument("--absolute", action="store_true",
                     help="write absolute paths (default: relative to the manifest's folder)")

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
            if not args.root.is_dir():
                raise FileNotFoundError(f"{args.root}: does not exist (or is not a folder)")
            n = importers.IMPORTERS[args.corpus](args.root, args.output, absolute=args.absolute)
            console.print(f"wrote {n} utterances to {args.output}")
            return EXIT_OK
        if args.command == "export":
            return cmd_export(args, console)
        if args.command == "check":
            return check_cli.cmd_check(args, console)
        if args.command in report_cli.COMMANDS:
            return report_cli.run(args, console)
    except engine.Interrupted as err:
        render.say(console, f"svbench: {err}", "yellow")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # before a run's first unit (planning, waiting for another process's run)
        render.say(console, "svbench: interrupted before any unit was computed", "yellow")
        return EXIT_INTERRUPTED
    except (ManifestError, MetricUnavailable, ValueError, KeyError, FileNotFoundError) as err:
        render.say(console, f"svbench: {err.args[0] if isinstance(err, KeyError) else err}", "red")
        return EXIT_USAGE
    return EXIT_USAGE


def _version() -> str:
    from importlib.metadata import version

    return version("svbench")


def _dataset(text: str | None, console: Console) -> str:
    """A manifest path, a folder holding manifest.csv, or a name that `svbench list datasets` prints."""
    if text is None:
        path = str(demo.build())
        render.say(console, f"No --dataset: using the embedded DEMO set ({path}). "
            "Demo numbers are for trying svbench out; never report them.", "yellow")
        return path
    given = Path(text)
    if given.is_dir() and (given / "manifest.csv").is_file():
        return str(given / "manifest.csv")
    if given.exists() or given.suffix.lower() == ".csv" or "/" in text:
        return text
    known = importers.known_datasets()
    if text in known:
        return str(known[text])
    raise ManifestError(f"{text}: no such manifest file, folder or dataset name "
                        f"(known names: {', '.join(sorted(known))}; see `svbench list datasets`)")


def _grid(entries: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grid = []
    for entry in entries:
        codec, sep, rates = entry.partition("=")
        if not sep or not codec.strip() or not rates.strip():
            raise ValueError(f"--grid {entry!r}: write CODEC=BITRATE[,BITRATE...], e.g. opus=6k,8k")
        grid.append((codec.strip(), tuple(b.label for b in parse_list(rates))))
    return tuple(grid)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    dataset = _dataset(args.dataset, console)
    bitrates = tuple(b.label for b in parse_list(args.bitrate))
    grid = _grid(args.grid)
    codecs = _csv(args.codec) if args.codec else () if grid else ("opus",)
    codecs += tuple(c for c, _ in grid if c not in codecs)
    spec = engine.RunSpec(dataset=dataset, codecs=codecs, bitrates=bitrates, grid=grid,
                          metrics=_metric_names(args.metrics),
                          decoded=tuple(args.decoded), label=args.label, label_from=args.label_from,
                          eval_sr=args.eval_sr, align=args.align,
                          crop_reference=args.crop_reference, skip_missing=args.skip_missing,
                          workspace=args.workspace, retry_failed=not args.no_retry)
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
            on_wait=lambda message: render.say(console, message, "yellow"),
        )
    store = Store(outcome.store_path)
    try:
        results = store.results(outcome.run_id)
        scores = store.frame("scores", outcome.run_id)
        counts = store.counts(outcome.run_id)
    finally:
        store.close()
    summary = engine.summarize(results, scores)
    out_dir = Path(args.workspace) / "runs" / outcome.run_id
    render.export_tables(out_dir, results, scores, summary, "csv")
    problems = engine.problems(results, scores)
    left_out = [{"scope": s, "reason": r} for s, r in outcome.left_out]
    # numbers that may mislead; one run is small, and this process may hold library threads: no fork
    suspicious = detect.notices(tidy.load(outcome.store_path, [outcome.run_id], parallel=False))
    if suspicious:
        with Store(outcome.store_path) as store:
            store.add_notices(outcome.run_id, suspicious)
    tidy.keep(outcome.store_path)  # for the reports and checks that follow a run
    if args.json:
        print(json.dumps({
            "run_id": outcome.run_id, "resumed": outcome.resumed, "store": str(outcome.store_path),
            "results_csv": str(out_dir / "results.csv"), "planned_units": outcome.planned,
            "already_done": outcome.skipped_done, "computed": outcome.computed, "rows": counts,
            "counts": {"failed_units": len(problems["failed_units"]),
                       "undefined_values": len(problems["undefined_values"]), "manifest_rows_left_out": len(left_out)},
            **problems, "manifest_rows_left_out": left_out, "wall_s": round(outcome.wall_s, 2),
            "notices": [{"scope": s, "reason": r} for s, r in outcome.notices + suspicious],
            "suspicious": [{"scope": s, "reason": r} for s, r in suspicious],
            "summary": render.records(summary),
        }, indent=2))
    else:
        if not args.quiet:
            for scope, reason in outcome.notices[:8]:
                render.say(console, f"{scope}: {reason}", "yellow")
            if len(outcome.notices) > 8:
                more = len(outcome.notices) - 8
                render.say(console, f"... and {more} more notices (table 'notices' in the store)", "yellow")
            for table in render.summary_tables(summary, console.width):
                console.print(table)
            for scope, reason in suspicious:  # after the table whose numbers they qualify
                render.say(console, f"check {scope}: {reason}", "yellow")
        lines = engine.problem_lines(problems) + [f"manifest: {x['scope']}: {x['reason']}" for x in left_out]
        for line in lines[:20]:  # printed with --quiet too: an exit code of 1 always comes with its reasons
            render.say(console, line, "red")
        if len(lines) > 20:
            render.say(console, f"... and {len(lines) - 20} more (see {out_dir}/results.csv)", "red")
        if not args.quiet:
            verb = "resumed" if outcome.resumed else "new"
            render.say(console, f"run {outcome.run_id} ({verb}): {outcome.computed} units computed, "
                f"{outcome.skipped_done} already stored, {outcome.wall_s:.1f} s")
            render.say(console, f"failed units: {len(problems['failed_units'])}, undefined metric values: "
                f"{len(problems['undefined_values'])}, manifest rows left out: {len(left_out)}")
            render.say(console, f"store: {outcome.store_path}   results: {out_dir}/results.csv   "
                f"summary: {out_dir}/summary.csv")
    failed = problems["failed_units"] or problems["undefined_values"] or left_out
    return EXIT_FAILURES if failed else EXIT_OK


def cmd_list(what: str, console: Console) -> int:
    Console().print(render.listing(what))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    store = Store.existing(Path(args.workspace) / "svbench.sqlite")  # a usage error, never a new empty store
    try:
        run_id = args.run or store.latest_run()
        if run_id is None or not store.has_run(run_id):
            render.say(console, f"svbench: {'no run ' + repr(run_id) if run_id else 'no runs'} in {store.path}", "red")
            return EXIT_USAGE
        results = store.results(run_id)
        scores = store.frame("scores", run_id)
    finally:
        store.close()
    out = args.output or Path(args.workspace) / "runs" / run_id
    for target, rows in render.export_tables(out, results, scores, engine.summarize(results, scores), args.format):
        render.say(console, f"wrote {target} ({rows} rows)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
