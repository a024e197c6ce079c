"""Decoder-side postfilters as in CELP decoders (ITU-T G.729 section 4.2), run on whole 5 ms subframes:

- ``PitchPostfilter``, the long-term half (4.2.1): it finds the pitch lag of the decoded speech by
  normalised autocorrelation over the last 20 ms and mixes in the signal one period back, which raises
  the harmonics against the noise between them;
- ``FormantPostfilter``, the short-term half (4.2.2-4.2.4): it sharpens the formants of an LPC envelope
  estimated from the decoded speech and deepens the valleys between them, at constant level.

They use no bits and no look-ahead: only decoded samples up to the end of the current subframe.
Streaming (``push`` chunk by chunk) and offline (``apply``) run the same code, so they agree.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from svbench.dsp.pitch import lagged_products


class SubframeFilter:
    """Streaming on whole subframes: ``push`` filters what whole subframes the samples so far allow, keeping
    ``history`` samples before them and the rest for the next call; ``apply`` runs a fresh filter over a
    whole signal. Both run the same code, so streaming equals offline. Subclasses set ``args`` (their
    constructor's arguments), ``sub``, ``history`` and ``_subframes``."""

    args: dict
    sub: int
    history: np.ndarray
    pending = np.zeros(0)

    def _subframes(self, buf: np.ndarray, ends: np.ndarray) -> np.ndarray:
        raise NotImplementedError

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
        """Offline: a fresh filter over a whole signal (``Chain.apply`` of this filter alone)."""
        return Chain(self).apply(samples)


class PitchPostfilter(SubframeFilter):
    def __init__(self, sample_rate: int, gamma: float = 0.5, voicing: float = 0.5, f0_range: tuple = (50, 400),
                 subframe_ms: float = 5.0, window_ms: float = 20.0):
        self.args = dict(sample_rate=sample_rate, gamma=gamma, voicing=voicing, f0_range=f0_range,
                         subframe_ms=subframe_ms, window_ms=window_ms)
        self.gamma, self.voicing = gamma, voicing
        self.sub = round(sample_rate * subframe_ms / 1000)
        self.win = round(sample_rate * window_ms / 1000)
        self.min_lag, self.max_lag = round(sample_rate / f0_range[1]), round(sample_rate / f0_range[0])
        self.history = np.zeros(self.win + self.max_lag, dtype=np.float64)  # decoded samples before the chunk

    def _subframes(self, buf: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Filter the subframes ending at ``ends`` (each with win + max_lag samples of buf before it); the
        filter reads unfiltered samples only, so subframes are independent and go in batches."""
        squares = np.concatenate([[0.0], np.cumsum(buf * buf)])
        out = []
        for batch in np.array_split(ends, max(1, len(ends) // 64)):
            # each subframe's analysis window against the same span one lag earlier, every lag at once
            corr, energy, own = lagged_products(buf, squares, batch - self.win, self.win, self.min_lag, self.max_lag)
            rho = corr / np.sqrt(np.maximum(energy, 0) * own[:, None] + 1e-12)
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


def levinson(r: np.ndarray) -> np.ndarray:
    """Autocorrelations r (S, p+1) -> LPC a (S, p+1) with a[:, 0] = 1 (A(z) = sum a_i z^-i); batched
    Levinson-Durbin recursion."""
    p = r.shape[1] - 1
    a, err = np.zeros_like(r), r[:, 0].copy()
    a[:, 0] = 1.0
    for i in range(1, p + 1):
        k = -(a[:, :i] * r[:, i:0:-1]).sum(1) / np.maximum(err, 1e-12)
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * a[:, i - 1::-1][:, :i]
        err = err * (1 - k * k)
    return a


def all_pole(den: np.ndarray, x: np.ndarray, past: np.ndarray) -> np.ndarray:
    """y[..., n] = x[..., n] - sum_i den[..., i] y[..., n - i] (i = 1..p), batched over the leading axes, with
    y[..., -1 - k] = past[..., k] (newest first)."""
    p = den.shape[-1] - 1
    y = np.concatenate([past[..., ::-1], np.zeros_like(x)], -1)
    for n in range(x.shape[-1]):
        y[..., p + n] = x[..., n] - (den[..., 1:] * y[..., p + n - 1: n - 1 if n else None: -1]).sum(-1)
    return y[..., p:]


class FormantPostfilter(SubframeFilter):
    """The short-term half of the CELP decoder's postfilter (ITU-T G.729 section 4.2.2): per 5 ms subframe
    Â(z/γn) / Â(z/γd) with γn = 0.55, γd = 0.7 (sharper formants, deeper valleys between them), the tilt
    compensation 1 + γt k1' z^-1 (γt = 0.8 where k1' < 0, else 0), then the adaptive gain control that keeps
    the decoded signal's level (α = 0.85). G.729 takes Â from its bitstream; here it is estimated backward
    from the decoded speech (10th order, 30 ms Hamming window ending at the subframe, 60 Hz lag window),
    as G.728's postfilter does. No bits, no look-ahead; ``push`` and ``apply`` as in ``PitchPostfilter``."""

    def __init__(self, sample_rate: int, gamma_num: float = 0.55, gamma_den: float = 0.7, tilt: float = 0.8,
                 agc: float = 0.85, order: int = 10, subframe_ms: float = 5.0, window_ms: float = 30.0):
        self.args = dict(sample_rate=sample_rate, gamma_num=gamma_num, gamma_den=gamma_den, tilt=tilt, agc=agc,
                         order=order, subframe_ms=subframe_ms, window_ms=window_ms)
        self.tilt, self.agc, self.order = tilt, agc, order
        self.sub = round(sample_rate * subframe_ms / 1000)
        self.window = np.hamming(round(sample_rate * window_ms / 1000))
        lag = 2 * np.pi * 60 / sample_rate * np.arange(order + 1)
        self.lag_window = np.exp(-0.5 * lag * lag)
        self.lag_window[0] = 1.0001  # white-noise correction (G.729 section 3.2.1)
        self.powers_num, self.powers_den = gamma_num ** np.arange(order + 1), gamma_den ** np.arange(order + 1)
        self.history = np.zeros(len(self.window), dtype=np.float64)  # decoded samples before the chunk
        self.past_out = np.zeros(order)  # outputs of 1/Â(z/γd), newest first
        self.gain = 1.0

    def _subframes(self, buf: np.ndarray, ends: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        frames = buf[ends[:, None] - len(self.window) + np.arange(len(self.window))] * self.window
        r = np.stack([np.einsum("sn,sn->s", frames[:, k:], frames[:, : frames.shape[1] - k])
                      for k in range(self.order + 1)], 1)
        a = levinson(r * self.lag_window)
        num, den = a * self.powers_num, a * self.powers_den
        # impulse response of Â(z/γn)/Â(z/γd) over 22 samples: its gain and its tilt (G.729 4.2.2-4.2.3)
        s, p = len(ends), self.order
        h = all_pole(den, np.pad(num, ((0, 0), (0, 22 - p - 1))), np.zeros((s, p)))
        gf = np.abs(h[:, :20]).sum(1)
        k1 = -(h[:, :-1] * h[:, 1:]).sum(1) / np.maximum((h * h).sum(1), 1e-12)
        mu = np.where(k1 < 0, self.tilt * k1, 0.0)
        now = ends[:, None] - self.sub + np.arange(self.sub)  # the subframes: contiguous, in order
        taps = sliding_window_view(buf[ends[0] - self.sub - p: ends[-1]], p + 1).reshape(s, self.sub, p + 1)
        residual = np.einsum("snk,sk->sn", taps, num[:, ::-1]) / gf[:, None]  # Â(z/γn) on the decoded speech
        # 1/Â(z/γd) carries its last p outputs from subframe to subframe. Each subframe's output is its
        # zero-state response plus the zero-input response of those p outputs, which map to the next p through
        # the companion matrix to the power of the subframe length: only that p x p map runs subframe by
        # subframe.
        zero_state = all_pole(den, residual, np.zeros((s, p)))
        companion = np.zeros((s, p, p))
        companion[:, 0], companion[:, np.arange(1, p), np.arange(p - 1)] = -den[:, 1:], 1.0
        to_last = np.linalg.matrix_power(companion, self.sub)
        last_zero_state = zero_state[:, : -p - 1: -1].copy()
        pasts, past = np.empty((s, p)), self.past_out
        for i in range(s):
            pasts[i] = past
            past = last_zero_state[i] + to_last[i] @ past
        y = zero_state + all_pole(den, np.zeros_like(residual), pasts)
        before = np.concatenate([[self.past_out[0]], y.reshape(-1)[:-1]]).reshape(y.shape)
        self.past_out = past
        tilted = y + mu[:, None] * before
        level = np.abs(tilted).sum(1)
        target = np.where(level > 0, np.abs(buf[now]).sum(1) / np.maximum(level, 1e-30), 1.0)
        # g(n) = α g(n-1) + (1-α) G per sample, G constant over a subframe: closed form within it
        decay = self.agc ** np.arange(1, self.sub + 1)
        at_end = lfilter([1 - decay[-1]], [1, -decay[-1]], target, zi=[decay[-1] * self.gain])[0]
        start_gain = np.concatenate([[self.gain], at_end[:-1]])
        self.gain = float(at_end[-1])
        out = (target[:, None] + (start_gain - target)[:, None] * decay) * tilted
        return out.reshape(-1)


class Chain:
    """Postfilters in series (each ``push`` emits whole subframes, so the chain streams exactly as it runs
    offline)."""

    def __init__(self, *filters: SubframeFilter):
        self.filters = filters

    def push(self, samples: np.ndarray) -> np.ndarray:
        for f in self.filters:
            samples = f.push(samples)
        return samples

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Offline: fresh filters over a whole signal (zero-padded to whole subframes, trimmed back)."""
        fresh = Chain(*(type(f)(**f.args) for f in self.filters))
        sub = self.filters[0].sub
        x = np.asarray(samples, dtype=np.float64)
        return fresh.push(np.concatenate([x, np.zeros(-len(x) % sub)]))[: len(x)]


POSTFILTERS = {"none": (), "pitch": (PitchPostfilter,), "pitch+formant": (PitchPostfilter, FormantPostfilter)}


def make_postfilter(name: str, sample_rate: int) -> Chain | None:
    """The decoder-side postfilter a card names (``[params] postfilter``); None for "none"."""
    return Chain(*(f(sample_rate) for f in POSTFILTERS[name])) if POSTFILTERS[name] else None
