"""Other toolkits' MCD/F0 definitions, re-implemented so a user can reproduce their published numbers.

- ``VersaMcdF0``: VERSA's ``mcd_f0`` (wavlab-speech/versa ``versa/sequence_metrics/mcd_f0.py``,
  itself adapted from ESPnet/S3PRL-VC). Waveform scaled by 32767, 70 Hz low-cut FIR (255 taps,
  ``scipy.signal.firwin``), WORLD Harvest F0 (40-800 Hz, 5 ms), CheapTrick (FFT 1024),
  ``pysptk.sp2mc`` order 39, alpha 0.466 at every sample rate, all 40 coefficients (c0 included).
  ``dtw = false``: frames truncated to the shorter signal (refused when the lengths differ by 10 %
  or more), F0RMSE in Hz over all frames (unvoiced frames count as 0 Hz), F0CORR = Pearson.
  ``dtw = true``: frames whose normalised power is above -20 dB, aligned by ``fastdtw`` for MCD;
  voiced frames of each signal aligned by a second ``fastdtw`` for F0RMSE/F0CORR.
- ``EspnetMcd``: ESPnet's ``egs2/TEMPLATE/asr1/pyscripts/utils/evaluate_mcd.py``: waveform on the
  int16 scale, ``pysptk.mcep`` of Hamming-windowed frames (FFT 1024, shift 256, no padding,
  etype 1, eps 1e-6), order and alpha from ESPnet's per-rate table, ``fastdtw`` on all frames, all
  coefficients (c0 included).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svbench.metrics import shared
from svbench.metrics.base import BaseMetric, MetricUndefined
from svbench.metrics.spectral import mcd_frames

VERSA_DEFAULTS = {"f0min": 40.0, "f0max": 800.0, "mcep_shift": 5.0, "mcep_fftl": 1024, "mcep_dim": 39,
                  "mcep_alpha": 0.466, "seq_mismatch_tolerance": 0.1, "power_threshold": -20.0,
                  "dtw": False, "filter_cutoff": 70.0}
# ESPnet _get_best_mcep_params: sample rate -> (mcep_dim, mcep_alpha)
ESPNET_MCEP = {16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 44100: (39, 0.53), 48000: (39, 0.55)}


def _fastdtw(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from fastdtw import fastdtw
    from scipy.spatial.distance import euclidean

    _, path = fastdtw(a, b, dist=euclidean)
    twf = np.asarray(path).T
    return twf[0], twf[1]


class VersaMcdF0(BaseMetric):
    """Keys ``<prefix>_mcd`` (dB), ``<prefix>_f0rmse`` (Hz), ``<prefix>_f0corr``; computed at the
    evaluation rate, as VERSA does (it does not change order or alpha with the rate)."""

    requires = ("pyworld", "pysptk", "scipy", "fastdtw")
    higher_is_better = False
    value_range = (0.0, float("inf"))
    min_seconds = 0.1
    defaults = dict(VERSA_DEFAULTS)

    def features(self, x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        p = self.params
        key = ("versa_world", shared.digest(x), sr, *(p[k] for k in sorted(VERSA_DEFAULTS) if k != "dtw"))
        return shared.memo(key, lambda: self._extract(x, sr))

    def _extract(self, x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        import pysptk
        import pyworld
        from scipy.signal import firwin, lfilter

        p = self.params
        y = np.asarray(x, dtype=np.float64) * np.iinfo(np.int16).max
        taps = firwin(255, p["filter_cutoff"] / (sr // 2), pass_zero=False)
        y = lfilter(taps, 1, y)
        f0, t = pyworld.harvest(y, sr, f0_floor=p["f0min"], f0_ceil=p["f0max"], frame_period=p["mcep_shift"])
        sp = pyworld.cheaptrick(y, f0, t, sr, fft_size=int(p["mcep_fftl"]))
        mcep = pysptk.sp2mc(sp, int(p["mcep_dim"]), float(p["mcep_alpha"]))
        # frame power of the envelope (trapezoid-free sum over the full FFT), in dB re the utterance mean
        half = sp.shape[1] - 1
        power = (sp[:, 0] + sp[:, half] + 2.0 * np.sum(sp[:, 1:half], axis=1)) / (2 * half)
        npow = 10.0 * np.log10(power / np.mean(power))
        return {"f0": f0, "mcep": mcep, "npow": npow}

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        from scipy.stats import pearsonr

        assert ref is not None
        pred, gt = self.features(deg, sr), self.features(ref, sr)
        k = self.key_prefix
        if self.params["dtw"]:
            thr = float(self.params["power_threshold"])
            p_m, g_m = pred["mcep"][pred["npow"] > thr], gt["mcep"][gt["npow"] > thr]
            if len(p_m) == 0 or len(g_m) == 0:
                raise MetricUndefined("VERSA mcd_f0 (dtw): no frame above the power threshold")
            i, j = _fastdtw(p_m, g_m)
            mcd = float(np.mean(mcd_frames(p_m[i], g_m[j])))
            p_idx, g_idx = np.flatnonzero(pred["f0"] > 0), np.flatnonzero(gt["f0"] > 0)
            if len(p_idx) == 0 or len(g_idx) == 0:
                which = "decoded" if len(p_idx) == 0 else "reference"
                raise MetricUndefined(f"VERSA mcd_f0 (dtw): no voiced frame in the {which} signal, so F0RMSE/F0CORR "
                                      f"are undefined (MCD alone would be {mcd:.4f} dB)")
            i, j = _fastdtw(pred["mcep"][p_idx], gt["mcep"][g_idx])
            f0_p, f0_g = pred["f0"][p_idx][i], gt["f0"][g_idx][j]
        else:
            a, b = len(pred["f0"]), len(gt["f0"])
            n = min(a, b)
            if (a + b - 2 * n) / (a + b) >= float(self.params["seq_mismatch_tolerance"]):
                raise MetricUndefined(f"VERSA mcd_f0: frame counts differ too much ({a} vs {b})")
            mcd = float(np.mean(mcd_frames(pred["mcep"][:n], gt["mcep"][:n])))
            f0_p, f0_g = pred["f0"][:n], gt["f0"][:n]
        out = {f"{k}_mcd": mcd, f"{k}_f0rmse": float(np.sqrt(np.mean((f0_p - f0_g) ** 2)))}
        if np.ptp(f0_p) > 0 and np.ptp(f0_g) > 0:
            out[f"{k}_f0corr"] = float(pearsonr(f0_p, f0_g)[0])
        return out


class EspnetMcd(BaseMetric):
    """Key ``<prefix>_db``. At rates outside ESPnet's table (e.g. 8 kHz) the value is 'not defined'
    unless the card sets ``mcep_dim`` and ``mcep_alpha`` (or ``[meta] sample_rate`` to resample)."""

    requires = ("pysptk", "scipy", "fastdtw")
    higher_is_better = False
    value_range = (0.0, float("inf"))
    min_seconds = 0.1
    defaults: dict[str, Any] = {"n_fft": 1024, "n_shift": 256, "mcep_dim": None, "mcep_alpha": None}

    def mcep(self, x: np.ndarray, sr: int) -> np.ndarray:
        import pysptk

        p = self.params
        if p["mcep_dim"] is None or p["mcep_alpha"] is None:
            if sr not in ESPNET_MCEP:
                raise MetricUndefined(f"ESPnet has no mel-cepstrum order/alpha for {sr} Hz (its table: "
                                      f"{', '.join(str(r) for r in ESPNET_MCEP)}); set mcep_dim and mcep_alpha")
            dim, alpha = ESPNET_MCEP[sr]
        else:
            dim, alpha = int(p["mcep_dim"]), float(p["mcep_alpha"])
        n_fft, shift = int(p["n_fft"]), int(p["n_shift"])

        def run() -> np.ndarray:
            y = np.asarray(x, dtype=np.float64) * 32768.0  # the int16 scale ESPnet reads files at
            fr = shared.frames(y, n_fft, shift)
            if len(fr) == 0:
                raise MetricUndefined(f"ESPnet MCD: shorter than one {n_fft}-sample frame")
            return np.asarray(pysptk.mcep(fr * pysptk.sptk.hamming(n_fft), dim, alpha, eps=1e-6, etype=1))

        return shared.memo(("espnet_mcep", shared.digest(x), sr, dim, alpha, n_fft, shift), run)

    def compute(self, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
        assert ref is not None
        gen, gt = self.mcep(deg, sr), self.mcep(ref, sr)
        i, j = _fastdtw(gen, gt)
        return {f"{self.key_prefix}_db": float(np.mean(mcd_frames(gen[i], gt[j])))}
