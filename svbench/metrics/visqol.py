"""ViSQOL v3 speech mode (16 kHz, lattice quality mapper) through the pure-Python port ``visqol-python``.

The port is not bit-exact with Google's C++ ViSQOL: on the C++ conformance cases for speech mode
with the lattice model (google/visqol ``src/include/conformance.h``, v333) it deviates by at most
0.0067 MOS (measured, see docs/metrics.md); svbench states and tests a bound of 0.01 MOS.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined

SPEECH_SR = 16000
TFLITE_DELEGATE_INFO = "TensorFlow Lite XNNPACK delegate"  # printed by the lattice model's interpreter
CONFORMANCE_BOUND_MOS = 0.01  # |port - C++| on the v333 speech-mode lattice conformance cases (max seen 0.0067)


class ViSQOL(BaseMetric):
    """Speech mode at 16 kHz: other evaluation rates are resampled with soxr (VHQ). Narrowband
    input upsampled to 16 kHz is named ``visqol_from8k``, never ``visqol``: the speech model is
    sensitive up to 8 kHz, so its scores on band-limited input are not comparable with wideband ones."""

    requires = ("visqol",)
    native_sr = SPEECH_SR
    upsample_suffix = True
    value_range = (1.0, 5.0)
    min_seconds = 1.0  # the speech-mode VAD patch creator needs a few 20-frame patches
    defaults = {"use_lattice_model": True, "search_window": 60, "use_unscaled_speech_mos_mapping": False}

    def __init__(self, card: Any):
        super().__init__(card)
        self._api: Any = None

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason or not self.params["use_lattice_model"]:
            return reason
        from visqol.quality_mapper import has_lattice_runtime

        if not has_lattice_runtime():
            return "the lattice quality mapper needs ai-edge-litert: pip install 'visqol-python[lattice]'"
        return None

    def api(self) -> Any:
        """One ViSQOL instance (model loaded once) per metric object, i.e. per worker process."""
        if self._api is None:
            from visqol import VisqolApi

            logging.getLogger("visqol").setLevel(logging.ERROR)  # per-file resampling/alignment chatter
            api = VisqolApi()
            api.create(mode="speech", use_lattice_model=bool(self.params["use_lattice_model"]),
                       search_window=int(self.params["search_window"]),
                       use_unscaled_speech=bool(self.params["use_unscaled_speech_mos_mapping"]))
            self._api = api
        return self._api

    def score_at(self, ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
        """MOS-LQO of a pair at whatever rate it is given (the conformance cases are 48 kHz)."""
        try:
            with shared.native_stderr_without(TFLITE_DELEGATE_INFO):
                result = self.api().measure_from_arrays(np.asarray(ref, dtype=np.float64),
                                                        np.asarray(deg, dtype=np.float64), sr)
        except (ValueError, IndexError) as err:
            raise MetricUndefined(f"ViSQOL: {type(err).__name__}: {err}") from None
        return float(result.moslqo)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        rate, suffix = self.rate_for(sr)
        value = self.score_at(shared.resampled(ref, sr, rate), shared.resampled(deg, sr, rate), rate)
        return {f"{self.key_prefix}{suffix}": value}
