"""WORLD-based metrics: F0RMSE (+ voicing decision error) and SaRMSE (aperiodicity RMSE).

Both analyse at 16 kHz (``analysis_sr``) and share one WORLD analysis per signal (``shared``):
F0 by DIO + StoneMask (default) or Harvest, 5 ms frames; D4C aperiodicity from the same F0.
"""

from __future__ import annotations

import numpy as np

from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined

WORLD_DEFAULTS = {"f0_method": "dio", "frame_period_ms": 5.0, "f0_floor": 71.0, "f0_ceil": 800.0,
                  "analysis_sr": 16000}
AP_FLOOR_DB = -60.0  # D4C's own lower limit (aperiodicity 0.001)
GPE_THRESHOLD = 0.2  # gross pitch error: F0 off by more than 20% (Chu and Alwan, ICASSP 2009; the usual definition)


def _pair_f0(metric: BaseMetric, ref: np.ndarray, deg: np.ndarray, sr: int):
    cfg = shared.WorldConfig.from_params(metric.params)
    rate = int(metric.params["analysis_sr"])
    ref_a, deg_a = shared.resampled(ref, sr, rate), shared.resampled(deg, sr, rate)
    f0_ref, _ = shared.world_f0(ref_a, rate, cfg)
    f0_deg, _ = shared.world_f0(deg_a, rate, cfg)
    n = min(len(f0_ref), len(f0_deg))
    return cfg, rate, ref_a, deg_a, f0_ref[:n], f0_deg[:n]


class F0RMSE(BaseMetric):
    """RMSE (Hz) between reference and decoded F0 over frames voiced in both, the voicing decision
    error: the fraction of all frames whose voiced/unvoiced decisions differ, and the gross pitch error:
    the fraction of frames voiced in both whose decoded F0 is off by more than 20% (octave errors). Frames are paired by
    time (the engine has removed the codec delay); the longer signal's extra frames are dropped."""

    requires = ("pyworld",)
    native_sr = 16000
    higher_is_better = False
    value_range = (0.0, float("inf"))
    min_seconds = 0.1
    defaults = dict(WORLD_DEFAULTS)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        _, _, _, _, f0_ref, f0_deg = _pair_f0(self, ref, deg, sr)
        v_ref, v_deg = f0_ref > 0, f0_deg > 0
        both = v_ref & v_deg
        if not v_ref.any():
            raise MetricUndefined(f"F0RMSE: the reference has no voiced frame ({len(f0_ref)} frames, "
                                  f"{self.params['f0_method']}); all-unvoiced input has no F0 to compare")
        if not both.any():
            vde = float(np.mean(v_ref != v_deg))
            raise MetricUndefined(f"F0RMSE: no frame is voiced in both (reference {int(v_ref.sum())}, decoded "
                                  f"{int(v_deg.sum())} voiced of {len(f0_ref)}; voicing decision error {vde:.3f})")
        rmse = float(np.sqrt(np.mean((f0_ref[both] - f0_deg[both]) ** 2)))
        gross = np.abs(f0_deg[both] - f0_ref[both]) > GPE_THRESHOLD * f0_ref[both]
        return {f"{self.key_prefix}_hz": rmse, f"{self.key_prefix}_vde": float(np.mean(v_ref != v_deg)),
                f"{self.key_prefix}_gpe": float(np.mean(gross))}


class SaRMSE(BaseMetric):
    """svbench's definition (the SVCODEC paper names SaRMSE without defining it): RMSE in dB between
    the WORLD D4C aperiodicity spectra of reference and decoded, ``20*log10(ap)`` floored at -60 dB,
    over the frequency bins below the common bandwidth (the evaluation rate's Nyquist: 4 kHz for
    narrowband) and the frames voiced in both. D4C is run at 16 kHz because at 8 kHz it returns 1.0
    in every bin (a naive SaRMSE is then 0 for every codec); narrowband input is upsampled (soxr) and
    the key says so (``sarmse_db_from8k``). The uncoded D4C spectra are used:
    ``pyworld.code_aperiodicity`` groups them in 3 kHz bands, too coarse below 4 kHz."""

    requires = ("pyworld",)
    native_sr = 16000
    upsample_suffix = True
    higher_is_better = False
    value_range = (0.0, 60.0)
    min_seconds = 0.1
    defaults = dict(WORLD_DEFAULTS)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        cfg, rate, ref_a, deg_a, f0_ref, f0_deg = _pair_f0(self, ref, deg, sr)
        both = (f0_ref > 0) & (f0_deg > 0)
        if not both.any():
            raise MetricUndefined(f"SaRMSE: no frame is voiced in both signals (reference {int((f0_ref > 0).sum())}"
                                  f", decoded {int((f0_deg > 0).sum())} voiced of {len(f0_ref)})")
        ap_ref = shared.world_aperiodicity(ref_a, rate, cfg)[: len(both)][both]
        ap_deg = shared.world_aperiodicity(deg_a, rate, cfg)[: len(both)][both]
        bins = ap_ref.shape[1]
        freqs = np.arange(bins) * (rate / 2) / (bins - 1)
        band = freqs < min(sr, rate) / 2
        db_ref = np.maximum(20 * np.log10(np.maximum(ap_ref[:, band], 1e-12)), AP_FLOOR_DB)
        db_deg = np.maximum(20 * np.log10(np.maximum(ap_deg[:, band], 1e-12)), AP_FLOOR_DB)
        _, suffix = self.rate_for(sr)
        return {f"{self.key_prefix}_db{suffix}": float(np.sqrt(np.mean((db_ref - db_deg) ** 2)))}
