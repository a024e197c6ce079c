"""PLCMOS (Microsoft, INTERSPEECH 2023): a non-intrusive MOS for packet-loss concealment from the ONNX model
that ``speechmos`` ships (``plcmos_models/plcmos_v2.onnx``), beside DNSMOS.

Procedure, as ``speechmos.plcmos.PLCMOS.get_mos``: 16 kHz input; log-power STFT features (Hamming 512,
hop 256) from speechmos's own ``stft_transform``; the model is run once per "rater", each time with a
64-dimensional rater embedding drawn from a standard normal distribution, and the score is the mean
over ``embed_rounds`` = 15 raters. Two things svbench does differently, both measured traps:

- upstream draws the raters from the unseeded global ``np.random.normal``, so a clip's value changes
  from run to run. svbench draws them from ``np.random.RandomState(seed)`` (card parameter ``seed``,
  recorded with the run) afresh for every utterance: the same 15 raters score every clip, the value is
  what upstream gives after ``np.random.seed(seed)``, and it does not depend on what ran before.
- the audio's rate travels with it: at an 8 kHz evaluation rate the clip is upsampled (soxr VHQ) and
  the key is ``plcmos_from8k``; it is never handed over as 16 kHz samples that are really 8 kHz.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from svbench.audio import SILENCE_DBFS, rms_dbfs
from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined
from svbench.metrics.provenance import model_provenance

SR = 16000
RATER_DIM = 64


def model_path() -> str:
    import speechmos

    return os.path.join(os.path.dirname(speechmos.__file__), "plcmos_models", "plcmos_v2.onnx")


class PLCMOS(BaseMetric):
    """Key ``<prefix>`` (``plcmos``), ``_from8k`` when narrowband audio was upsampled."""

    needs_reference = False
    native_sr = SR
    upsample_suffix = True
    value_range = (1.0, 5.0)
    min_seconds = 0.5
    requires = ("onnxruntime", "speechmos")
    defaults = {"seed": 0, "embed_rounds": 15, "threads": 1}

    def __init__(self, card: Any):
        super().__init__(card)
        self._model: Any = None

    def provenance(self) -> dict[str, Any] | None:
        from pathlib import Path

        return model_provenance("speechmos", [Path(model_path())], label="plcmos_v2.onnx")

    def model(self) -> Any:
        """speechmos's PLCMOS object (its features) with an ONNX session of ``threads`` threads."""
        if self._model is None:
            import onnxruntime as ort
            from speechmos.plcmos import PLCMOS as Upstream

            options = ort.SessionOptions()
            options.intra_op_num_threads = int(self.params["threads"])
            options.inter_op_num_threads = 1
            upstream = Upstream.__new__(Upstream)  # its __init__ would open a second, default-threaded session
            upstream.model_name, upstream.model_path = "plcmos_v2", model_path()
            upstream.embed_rounds, upstream.max_lens = int(self.params["embed_rounds"]), 999999999999
            upstream.session = ort.InferenceSession(model_path(), options, providers=["CPUExecutionProvider"])
            self._model = upstream
        return self._model

    def raters(self) -> np.ndarray:
        """The rater embeddings: the draws upstream makes after ``np.random.seed(seed)``, one row per round."""
        rounds = int(self.params["embed_rounds"])
        return np.random.RandomState(int(self.params["seed"])).normal(size=(rounds, RATER_DIM)).astype(np.float32)

    def score_16k(self, x: np.ndarray) -> float:
        model = self.model()
        features = np.asarray(model.stft_transform(np.asarray(x, dtype=np.float32)), dtype=np.float32)[None, None]
        scores = [float(model.session.run(None, {"degraded_audio": features, "rater_embed": rater[np.newaxis]})[0])
                  for rater in self.raters()]
        return sum(scores) / len(scores)  # upstream's running sum / embed_rounds

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        level = rms_dbfs(deg)
        if level < SILENCE_DBFS:
            raise MetricUndefined(f"decoded audio is silent ({level:.1f} dBFS < {SILENCE_DBFS} dBFS)")
        rate, suffix = self.rate_for(sr)
        return {f"{self.key_prefix}{suffix}": self.score_16k(shared.resampled(deg, sr, rate))}
