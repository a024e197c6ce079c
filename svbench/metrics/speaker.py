"""Speaker similarity (``spk-sim``): cosine similarity of the GE2E speaker embeddings of reference and
decoded, from ``resemblyzer``'s ``VoiceEncoder`` (its weights, ``pretrained.pt``, ship in the wheel).

Procedure, as resemblyzer's own ``preprocess_wav`` + ``embed_utterance``: 16 kHz input (narrowband
audio is upsampled with soxr VHQ and the key says so: ``spk_sim_from8k``); volume raised to -30 dBFS
if quieter; silences longer than resemblyzer's limit trimmed by WebRTC VAD (mode 3, 30 ms windows);
40-band mel frames (25 ms, 10 ms hop) cut into 1.6 s partials at 1.3 per second; the utterance
embedding is the L2-normalised mean of the partials' embeddings. The value is the cosine of the two
embeddings (both non-negative after the encoder's ReLU, so in [0, 1]; 1 for identical audio).

This is GE2E similarity (Wan et al., ICASSP 2018, as trained by resemblyzer): it is not comparable
with the WavLM / ECAPA speaker-verification similarities that some codec papers print.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svbench.audio import SILENCE_DBFS, rms_dbfs
from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined
from svbench.metrics.provenance import model_provenance

SR = 16000
PARTIAL_S = 1.6  # resemblyzer hparams: partials_n_frames 160 x 10 ms
MIN_COVERAGE = 0.75  # resemblyzer embed_utterance drops a partial covered less, unless it is the only one
_encoder: Any = None  # one VoiceEncoder per worker process


def resemblyzer() -> Any:
    """The package, imported without the two warnings its imports raise on every worker (webrtcvad imports
    pkg_resources, which svbench keeps by pinning setuptools<81; resemblyzer imports scipy.ndimage.morphology,
    deprecated until SciPy 2 removes it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*scipy.ndimage.morphology", category=DeprecationWarning)
        import resemblyzer as package
    return package


def encoder() -> Any:
    global _encoder
    if _encoder is None:
        _encoder = resemblyzer().VoiceEncoder(device="cpu", verbose=False)
    return _encoder


def weights_path() -> Any:
    from pathlib import Path

    return Path(resemblyzer().__file__).resolve().parent / "pretrained.pt"


class SpeakerSimilarity(BaseMetric):
    """Key ``<prefix>`` (``spk_sim``), ``_from8k`` when narrowband audio was upsampled for the encoder."""

    needs_reference = True
    native_sr = SR
    upsample_suffix = True
    value_range = (0.0, 1.0)
    min_seconds = 0.5
    requires = ("torch", "webrtcvad", "resemblyzer")  # the run records their versions
    # less speech than resemblyzer keeps in a padded partial (0.75 x 1.6 s) is too short for an embedding
    defaults = {"min_speech_s": MIN_COVERAGE * PARTIAL_S, "threads": 1}

    def unavailable_reason(self) -> str | None:
        try:
            resemblyzer()  # imports torch and webrtcvad too, without their import-time warnings
        except Exception as err:
            return f"cannot import resemblyzer: {type(err).__name__}: {err}"
        return None

    def provenance(self) -> dict[str, Any] | None:
        return model_provenance("resemblyzer", [weights_path()], label="GE2E VoiceEncoder pretrained.pt")

    def embedding(self, x: np.ndarray, sr: int, what: str) -> np.ndarray:
        level = rms_dbfs(x)
        if level < SILENCE_DBFS:
            raise MetricUndefined(f"{what} audio is silent ({level:.1f} dBFS < {SILENCE_DBFS} dBFS)")
        x16 = shared.resampled(x, sr, SR)
        minimum = float(self.params["min_speech_s"])

        def run() -> np.ndarray:
            import torch

            wav = resemblyzer().preprocess_wav(np.asarray(x16, dtype=np.float32))
            if len(wav) / SR < minimum:
                raise MetricUndefined(f"{what} has {len(wav) / SR:.2f} s of speech after resemblyzer's silence "
                                      f"trimming, too short for a speaker embedding (< {minimum:.2f} s)")
            threads = torch.get_num_threads()
            torch.set_num_threads(int(self.params["threads"]))  # the same arithmetic in every worker
            try:
                return np.asarray(encoder().embed_utterance(wav), dtype=np.float64)
            finally:
                torch.set_num_threads(threads)

        return shared.memo(("ge2e", shared.digest(x), sr, minimum, int(self.params["threads"])), run)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        a, b = self.embedding(ref, sr, "reference"), self.embedding(deg, sr, "decoded")
        _, suffix = self.rate_for(sr)
        return {f"{self.key_prefix}{suffix}": float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))}
