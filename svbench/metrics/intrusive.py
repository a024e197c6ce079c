"""PESQ (ITU-T P.862 via the ``pesq`` package) and STOI/ESTOI (``pystoi``)."""

from __future__ import annotations

import numpy as np

from svbench.metrics.base import BaseMetric, MetricUndefined


class PESQ(BaseMetric):
    """Narrowband (P.862 + P.862.1 mapping) at 8 kHz, wideband (P.862.2) at 16 kHz.

    ``mode = "auto"`` picks from the evaluation rate; the value's key says which: ``pesq_nb``/``pesq_wb``.
    ``mode = "nb"`` also runs at 16 kHz (P.862's narrowband model on 16 kHz input, as the ``pesq``
    package allows); ``mode = "wb"`` needs 16 kHz. Other rates are not resampled here: they are
    'not defined' with the reason (set the card's ``[meta] sample_rate`` to have the engine resample).
    """

    requires = ("pesq",)
    value_range = (-0.5, 4.64)
    min_seconds = 0.25
    defaults = {"mode": "auto"}

    def _mode(self, sr: int) -> str:
        mode = str(self.params["mode"])
        if mode == "auto":
            mode = {8000: "nb", 16000: "wb"}.get(sr, "")
        if mode not in {"nb", "wb"} or (mode == "wb" and sr != 16000) or sr not in (8000, 16000):
            raise MetricUndefined(f"PESQ needs 8 kHz (nb) or 16 kHz (wb) audio, got {sr} Hz in mode {mode!r}")
        return mode

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        from pesq import PesqError, pesq

        mode = self._mode(sr)
        try:
            value = pesq(sr, ref, deg, mode)
        except PesqError as err:
            raise MetricUndefined(f"PESQ: {type(err).__name__}: {err}") from None
        return {f"pesq_{mode}": float(value)}


class STOI(BaseMetric):
    """Short-time objective intelligibility; ``extended = true`` gives ESTOI. pystoi resamples to 10 kHz."""

    requires = ("pystoi",)
    value_range = (0.0, 1.0)  # STOI; ESTOI can dip below 0
    min_seconds = 0.4  # at least 30 frames of 384 samples at 10 kHz survive silence removal
    defaults = {"extended": False}

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        import warnings

        from pystoi import stoi

        extended = bool(self.params["extended"])
        if ref is None or len(ref) != len(deg):
            raise MetricUndefined("STOI needs reference and decoded of equal length (aligned)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi(ref, deg, sr, extended=extended)
        if caught and value == 1e-5:  # pystoi's sentinel when fewer than 30 non-silent frames remain
            raise MetricUndefined(f"STOI: {caught[0].message}")
        return {"estoi" if extended else "stoi": float(value)}
