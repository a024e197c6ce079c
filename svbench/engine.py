"""The run: plan the grid (utterance x codec x bitrate), evaluate each unit, store it, summarise."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svbench import align, audio, cache
from svbench import manifest as manifest_mod
from svbench.adapters.base import CardCodec, CodecError
from svbench.adapters.precomputed import DecodedIndex, NoDecodedFile, bitrate_folders
from svbench.audio import Audio, AudioError
from svbench.bitrate import Bitrate
from svbench.cards import Card, get_card, load_entry_point
from svbench.metrics.base import BaseMetric, MetricUndefined, load_metrics, metric_from_card
from svbench.store import UNIT_COLUMNS, Store, UnitResult

PRECOMPUTED = "precomputed"
MUCH_SHORTER = 0.5  # a decoded file under half its reference's length is refused (unless cropping is allowed)


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    codecs: tuple[str, ...]
    bitrates: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("pesq", "stoi")
    decoded: tuple[str, ...] = ()  # precomputed: folders of decoded files, one codec each
    label: str | None = None
    eval_sr: int | None = None
    align: str = "envelope"  # envelope | none
    crop_reference: bool = False
    skip_missing: bool = False  # precomputed: an utterance with no decoded file is a notice, not an error
    workspace: str = "svbench-work"
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per-codec bitrates (--grid CODEC=B1,B2), before `bitrates`
    retry_failed: bool = True  # a resumed run recomputes the units that failed before

    def bitrates_for(self, codec: str) -> tuple[str, ...]:
        return dict(self.grid).get(codec, self.bitrates)


class UsageError(ValueError):
    """A run refused before any work: nothing to run, a codec that cannot run here."""


class Interrupted(Exception):
    """Ctrl-C during a run: every unit finished so far is stored; the same command resumes."""

    def __init__(self, run_id: str, stored: int, planned: int):
        super().__init__(f"interrupted: {stored} of {planned} units of run {run_id} are stored; "
                         "run the same command again to resume")
        self.run_id, self.stored, self.planned = run_id, stored, planned


@dataclass(frozen=True)
class WorkerContext:
    """Everything a worker process needs, picklable; heavy objects are built once per process."""

    metric_cards: tuple[Card, ...]
    cache_dir: str
    eval_sr: int | None
    align: str
    crop_reference: bool


@dataclass(frozen=True)
class Task:
    ctx: WorkerContext
    utt: manifest_mod.Utterance
    codec: str  # result label
    codec_card: Card | None  # None for precomputed files
    bitrate: Bitrate | None
    decoded_path: str | None = None
    planning_error: str | None = None


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)


def make_codec(card: Card) -> CardCodec:
    cls = load_entry_point("svbench.codecs", card.data.get("adapter", card.name))
    codec: CardCodec = cls(card)
    return codec


# ---------------------------------------------------------------- planning


def plan(spec: RunSpec, manifest: manifest_mod.Manifest, ctx: WorkerContext) -> Plan:
    result = Plan(notices=list(manifest.problems))
    for name in spec.codecs:
        asked = [Bitrate.parse(b) for b in spec.bitrates_for(name)]
        if name == PRECOMPUTED:
            _plan_precomputed(spec, manifest, ctx, asked, result)
            continue
        card = get_card("codecs", name)
        codec = make_codec(card)
        unavailable = codec.unavailable_reason()
        if unavailable:
            raise UsageError(f"codec {name} is unavailable on this machine: {unavailable}")
        if codec.provenance():
            result.notices.append((f"codec {name}", str(codec.provenance())))
        for bitrate in asked or codec.bitrates():
            why_not = codec.unsupported_reason(bitrate)
            if why_not:
                result.notices.append((f"grid {name}@{bitrate.label}", f"skipped: {why_not}"))
                continue
            result.tasks += [Task(ctx, utt, name, card, bitrate) for utt in manifest.utterances]
    if not result.tasks:
        reasons = "; ".join(f"{scope}: {why}" for scope, why in result.notices) or "the manifest has no utterances"
        raise UsageError(f"nothing to run: no valid (codec, bitrate) pair ({reasons})")
    return result


def _plan_precomputed(spec: RunSpec, manifest: manifest_mod.Manifest, ctx: WorkerContext,
                      asked: list[Bitrate], result: Plan) -> None:
    if not spec.decoded:
        raise ValueError("--codec precomputed needs --decoded DIR (the folder of decoded files)")
    if spec.label and len(spec.decoded) > 1:
        raise ValueError("--label names one --decoded folder; with several, each is named after its folder")
    for root in map(Path, spec.decoded):
        if not root.is_dir():
            raise ValueError(f"{root}: --decoded folder not found")
        label = spec.label or re.sub(r"^\d+\s+", "", root.name)  # "3 Codec2" (a demo page's rank) -> "Codec2"
        for bitrate, folder in bitrate_folders(root, asked).items():
            index = DecodedIndex(folder)
            skipped = []
            for utt in manifest.utterances:
                try:
                    path, error = str(index.find(utt.id)), None
                except FileNotFoundError as err:
                    if spec.skip_missing and isinstance(err, NoDecodedFile):
                        skipped.append(utt.id)
                        continue
                    path, error = None, str(err)
                result.tasks.append(Task(ctx, utt, label, None, bitrate, path, error))
            if skipped:
                result.notices.append((f"{label}@{bitrate.label if bitrate else '-'}",
                                       f"skipped {len(skipped)} utterance(s) with no decoded file in {folder}: "
                                       + ", ".join(skipped)))


# ---------------------------------------------------------------- one unit


_codecs: dict[str, CardCodec] = {}  # per worker process, keyed by card hash
_metrics: dict[tuple[str, ...], list[BaseMetric]] = {}


def _worker_codec(card: Card) -> CardCodec:
    if card.sha256 not in _codecs:
        _codecs[card.sha256] = make_codec(card)
    return _codecs[card.sha256]


def _worker_metrics(cards: tuple[Card, ...]) -> list[BaseMetric]:
    key = tuple(c.sha256 for c in cards)
    if key not in _metrics:
        _metrics[key] = [metric_from_card(c) for c in cards]
    return _metrics[key]


WORKER_HOST: str | None = None  # set on cluster workers (svbench.dask_executor): errors name the host


def _on_host(message: str) -> str:
    return f"{message} (on worker host {WORKER_HOST})" if WORKER_HOST else message


@functools.lru_cache(maxsize=4)
def _read_reference(path: Path, _stamp: tuple[int, int]) -> Audio:
    return audio.check(audio.read(path), path)


def _reference(path: Path) -> Audio:
    """Units arrive grouped by utterance, so a worker reads and checks each reference once (a copy per unit)."""
    try:
        st = path.stat()
    except OSError:
        return audio.check(audio.read(path), path)  # the reader names the file and the reason
    ref = _read_reference(path, (st.st_mtime_ns, st.st_size))
    return Audio(ref.samples.copy(), ref.sr, list(ref.notes))


def evaluate(task: Task) -> UnitResult:
    """Evaluate one unit; every failure becomes an error row naming the file and the reason."""
    try:
        return _evaluate(task)
    except Exception as err:  # an unforeseen failure (a library bug) ends this unit, never the run
        return _result(task).fail("internal", f"{task.utt.path}: {type(err).__name__}: {err}")


def _result(task: Task) -> UnitResult:
    return UnitResult(task.utt.id, task.codec, _label(task), task.bitrate.bps if task.bitrate else None,
                      ref_path=str(task.utt.path))


def _evaluate(task: Task) -> UnitResult:
    utt, ctx = task.utt, task.ctx
    r = _result(task)
    if task.planning_error:
        return r.fail("codec" if task.codec_card else "decoded", task.planning_error)
    try:
        ref = _reference(utt.path)
    except AudioError as err:
        return r.fail("reference", _on_host(str(err)))
    r.notes += ref.notes
    r.duration_s = round(ref.duration, 4)
    try:
        deg = _decoded(task, ref, r)
    except AudioError as err:
        return r.fail("decoded", _on_host(str(err)))
    except CodecError as err:
        return r.fail("codec", f"{task.codec}@{r.bitrate} on {utt.path}: {err}")
    eval_sr = ctx.eval_sr or min(ref.sr, deg.sr)
    r.eval_sr = eval_sr
    for clip, what in ((ref, "reference"), (deg, "decoded")):
        if clip.sr != eval_sr:
            r.notes.append(f"{what} resampled {clip.sr}->{eval_sr} Hz for evaluation")
    ref_e, deg_e = audio.resample(ref, eval_sr), audio.resample(deg, eval_sr)
    if not ctx.crop_reference and len(deg_e.samples) < MUCH_SHORTER * len(ref_e.samples):
        return r.fail("decoded", f"{r.deg_path or 'decoded audio'}: much shorter than its reference "
                      f"({deg_e.duration:.2f} s vs {ref_e.duration:.2f} s); if the decoded files are "
                      "deliberately cropped excerpts, pass --crop-reference")
    delay = 0
    if ctx.align == "envelope":
        found = align.estimate_delay(ref_e.samples, deg_e.samples, eval_sr)
        r.delay_ms, r.delay_confidence = round(found.delay_ms, 3), round(found.confidence, 4)
        delay = found.delay_samples
    ref_a, deg_a = align.apply(ref_e.samples, deg_e.samples, delay)
    r.compared_s = round(len(ref_a) / eval_sr, 4)
    t0 = time.perf_counter()
    r.scores = score(_worker_metrics(ctx.metric_cards), ref_a, deg_a, eval_sr, utt, decoded=deg, reference=ref)
    r.t_metrics_s = round(time.perf_counter() - t0, 4)
    return r


def _decoded(task: Task, ref: Audio, r: UnitResult) -> Audio:
    """The decoded audio of a unit: from a precomputed file, the cache, or the codec itself."""
    if task.codec_card is None:
        assert task.decoded_path is not None
        r.deg_path = task.decoded_path
        deg = audio.check(audio.read(task.decoded_path), task.decoded_path)
        r.notes += [f"decoded: {n}" for n in deg.notes]
        return deg
    assert task.bitrate is not None
    codec = _worker_codec(task.codec_card)
    codec_in = audio.resample(ref, codec.sample_rate)
    if ref.sr != codec.sample_rate:
        r.notes.append(f"reference resampled {ref.sr}->{codec.sample_rate} Hz for {codec.name}")
    store = cache.DecodedCache(Path(task.ctx.cache_dir))
    k = cache.key(codec.identity(), task.bitrate.label, str(codec.sample_rate), codec_in.samples.tobytes())
    t0 = time.perf_counter()
    hit = store.get(k)
    if hit is None:
        bitstream = codec.encode(codec_in.samples, task.bitrate)
        decoded = codec.decode(bitstream)
        store.put(k, bitstream, decoded)
    else:
        bitstream, decoded = hit
        r.cached = True
    r.t_codec_s = round(time.perf_counter() - t0, 4)
    r.measured_bps = round(codec.payload_bits(bitstream) / codec_in.duration, 2)
    return audio.check(Audio(decoded, codec.sample_rate), f"{codec.name}@{task.bitrate.label} output of {r.ref_path}")


def score(metrics: list[BaseMetric], ref: np.ndarray, deg: np.ndarray, sr: int,
          utt: manifest_mod.Utterance | None = None, decoded: Audio | None = None,
          reference: Audio | None = None) -> list[Any]:
    """Every metric of one unit; a metric's failure is a value with a reason, not a crash.

    Intrusive metrics score the aligned pair (``ref``, ``deg`` at ``sr``). A metric that needs no
    reference scores ``decoded``, the codec's whole output as it produced it (never svbench's alignment
    crop, so its value does not depend on the delay estimate), and also ``reference`` brought to the
    decoded audio's rate, stored as ``<key>_ref``: the recording's own score under the same band limit,
    so a table can show what the codec lost. A metric that declares ``needs_text`` also gets ``utt``.
    """
    rows: list[Any] = []
    at_rate: dict[int, tuple[np.ndarray, np.ndarray]] = {sr: (ref, deg)}
    for metric in metrics:
        t0, c0 = time.perf_counter(), time.process_time()
        if not metric.needs_reference and decoded is not None:
            rate = metric.sample_rate or decoded.sr
            results = _values(metric, None, audio.resample(decoded, rate).samples, rate, utt)
            if reference is not None:
                results += [(f"{key}_ref", value, why) for key, value, why in _reference_values(metric, reference,
                                                                                                decoded.sr, utt)]
        else:
            rate = metric.sample_rate or sr
            if rate not in at_rate:
                at_rate[rate] = (audio.resample(Audio(ref, sr), rate).samples,
                                 audio.resample(Audio(deg, sr), rate).samples)
            m_ref, m_deg = at_rate[rate]
            results = _values(metric, m_ref if metric.needs_reference else None, m_deg, rate, utt)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows += [(metric.name, key, value, reason, wall, cpu) for key, value, reason in results]
    return rows


def _values(metric: BaseMetric, ref: np.ndarray | None, deg: np.ndarray, rate: int,
            utt: manifest_mod.Utterance | None) -> list[tuple[str, float | None, str | None]]:
    try:
        if len(deg) / rate < metric.min_seconds:
            raise MetricUndefined(f"clip too short: {len(deg) / rate:.3f} s < {metric.min_seconds} s")
        context = {"utt": utt} if getattr(metric, "needs_text", False) else {}
        values = metric(ref, deg, rate, **context)
        return [(key, float(v), None) if np.isfinite(v) else (key, None, "non-finite value")
                for key, v in values.items()]
    except MetricUndefined as err:
        return [(metric.name, None, f"not defined: {err}")]
    except Exception as err:  # a metric library's crash on one utterance must not end the run
        return [(metric.name, None, f"failed: {type(err).__name__}: {err}")]


_ref_values: dict[tuple[Any, ...], list[tuple[str, float | None, str | None]]] = {}


def _reference_values(metric: BaseMetric, reference: Audio, decoded_sr: int,
                      utt: manifest_mod.Utterance | None) -> list[tuple[str, float | None, str | None]]:
    """A non-intrusive metric on the reference at the decoded audio's rate; once per utterance and worker
    (every codec and bitrate of an utterance needs the same value)."""
    key = (metric.card.sha256, _digest(reference.samples), reference.sr, decoded_sr)
    if key not in _ref_values:
        if len(_ref_values) > 256:
            _ref_values.clear()
        band_limited = audio.resample(reference, decoded_sr)
        rate = metric.sample_rate or decoded_sr
        _ref_values[key] = _values(metric, None, audio.resample(band_limited, rate).samples, rate, utt)
    return _ref_values[key]


def _digest(x: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(x).view(np.uint8).data, digest_size=16).hexdigest()


# ---------------------------------------------------------------- the whole run


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
        "eval_sr": spec.eval_sr,
        "align": spec.align,
        "crop_reference": spec.crop_reference,
        "skip_missing": spec.skip_missing,
    }


def environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for pkg in ("svbench", "numpy", "scipy", "soxr", "soundfile", "av", "pycodec2", "pesq", "pystoi", "pyworld",
                "pysptk", "speechmos", "visqol-python", "ai-edge-litert", "onnxruntime", "librosa", "fastdtw",
                "torch", "safetensors", "pocketsphinx", "jiwer", "num2words", "resemblyzer", "webrtcvad"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
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
    the_plan = plan(spec, manifest, ctx)
    config = describe(spec, manifest, metric_objects)
    run_id = run_id_for(config)
    store = Store(workspace / "svbench.sqlite")
    lock = _run_lock(workspace, run_id, on_wait)
    computed = 0
    try:
        resumed = store.open_run(run_id, config, environment())
        store.add_notices(run_id, the_plan.notices)
        done = store.done_units(run_id, ok_only=spec.retry_failed)
        todo = [t for t in the_plan.tasks if (t.utt.id, t.codec, _label(t)) not in done]
        if on_start:
            on_start(len(todo))
        rank = {u.id: i for i, u in enumerate(manifest.utterances)}
        todo.sort(key=lambda t: rank[t.utt.id])  # an utterance's units together: one worker, one read
        for result in executor.map_unordered(evaluate, todo, on_lost=_lost, group=_utterance):
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


def _label(task: Task) -> str:
    return task.bitrate.label if task.bitrate else "-"


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


def _utterance(task: Task) -> str:
    return task.utt.id


def _lost(task: Task, err: BaseException) -> UnitResult:
    """A unit whose worker died on every try (the executor bounds the tries) is an error row."""
    return _result(task).fail("worker", f"{task.codec}@{_label(task)} on {task.utt.path}: {err}")


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
