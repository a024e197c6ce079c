"""A decoder-side pitch (long-term) postfilter, as in CELP decoders (ITU-T G.729 section 4.2.1, AMR):
per 5 ms subframe it finds the pitch lag of the decoded speech by normalised autocorrelation over the
last 20 ms and mixes in the signal one period back, which raises the harmonics against the noise
between them. It uses no bits and no look-ahead: only decoded samples up to the end of the current
subframe. Streaming (``push`` chunk by chunk) and offline (``apply``) run the same code, so they agree.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class PitchPostfilter:
    def __init__(self, sample_rate: int, gamma: float = 0.5, voicing: float = 0.5, f0_range: tuple = (50, 400),
                 subframe_ms: float = 5.0, window_ms: float = 20.0):
        self.args = dict(sample_rate=sample_rate, gamma=gamma, voicing=voicing, f0_range=f0_range,
                         subframe_ms=subframe_ms, window_ms=window_ms)
        self.gamma, self.voicing = gamma, voicing
        self.sub = round(sample_rate * subframe_ms / 1000)
        self.win = round(sample_rate * window_ms / 1000)
        self.min_lag, self.max_lag = round(sample_rate / f0_range[1]), round(sample_rate / f0_range[0])
        self.history = np.zeros(self.win + self.max_lag, dtype=np.float64)  # decoded samples before the chunk
        self.pending = np.zeros(0, dtype=np.float64)  # samples short of a whole subframe

    def _subframes(self, buf: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Filter the subframes ending at ``ends`` (each with win + max_lag samples of buf before it); the
        filter reads unfiltered samples only, so subframes are independent and go in batches."""
        lags = np.arange(self.min_lag, self.max_lag + 1)
        seg_len = self.win + self.max_lag - self.min_lag
        nfft = 1 << (seg_len + self.win).bit_length()
        segments = sliding_window_view(buf, seg_len)
        squares = np.concatenate([[0.0], np.cumsum(buf * buf)])
        out = []
        for batch in np.array_split(ends, max(1, len(ends) // 64)):
            start = batch - self.win  # where each subframe's analysis window starts
            target = buf[start[:, None] + np.arange(self.win)]  # (S, win)
            past_start = start[:, None] - lags  # (S, L): the window one lag earlier
            # correlation with every lag at once: seg[j : j + win] . target for j = max_lag - lag
            spec = np.fft.rfft(segments[start - self.max_lag], nfft) * np.conj(np.fft.rfft(target, nfft))
            corr = np.fft.irfft(spec, nfft)[:, self.max_lag - lags]
            energy = squares[past_start + self.win] - squares[past_start]
            rho = corr / np.sqrt(np.maximum(energy, 0) * (target * target).sum(1)[:, None] + 1e-12)
            best = rho.argmax(1)
            rows = np.arange(len(batch))
            for k in (3, 2):  # a multiple of the period correlates as well: prefer the period itself
                near = np.round((best + self.min_lag) / k)[:, None].astype(int) + np.arange(-1, 2) - self.min_lag
                rho_near = np.where(near >= 0, rho[rows[:, None], np.maximum(near, 0)], -np.inf)
                take = rho_near.max(1) >= 0.85 * rho[rows, best]
                best = np.where(take, near[rows, rho_near.argmax(1)], best)
            peak = rho[rows, best]
            gain = np.where(peak >= self.voicing, self.gamma * peak, 0.0)[:, None]
            now = batch[:, None] - self.sub + np.arange(self.sub)
            out.append((buf[now] + gain * buf[now - (best + self.min_lag)[:, None]]) / (1 + gain))
        return np.concatenate(out).reshape(-1)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Filter the next decoded samples; returns as many filtered samples as whole subframes allow."""
        buf = np.concatenate([self.history, self.pending, np.asarray(samples, dtype=np.float64)])
        start = len(self.history)
        n = (len(buf) - start) // self.sub * self.sub
        out = self._subframes(buf, start + np.arange(self.sub, n + 1, self.sub)) if n else np.zeros(0)
        keep = start + n
        self.history, self.pending = buf[keep - len(self.history):keep], buf[keep:]
        return out.astype(np.float32)

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Offline: a fresh filter over a whole signal (zero-padded to whole subframes, trimmed back)."""
        x = np.asarray(samples, dtype=np.float64)
        return PitchPostfilter(**self.args).push(np.concatenate([x, np.zeros(-len(x) % self.sub)]))[: len(x)]
