"""The f0 that a source-filter model sends beside its codes: one causal pitch estimate per 20 ms frame.

Per frame, YIN's cumulative-mean-normalised difference (de Cheveigne and Kawahara 2002) of the frame's own
samples with the same span tau samples earlier: the first dip under ``threshold`` (the period, not a
multiple), walked down to its bottom, else the lowest point, refined to a fraction of a sample by a
parabola. Voiced where that dip is under ``voicing`` and the frame is louder than ``floor_db`` dBFS. Coded
in ``bits`` bits: 0 = unvoiced, 1 .. 2**bits - 1 = log-uniform steps over ``f0_range`` (10 bits: 0.2 %
apart over 50-400 Hz). Only samples up to the end of the frame are read, so the tracker adds no
look-ahead to the encoder.
"""
from __future__ import annotations

import math

import numpy as np


def lagged_products(buf: np.ndarray, squares: np.ndarray, start: np.ndarray, win: int, lo: int, hi: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the ``win`` samples of ``buf`` from each of ``start`` (S,): their dot product with the same span
    tau samples earlier and that earlier span's energy, for tau = lo..hi (each (S, hi - lo + 1); by FFT), and
    their own energy (S,). ``squares`` is [0, cumsum(buf ** 2)]; buf holds hi samples before each start.
    The pitch postfilter and the pitch coder both search lags with these."""
    lags = np.arange(lo, hi + 1)
    target = buf[start[:, None] + np.arange(win)]
    seg = buf[(start - hi)[:, None] + np.arange(win + hi - lo)]
    nfft = 1 << (2 * win + hi - lo).bit_length()
    # seg[j : j + win] . target for j = hi - tau, every tau at once
    corr = np.fft.irfft(np.fft.rfft(seg, nfft) * np.conj(np.fft.rfft(target, nfft)), nfft)[:, hi - lags]
    past = start[:, None] - lags
    return corr, squares[past + win] - squares[past], (target * target).sum(1)


class PitchCoder:
    def __init__(self, sample_rate: int, hop: int, bits: int, f0_range: tuple[float, float] = (50.0, 400.0),
                 threshold: float = 0.15, voicing: float = 0.35, floor_db: float = -50.0):
        self.args = dict(sample_rate=sample_rate, hop=hop, bits=bits, f0_range=f0_range, threshold=threshold,
                         voicing=voicing, floor_db=floor_db)
        self.sample_rate, self.hop, self.bits = sample_rate, hop, bits
        self.f0_min, self.f0_max = f0_range
        self.threshold, self.voicing, self.floor = threshold, voicing, 10 ** (floor_db / 20)
        self.min_lag = math.floor(sample_rate / self.f0_max)
        self.max_lag = math.ceil(sample_rate / self.f0_min)
        self.levels = (1 << bits) - 1  # voiced indices 1..levels
        self.history = np.zeros(self.max_lag + 1, dtype=np.float64)  # for ``push``

    def difference(self, buf: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """YIN's cumulative-mean-normalised difference of the hop samples ending at each of ``ends`` with
        the same samples tau earlier, tau = 0..max_lag (S, max_lag + 1); buf holds max_lag samples before."""
        squares = np.concatenate([[0.0], np.cumsum(buf * buf)])
        corr, past_energy, _ = lagged_products(buf, squares, ends - self.hop, self.hop, 0, self.max_lag)
        d = np.maximum(corr[:, :1] + past_energy - 2 * corr, 0.0)
        mean = np.cumsum(d[:, 1:], 1) / np.arange(1, self.max_lag + 1)
        return np.concatenate([np.ones((len(ends), 1)), d[:, 1:] / np.maximum(mean, 1e-12)], 1)

    def indices(self, audio: np.ndarray, history: np.ndarray | None = None) -> np.ndarray:
        """audio (T,), T a multiple of hop -> the f0 index of each frame (T // hop,), int64. ``history``: the
        samples before ``audio`` (zeros if not given), at least max_lag + 1 of them."""
        past = np.zeros(self.max_lag + 1) if history is None else history[len(history) - self.max_lag - 1:]
        buf = np.concatenate([past, np.asarray(audio, dtype=np.float64)])
        ends = len(past) + np.arange(self.hop, len(audio) + 1, self.hop)
        if not len(ends):
            return np.zeros(0, dtype=np.int64)
        d = self.difference(buf, ends)
        lo, hi, rows = self.min_lag, self.max_lag, np.arange(len(ends))
        # the first dip under the threshold (the period, not a multiple), else the lowest point
        below = d[:, lo:hi] < self.threshold
        lag = np.where(below.any(1), lo + below.argmax(1), lo + d[:, lo:hi].argmin(1))
        for _ in range(hi - lo):  # walk down to the dip's bottom
            down = (lag < hi) & (d[rows, np.minimum(lag + 1, hi)] < d[rows, lag])
            if not down.any():
                break
            lag = lag + down
        left, mid, right = d[rows, lag - 1], d[rows, lag], d[rows, np.minimum(lag + 1, hi)]
        curve = left - 2 * mid + right
        shift = np.where(curve > 0, 0.5 * (left - right) / np.where(curve > 0, curve, 1.0), 0.0)
        f0 = self.sample_rate / (lag + np.clip(shift, -0.5, 0.5))
        rms = np.sqrt((buf[ends[:, None] - self.hop + np.arange(self.hop)] ** 2).mean(1))
        voiced = (mid < self.voicing) & (rms >= self.floor)
        step = np.log(np.clip(f0, self.f0_min, self.f0_max) / self.f0_min) / math.log(self.f0_max / self.f0_min)
        return np.where(voiced, 1 + np.round(step * (self.levels - 1)), 0).astype(np.int64)

    def fresh(self) -> PitchCoder:
        """A coder with the same settings and no history (for a new stream)."""
        return PitchCoder(**self.args)

    def push(self, frame: np.ndarray) -> int:
        """Streaming: the next frame (hop samples) -> its f0 index; the same as ``indices`` over the whole."""
        index = int(self.indices(frame, self.history)[0])
        self.history = np.concatenate([self.history, np.asarray(frame, dtype=np.float64)])[-self.max_lag - 1:]
        return index

    def hz(self, indices: np.ndarray) -> np.ndarray:
        """f0 indices -> Hz (0 where unvoiced)."""
        i = np.asarray(indices)
        f0 = self.f0_min * (self.f0_max / self.f0_min) ** ((i - 1) / (self.levels - 1))
        return np.where(i > 0, f0, 0.0)
