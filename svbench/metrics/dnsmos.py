"""DNSMOS (Microsoft DNS Challenge): P.835 SIG/BAK/OVRL and P.808 MOS from the ONNX models that the
``speechmos`` package ships (``dnsmos_models/sig_bak_ovr.onnx``, ``model_v8.onnx``; personalised:
``pdnsmos_models/sig_bak_ovr.onnx``). Non-intrusive: no reference needed.

Procedure (as microsoft/DNS-Challenge ``DNSMOS/dnsmos_local.py`` and ``speechmos.dnsmos``): 16 kHz
input; a clip shorter than 9.01 s is repeated until it is at least that long; windows of 9.01 s
every 1 s; P.835 raw outputs are mapped by the upstream calibration polynomials; P.808 takes a
120-band log-mel spectrogram (librosa, n_fft 321, hop 160) of each window minus its last 160
samples; every value is the mean over windows. svbench computes the P.808 features of all windows in
one vectorised call and loads the ONNX sessions once per worker.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined

SR = 16000
WINDOW = int(9.01 * SR)  # 144160 samples
HOP = SR
# Calibration polynomials from microsoft/DNS-Challenge DNSMOS/dnsmos_local.py (highest power first).
POLY = {
    False: {"sig": [-0.08397278, 1.22083953, 0.0052439], "bak": [-0.13166888, 1.60915514, -0.39604546],
            "ovrl": [-0.06766283, 1.11546468, 0.04602535]},
    True: {"sig": [-0.01019296, 0.02751166, 1.19576786, -0.24348726],
           "bak": [-0.04976499, 0.44276479, -0.1644611, 0.96883132],
           "ovrl": [-0.00533021, 0.005101, 1.18058466, -0.11236046]},
}


def model_paths(personalized: bool) -> tuple[str, str]:
    import speechmos

    root = os.path.dirname(speechmos.__file__)
    primary = os.path.join(root, "pdnsmos_models" if personalized else "dnsmos_models", "sig_bak_ovr.onnx")
    return primary, os.path.join(root, "dnsmos_models", "model_v8.onnx")


class DNSMOS(BaseMetric):
    """Keys ``<prefix>_sig``, ``_bak``, ``_ovrl``, ``_p808``; at evaluation rates below 16 kHz the audio is
    upsampled (soxr VHQ) and the keys end in ``_from8k`` (DNSMOS is trained on 16 kHz speech, so
    band-limited input scores lower for that reason alone)."""

    needs_reference = False
    requires = ("onnxruntime", "librosa", "speechmos")
    native_sr = SR
    upsample_suffix = True
    value_range = (1.0, 5.0)
    min_seconds = 0.5
    defaults = {"personalized": False, "peak_normalize": False, "threads": 1}

    def __init__(self, card: Any):
        super().__init__(card)
        self._sessions: tuple[Any, Any] | None = None

    def sessions(self) -> tuple[Any, Any]:
        if self._sessions is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = int(self.params["threads"])
            options.inter_op_num_threads = 1
            primary, p808 = model_paths(bool(self.params["personalized"]))
            self._sessions = (ort.InferenceSession(primary, options, providers=["CPUExecutionProvider"]),
                              ort.InferenceSession(p808, options, providers=["CPUExecutionProvider"]))
        return self._sessions

    def score_16k(self, audio: np.ndarray) -> dict[str, float]:
        """The four DNSMOS values of a 16 kHz clip."""
        import librosa

        x = np.asarray(audio, dtype=np.float64)
        if self.params["peak_normalize"]:  # VERSA's convention (pseudo_mos.py divides by max |x|)
            peak = np.max(np.abs(x))
            if peak == 0:
                raise MetricUndefined("DNSMOS with peak normalisation: the clip is all zeros")
            x = x / peak
        while len(x) < WINDOW:
            x = np.concatenate([x, x])
        n_windows = int(np.floor(len(x) / SR) - 9.01) + 1
        segments = np.stack([x[i * HOP: i * HOP + WINDOW] for i in range(n_windows)])
        mel = librosa.feature.melspectrogram(y=segments[:, :-160], sr=SR, n_fft=321, hop_length=160, n_mels=120)
        # librosa.power_to_db(ref=np.max) per window, then DNSMOS's (dB + 40) / 40
        top = np.max(mel, axis=(1, 2), keepdims=True)
        db = 10.0 * np.log10(np.maximum(1e-10, mel)) - 10.0 * np.log10(np.maximum(1e-10, top))
        db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)
        p808_in = ((db + 40.0) / 40.0).transpose(0, 2, 1).astype(np.float32)
        primary, p808 = self.sessions()
        # one window per call: a batched call gives the same values but holds every window's activations
        # at once (ONNX Runtime's arena then keeps ~250 MB per window for the life of the worker)
        raw = np.concatenate([primary.run(None, {"input_1": seg[None].astype(np.float32)})[0] for seg in segments])
        p808_mos = p808.run(None, {"input_1": p808_in})[0][:, 0]
        poly = POLY[bool(self.params["personalized"])]
        values = {name: float(np.mean(np.polyval(poly[name], raw[:, i]))) for i, name in
                  enumerate(("sig", "bak", "ovrl"))}
        values["p808"] = float(np.mean(p808_mos))
        return values

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        rate, suffix = self.rate_for(sr)
        values = self.score_16k(shared.resampled(deg, sr, rate))
        return {f"{self.key_prefix}_{k}{suffix}": v for k, v in values.items()}
