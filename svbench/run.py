"""Running: a run's identity (id, environment), executing its plan through an executor into the store
(one process per run, resumable, interruptible), and what the stored results say (summary, problems)."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from svbench import manifest as manifest_mod
from svbench.adapters.base import CardCodec
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.metrics.base import BaseMetric, load_metrics
from svbench.plan import PRECOMPUTED, RunSpec, WorkerContext, build, make_codec, task_label
from svbench.store import UNIT_COLUMNS, Store, UnitResult
from svbench.unit import evaluate, lost_unit, utterance_of


class Interrupted(Exception):
    """Ctrl-C during a run: every unit finished so far is stored; the same command resumes."""

    def __init__(self, run_id: str, stored: int, planned: int):
        super().__init__(f"interrupted: {stored} of {planned} units of run {run_id} are stored; "
                         "run the same command again to resume")
        self.run_id, self.stored, self.planned = run_id, stored, planned


def run_id_for(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def describe(spec: RunSpec, manifest: manifest_mod.Manifest, metrics: list[BaseMetric]) -> dict[str, Any]:
    """The run's identity: same dataset content, cards and options -> same run id -> resume."""
    codec_cards = {c: make_codec(get_card("codecs", c)).identity() for c in spec.codecs if c != PRECOMPUTED}
    return {
        "dataset": str(manifest.path.resolve()),
        "dataset_sha256": hashlib.sha256(manifest.path.read_bytes()).hexdigest(),
        "codecs": list(spec.codecs),
        "codec_cards": codec_cards,
        "bitrates": [Bitrate.parse(b).label for b in spec.bitrates],
        **({"grid": {c: [Bitrate.parse(b).label for b in bs] for c, bs in spec.grid}} if spec.grid else {}),
        "metrics": [m.name for m in metrics],
        "metric_cards": {m.name: m.card.sha256 for m in metrics},
        "metric_definitions": {m.name: m.describe() for m in metrics},  # resolved parameters of every metric
        "decoded": [str(Path(d).resolve()) for d in spec.decoded],
        "label": spec.label,
        **({"label_from": spec.label_from} if spec.label_from else {}),
        "eval_sr": spec.eval_sr,
        "align": spec.align,
        "crop_reference": spec.crop_reference,
        "skip_missing": spec.skip_missing,
    }


CORE_MODULES = ("numpy", "scipy", "soxr", "soundfile", "pandas")  # every unit reads, resamples, aligns with these


def environment(codecs: list[CardCodec], metrics: list[BaseMetric]) -> dict[str, Any]:
    """Versions of svbench and of the packages this run's codecs and metrics use, the git commit, the host."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    modules = {*CORE_MODULES, *(m for c in codecs for m in c.requires_modules),
               *(m for metric in metrics for m in metric.requires)}
    provides = packages_distributions()
    versions: dict[str, str | None] = {"svbench": version("svbench")}
    for module in sorted(modules):
        for dist in provides.get(module.split(".")[0], [module]):
            try:
                versions[dist] = version(dist)
            except PackageNotFoundError:
                versions[dist] = None
    commit: str | None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"versions": versions, "git_commit": commit, "python": platform.python_version(),
            "host": platform.node(), "machine": platform.machine()}


@dataclass
class RunOutcome:
    run_id: str
    resumed: bool
    store_path: Path
    planned: int
    skipped_done: int
    computed: int
    notices: list[tuple[str, str]]
    wall_s: float
    left_out: list[tuple[str, str]] = field(default_factory=list)  # manifest rows not run (duplicate id...)


def execute(spec: RunSpec, executor: Any, on_start: Callable[[int], None] | None = None,
            on_unit: Callable[[UnitResult], None] | None = None,
            on_wait: Callable[[str], None] | None = None) -> RunOutcome:
    """Plan, refuse what cannot run (UsageError, before any store exists), then compute what the store lacks.

    One process at a time works on a run (a lock file per run id): a second identical command waits,
    then finds the units stored and computes only what is left.
    """
    t0 = time.perf_counter()
    manifest = manifest_mod.load(spec.dataset)
    metric_objects = load_metrics(list(spec.metrics))  # stops here, before any work, if one cannot run
    metric_cards = tuple(m.card for m in metric_objects)
    workspace = Path(spec.workspace)
    ctx = WorkerContext(metric_cards, str((workspace / "cache").resolve()), spec.eval_sr, spec.align,
                        spec.crop_reference)
    the_plan = build(spec, manifest, ctx)
    config = describe(spec, manifest, metric_objects)
    run_id = run_id_for(config)
    store = Store(workspace / "svbench.sqlite")
    lock = _run_lock(workspace, run_id, on_wait)
    computed, todo = 0, list(the_plan.tasks)
    try:
        codecs = [make_codec(get_card("codecs", c)) for c in spec.codecs if c != PRECOMPUTED]
        resumed = store.open_run(run_id, config, environment(codecs, metric_objects))
        store.add_notices(run_id, the_plan.notices)
        done = store.done_units(run_id, ok_only=spec.retry_failed)
        todo = [t for t in the_plan.tasks if (t.utt.id, t.codec, task_label(t)) not in done]
        if on_start:
            on_start(len(todo))
        rank = {u.id: i for i, u in enumerate(manifest.utterances)}
        todo.sort(key=lambda t: rank[t.utt.id])  # an utterance's units together: one worker, one read
        for result in executor.map_unordered(evaluate, todo, on_lost=lost_unit, group=utterance_of):
            store.add_unit(run_id, result)
            computed += 1
            if on_unit:
                on_unit(result)
    except KeyboardInterrupt:
        raise Interrupted(run_id, len(the_plan.tasks) - len(todo) + computed, len(the_plan.tasks)) from None
    finally:
        store.close()
        lock.close()
    return RunOutcome(run_id, resumed, workspace / "svbench.sqlite", len(the_plan.tasks),
                      len(the_plan.tasks) - len(todo), computed, the_plan.notices, time.perf_counter() - t0,
                      list(manifest.problems))


def _run_lock(workspace: Path, run_id: str, on_wait: Callable[[str], None] | None) -> Any:
    """An exclusive lock on ``locks/RUN.lock``, released by the OS if this process dies."""
    import fcntl

    folder = workspace / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / f"{run_id}.lock", "w")  # noqa: SIM115 (closed by execute)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if on_wait:
            on_wait(f"another svbench process is computing run {run_id} in {workspace}; waiting for it to finish")
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def summarize(results: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per codec and bitrate: units ok / failed, metric values undefined, measured bitrate, delay (median,
    IQR), mean scores over the units where the value is defined (``<key>_n`` says over how many)."""
    if results.empty:
        return pd.DataFrame()
    score_cols = [c for c in results.columns if c not in {"run_id", *UNIT_COLUMNS}]
    undefined = (scores[scores.value.isna()].groupby(["codec", "bitrate"]).size()
                 if scores is not None and not scores.empty else pd.Series(dtype=int))
    rows = []
    for (codec, bitrate), group in results.groupby(["codec", "bitrate"], sort=False):
        ok = group[group.status == "ok"]
        row: dict[str, Any] = {"codec": codec, "bitrate": bitrate, "ok": len(ok), "failed": len(group) - len(ok),
                               "undefined": int(undefined.get((codec, bitrate), 0))}
        row["kbps"] = ok.measured_bps.mean() / 1000 if ok.measured_bps.notna().any() else None
        delays = ok.delay_ms.dropna()
        if len(delays):
            row["delay_ms"] = delays.median()
            row["delay_iqr_ms"] = delays.quantile(0.75) - delays.quantile(0.25)
        for col in score_cols:
            values = pd.to_numeric(ok[col], errors="coerce")
            row[col] = values.mean()
            row[f"{col}_n"] = int(values.notna().sum())
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["_bps"] = [_bps(b) for b in frame.bitrate]
    return frame.sort_values(["codec", "_bps"]).drop(columns="_bps").reset_index(drop=True)


def _bps(label: str) -> int:
    try:
        return Bitrate.parse(label).bps
    except ValueError:
        return 0


def problems(results: pd.DataFrame, scores: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Every failed unit and every undefined metric value of a run, with its reason (both make exit code 1)."""
    failed = [{"utt_id": r.utt_id, "codec": r.codec, "bitrate": r.bitrate, "stage": r.stage, "reason": r.error}
              for r in results[results.status == "error"].itertuples()] if not results.empty else []
    undefined = [{"utt_id": r.utt_id, "codec": r.codec, "bitrate": r.bitrate, "metric": r.metric, "key": r.key,
                  "reason": r.reason} for r in scores[scores.value.isna()].itertuples()] if not scores.empty else []
    return {"failed_units": failed, "undefined_values": undefined}


def problem_lines(found: dict[str, list[dict[str, Any]]]) -> list[str]:
    return ([f"failed: {p['codec']}@{p['bitrate']} {p['utt_id']}: [{p['stage']}] {p['reason']}"
             for p in found["failed_units"]]
            + [f"undefined: {p['codec']}@{p['bitrate']} {p['utt_id']}: {p['key']}: {p['reason']}"
               for p in found["undefined_values"]])
