"""Intelligibility by recognition: word and character error rate of a speech recognizer on the decoded
speech against the manifest's transcript (``wer``, ``cer``).

Beside each rate the same recognizer's error on the reference over the same span (``<key>_ref``) and
the codec's added error (``<key>_delta`` = decoded - reference), so that a table shows the codec's
damage and not the recognizer's own weakness. Transcript and hypotheses pass through one
normalization (:mod:`svbench.metrics.text`); the rates are ``jiwer``'s (Levenshtein distance over
words or characters / reference length), per utterance.

The shipped recognizer is PocketSphinx with the US-English model inside its wheel (acoustic model
``en-us``, ``en-us.lm.bin``, ``cmudict-en-us.dict``), 16 kHz, whole-utterance decoding with batch
cepstral mean normalization (so one utterance's result never depends on the one decoded before it).
Narrowband input is upsampled (soxr VHQ) and the keys end in ``_from8k``.

Another recognizer plugs in as a subclass of :class:`RecognizerMetric` registered under the
``svbench.metrics`` entry-point group: it names its model files (:meth:`~RecognizerMetric.model_files`,
from a card parameter such as ``model_path``) and loads a :class:`Recognizer`
(:meth:`~RecognizerMetric.load_recognizer`). Nothing is ever downloaded: a missing file makes the
metric unavailable with "not computed: no model at PATH" (docs/metrics.md shows a local Whisper).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from svbench.audio import SILENCE_DBFS, rms_dbfs, to_int16
from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined
from svbench.metrics.provenance import model_provenance
from svbench.metrics.text import latin_script, normalize

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "de": "German", "fr": "French", "es": "Spanish"}
_recognizers: dict[tuple[Any, ...], Recognizer] = {}  # per worker process: one model per configuration


class Recognizer(Protocol):
    def transcribe(self, samples: np.ndarray) -> str:
        """The words heard in float32 mono ``samples`` at the metric's ``native_sr``."""
        ...


class RecognizerMetric(BaseMetric):
    """Error rate of a recognizer (``unit`` = "word" or "char"); keys ``<prefix>``, ``_ref``, ``_delta``."""

    needs_text = True
    higher_is_better = False
    value_range = (0.0, float("inf"))  # insertions can push a rate above 1; _delta ranges over -inf..inf
    min_seconds = 0.2
    native_sr = 16000
    upsample_suffix = True
    requires: tuple[str, ...] = ("jiwer", "num2words")
    defaults: dict[str, Any] = {"unit": "word", "language": "en", "model_path": ""}

    # ------------------------------------------------------------- what a plug-in provides

    def model_files(self) -> list[Path]:
        """The files the recognizer loads (checked before any work, hashed for provenance)."""
        raise NotImplementedError

    def load_recognizer(self) -> Recognizer:
        raise NotImplementedError

    def model_package(self) -> str:
        """The distribution whose version is recorded beside the model hash."""
        return self.requires[-1]

    def recognizer_key(self) -> tuple[Any, ...]:
        """Cards whose keys are equal share one loaded recognizer and its transcripts (``wer`` and ``cer``)."""
        return (type(self).__qualname__, *(v for k, v in sorted(self.params.items()) if k != "unit"))

    # ------------------------------------------------------------- the metric

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None and self.params["unit"] not in ("word", "char"):
            return f"unit must be 'word' or 'char', got {self.params['unit']!r}"
        if reason is None:
            missing = [p for p in self.model_files() if not p.exists()]
            if missing:
                return f"not computed: no model at {missing[0]}"
        return reason

    def provenance(self) -> dict[str, Any] | None:
        return model_provenance(self.model_package(), self.model_files())

    def recognizer(self) -> Recognizer:
        key = self.recognizer_key()
        if key not in _recognizers:
            _recognizers[key] = self.load_recognizer()
        return _recognizers[key]

    def heard(self, x: np.ndarray, sr: int) -> str:
        """Normalized transcript of ``x`` (memoised per worker: ``wer`` and ``cer`` decode once)."""
        rate = int(self.native_sr or sr)
        return shared.memo(("asr", self.recognizer_key(), shared.digest(x), sr),
                           lambda: normalize(self.recognizer().transcribe(shared.resampled(x, sr, rate))))

    def transcript(self, utt: Any) -> str:
        """The normalized reference text, or MetricUndefined saying why there is none to compare with."""
        language = str(self.params["language"])
        name = LANGUAGE_NAMES.get(language, language)
        given = str(getattr(utt, "language", "") or "").strip().lower()
        if language and given and given.replace("_", "-").split("-")[0] != language:
            raise MetricUndefined(f"recognizer is {name}-only (the manifest says language {given!r})")
        text = str(getattr(utt, "text", "") or "")
        if not text.strip():
            raise MetricUndefined("no transcript")
        if language == "en" and not latin_script(text):
            raise MetricUndefined("recognizer is English-only (the transcript is not in the Latin script)")
        truth = normalize(text)
        if not truth:
            raise MetricUndefined(f"no transcript (nothing left of {text!r} after text normalization)")
        return truth

    def error(self, truth: str, hypothesis: str) -> float:
        import jiwer

        rate = jiwer.wer if self.params["unit"] == "word" else jiwer.cer
        return float(rate(truth, hypothesis))

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int, utt: Any = None) -> dict[str, float]:
        assert ref is not None
        truth = self.transcript(utt)
        level = rms_dbfs(deg)
        if level < SILENCE_DBFS:
            raise MetricUndefined(f"decoded audio is silent ({level:.1f} dBFS < {SILENCE_DBFS} dBFS)")
        _, suffix = self.rate_for(sr)
        on_ref, on_deg = self.error(truth, self.heard(ref, sr)), self.error(truth, self.heard(deg, sr))
        p = self.key_prefix
        return {f"{p}{suffix}": on_deg, f"{p}_ref{suffix}": on_ref, f"{p}_delta{suffix}": on_deg - on_ref}


class PocketSphinx:
    """CMU PocketSphinx 5, whole-utterance decoding at 16 kHz, 16-bit PCM."""

    def __init__(self, acoustic: Path, lm: Path, dictionary: Path, cmn: str):
        from pocketsphinx import Decoder

        self.decoder = Decoder(hmm=str(acoustic), lm=str(lm), dict=str(dictionary), samprate=16000, cmn=cmn,
                               loglevel="FATAL")

    def transcribe(self, samples: np.ndarray) -> str:
        d = self.decoder
        d.start_utt()
        d.process_raw(to_int16(samples).tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return str(hyp.hypstr) if hyp else ""


class PocketSphinxErrorRate(RecognizerMetric):
    """WER/CER with PocketSphinx. ``model_path`` = "" uses the model inside the pocketsphinx wheel; otherwise
    a folder holding ``acoustic`` (a folder), ``lm`` and ``dictionary``, as the wheel's ``model/en-us``."""

    requires = ("jiwer", "num2words", "pocketsphinx")
    defaults = {**RecognizerMetric.defaults, "acoustic": "en-us", "lm": "en-us.lm.bin",
                "dictionary": "cmudict-en-us.dict", "cmn": "batch"}

    def model_files(self) -> list[Path]:
        root = str(self.params["model_path"])
        if root:
            folder = Path(root).expanduser()
        else:
            from pocketsphinx import get_model_path

            folder = Path(get_model_path()) / "en-us"
        return [folder / str(self.params[k]) for k in ("acoustic", "lm", "dictionary")]

    def load_recognizer(self) -> Recognizer:
        acoustic, lm, dictionary = self.model_files()
        return PocketSphinx(acoustic, lm, dictionary, cmn=str(self.params["cmn"]))
