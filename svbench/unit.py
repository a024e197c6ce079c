"""Evaluating one unit in a worker: read the reference, run the codec (or read its decoded file), align,
score. Every failure becomes an error row naming the file and the reason; codecs and metric models are
built once per worker process."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from svbench import align, audio, cache
from svbench import manifest as manifest_mod
from svbench.adapters.base import CardCodec, CodecError
from svbench.audio import Audio, AudioError
from svbench.cards import Card
from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined, metric_from_card
from svbench.plan import Task, make_codec, task_label
from svbench.store import UnitResult

MUCH_SHORTER = 0.5  # a decoded file under half its reference's length is refused (unless cropping is allowed)


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
    return UnitResult(task.utt.id, task.codec, task_label(task), task.bitrate.bps if task.bitrate else None,
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
    key = (metric.card.sha256, shared.digest(reference.samples), reference.sr, decoded_sr)
    if key not in _ref_values:
        if len(_ref_values) > 256:
            _ref_values.clear()
        band_limited = audio.resample(reference, decoded_sr)
        rate = metric.sample_rate or decoded_sr
        _ref_values[key] = _values(metric, None, audio.resample(band_limited, rate).samples, rate, utt)
    return _ref_values[key]


def utterance_of(task: Task) -> str:
    return task.utt.id


def lost_unit(task: Task, err: BaseException) -> UnitResult:
    """A unit whose worker died on every try (the executor bounds the tries) is an error row."""
    return _result(task).fail("worker", f"{task.codec}@{task_label(task)} on {task.utt.path}: {err}")
