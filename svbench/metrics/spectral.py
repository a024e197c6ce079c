"""Spectral distances: LSD (log-spectral distance) and svbench's MCD (mel-cepstral distortion)."""

from __future__ import annotations

import numpy as np

from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined
from svbench.metrics.world import WORLD_DEFAULTS

MCD_CONST = 10.0 / np.log(10.0) * np.sqrt(2.0)  # dB per unit of Euclidean mel-cepstral distance


class LSD(BaseMetric):
    """Log-spectral distance in dB at the evaluation rate: periodic-Hann STFT (``frame_ms`` 32,
    ``hop_ms`` 8, no padding), power normalised by the window energy and floored at ``floor`` (1e-10,
    about the power of 16-bit quantisation noise on a [-1, 1] scale); per frame the RMS over all bins
    (0 Hz to Nyquist) of ``10*log10(P_ref / P_deg)``, then the mean over frames. No gain matching."""

    higher_is_better = False
    value_range = (0.0, float("inf"))
    min_seconds = 0.05
    defaults = {"frame_ms": 32.0, "hop_ms": 8.0, "floor": 1e-10}

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        frame = int(round(self.params["frame_ms"] * sr / 1000))
        hop = int(round(self.params["hop_ms"] * sr / 1000))
        p_ref = shared.power_spectrogram(ref, sr, frame, hop)
        p_deg = shared.power_spectrogram(deg, sr, frame, hop)
        n = min(len(p_ref), len(p_deg))
        if n == 0:
            raise MetricUndefined(f"LSD: shorter than one {self.params['frame_ms']} ms frame")
        floor = float(self.params["floor"])
        diff = 10 * np.log10(np.maximum(p_ref[:n], floor)) - 10 * np.log10(np.maximum(p_deg[:n], floor))
        per_frame = np.sqrt(np.mean(diff**2, axis=1))
        return {f"{self.key_prefix}_db": float(np.mean(per_frame))}


def mcd_frames(mc_a: np.ndarray, mc_b: np.ndarray) -> np.ndarray:
    """Per-frame MCD in dB of paired mel-cepstra (rows)."""
    return MCD_CONST * np.sqrt(np.sum((mc_a - mc_b) ** 2, axis=1))


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact DTW (steps (1,1), (1,0), (0,1); Euclidean local cost) through librosa's compiled DTW."""
    import librosa

    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean", backtrack=True)
    path = path[::-1]
    return path[:, 0], path[:, 1]


class MCD(BaseMetric):
    """Mel-cepstral distortion (dB): WORLD CheapTrick envelopes of both signals at 16 kHz (the same
    WORLD analysis F0RMSE and SaRMSE use), ``pysptk.sp2mc`` to order 24 with the all-pass constant
    ``pysptk.util.mcepalpha(16000)`` (0.41), c0 (energy) excluded, mean over all frames of
    ``10/ln10 * sqrt(2 * sum_d (mc_ref - mc_deg)^2)``. Frames are paired by time (``dtw = false``;
    the engine has removed the codec delay) or by exact DTW (``dtw = true``, card ``mcd-dtw``).
    Narrowband input is upsampled and the key says so (``mcd_db_from8k``)."""

    requires = ("pyworld", "pysptk")
    native_sr = 16000
    upsample_suffix = True
    higher_is_better = False
    value_range = (0.0, float("inf"))
    min_seconds = 0.1
    defaults = {**WORLD_DEFAULTS, "order": 24, "alpha": "auto", "include_c0": False, "dtw": False}

    def __init__(self, card):  # type: ignore[no-untyped-def]
        super().__init__(card)
        if self.params["dtw"]:
            self.requires = (*self.requires, "librosa")
        self.native_sr = int(self.params["analysis_sr"])

    def alpha(self, rate: int) -> float:
        import pysptk

        alpha = self.params["alpha"]
        return float(pysptk.util.mcepalpha(rate)) if alpha == "auto" else float(alpha)

    def mcep(self, x: np.ndarray, rate: int) -> np.ndarray:
        import pysptk

        cfg = shared.WorldConfig.from_params(self.params)
        order, alpha = int(self.params["order"]), self.alpha(rate)
        return shared.memo(("sp2mc", shared.digest(x), rate, cfg, order, alpha),
                           lambda: pysptk.sp2mc(shared.world_envelope(x, rate, cfg), order, alpha))

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        rate, suffix = self.rate_for(sr)
        mc_ref = self.mcep(shared.resampled(ref, sr, rate), rate)
        mc_deg = self.mcep(shared.resampled(deg, sr, rate), rate)
        if not self.params["include_c0"]:
            mc_ref, mc_deg = mc_ref[:, 1:], mc_deg[:, 1:]
        if self.params["dtw"]:
            i, j = dtw_path(mc_ref, mc_deg)
            per_frame = mcd_frames(mc_ref[i], mc_deg[j])
        else:
            n = min(len(mc_ref), len(mc_deg))
            per_frame = mcd_frames(mc_ref[:n], mc_deg[:n])
        return {f"{self.key_prefix}_db{suffix}": float(np.mean(per_frame))}
