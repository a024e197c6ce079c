"""The decoder-side postfilters (svbench/dsp/postfilter.py): streaming = offline, causal, and the
properties of G.729's long-term (section 4.2.1) and short-term (4.2.2-4.2.4) postfilters that follow from
their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz
from scipy.signal import freqz, lfilter, lfiltic, welch

from svbench.dsp.postfilter import (
    FormantPostfilter,
    PitchPostfilter,
    all_pole,
    levinson,
    make_postfilter,
)

SR = 8000


def harmonic(n: int, period: int, seed: int = 0) -> np.ndarray:
    """A strictly periodic signal: 12 harmonics of SR / period with random phases."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return sum(np.cos(2 * np.pi * k * t / period + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 13)) * 0.1


def test_streaming_equals_offline_for_any_chunking() -> None:
    x = harmonic(4000, 67) + 0.05 * np.random.default_rng(1).standard_normal(4000)
    offline = PitchPostfilter(SR).apply(x)
    for chunk in (160, 40, 37, 1000):
        pf = PitchPostfilter(SR)
        parts = [pf.push(x[i: i + chunk]) for i in range(0, len(x), chunk)]
        streamed = np.concatenate(parts)  # whole 5 ms subframes only; the rest waits for more samples
        assert len(streamed) == len(x) // 40 * 40
        np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-6, rtol=0)


def test_causal() -> None:
    x = harmonic(4000, 80) + 0.05 * np.random.default_rng(2).standard_normal(4000)
    x2 = x.copy()
    x2[2500:] = np.random.default_rng(3).standard_normal(1500)
    y, y2 = PitchPostfilter(SR).apply(x), PitchPostfilter(SR).apply(x2)
    np.testing.assert_array_equal(y[:2480], y2[:2480])  # 2500 lies in the subframe starting at 2480
    assert not np.allclose(y[2480:], y2[2480:])


@pytest.mark.parametrize("period", [27, 67, 80, 150])  # f0 296, 119, 100, 53 Hz
def test_a_periodic_signal_passes_unchanged(period: int) -> None:
    """With the lag at the period, y[n - P] = y[n], so (y + g y[n - P]) / (1 + g) = y: the filter only acts
    on what is not periodic. (Lags that are multiples of the period correlate as well and give the same.)"""
    x = harmonic(4000, period)
    y = PitchPostfilter(SR).apply(x)
    start = 160 + 160  # once the 20 ms window and one longest lag lie inside the signal
    np.testing.assert_allclose(y[start:], x[start:], atol=1e-6)


def test_white_noise_is_left_alone() -> None:
    """No lag of white noise correlates with it above the voicing threshold (0.5; the largest of 141
    normalised correlations over 160 samples is ~0.25), so unvoiced input passes unchanged."""
    x = np.random.default_rng(4).standard_normal(8000) * 0.1
    np.testing.assert_allclose(PitchPostfilter(SR).apply(x), x, atol=1e-6)


def test_raises_the_harmonics_against_the_noise_between_them() -> None:
    """Harmonics pass at gain 1 while uncorrelated noise is scaled by sqrt(1 + g^2) / (1 + g): at most
    -2.55 dB for G.729's g = 0.5. So the SNR of a voiced signal plus white noise rises, by less than that."""
    clean = harmonic(16000, 64)
    noise = 0.3 * np.std(clean) * np.random.default_rng(5).standard_normal(16000)
    y = PitchPostfilter(SR).apply(clean + noise)
    start = 320
    snr_in = 10 * np.log10(np.sum(clean[start:] ** 2) / np.sum(noise[start:] ** 2))
    snr_out = 10 * np.log10(np.sum(clean[start:] ** 2) / np.sum((y - clean)[start:] ** 2))  # y - clean: filtered noise
    assert 1.0 < snr_out - snr_in < 2.6


# ---------------------------------------------------------------- the formant (short-term) postfilter

def formants(n: int, seed: int, freqs: tuple = (500, 1500), radius: float = 0.97) -> tuple[np.ndarray, np.ndarray]:
    """White noise through an all-pole filter with resonances at ``freqs``: (signal, its A(z))."""
    a = np.array([1.0])
    for f in freqs:
        a = np.convolve(a, [1, -2 * radius * np.cos(2 * np.pi * f / SR), radius ** 2])
    return lfilter([1.0], a, np.random.default_rng(seed).standard_normal(n)) * 0.01, a


def reference_formant(x: np.ndarray) -> np.ndarray:
    """G.729 section 4.2.2-4.2.4 written out subframe by subframe with scipy (LPC by a Toeplitz solve, the
    filters by lfilter with carried state), as a check on the batched implementation."""
    order, sub, win = 10, 40, np.hamming(240)
    lag = 2 * np.pi * 60 / SR * np.arange(order + 1)
    lag_window = np.exp(-0.5 * lag ** 2)
    lag_window[0] = 1.0001
    buf = np.concatenate([np.zeros(240), x])
    out, past, gain = [], np.zeros(order), 1.0
    for end in range(240 + sub, len(buf) + 1, sub):
        f = buf[end - 240:end] * win
        r = np.array([f[: 240 - k] @ f[k:] for k in range(order + 1)]) * lag_window
        a = np.concatenate([[1.0], solve_toeplitz(r[:order], -r[1:])])
        num, den = a * 0.55 ** np.arange(order + 1), a * 0.7 ** np.arange(order + 1)
        h = lfilter(num, den, np.eye(1, 22)[0])
        k1 = -(h[:-1] @ h[1:]) / (h @ h)
        mu = 0.8 * k1 if k1 < 0 else 0.0
        seg = buf[end - sub - order:end]
        residual = lfilter(num, [1.0], seg)[order:] / np.abs(h[:20]).sum()
        y = lfilter([1.0], den, residual, zi=lfiltic([1.0], den, past))[0]
        tilted = y + mu * np.concatenate([[past[0]], y[:-1]])
        past = np.concatenate([y[::-1], past])[:order]
        target = np.abs(buf[end - sub:end]).sum() / np.abs(tilted).sum()
        for n in range(sub):
            gain = 0.85 * gain + 0.15 * target
            tilted[n] *= gain
        out.append(tilted)
    return np.concatenate(out)


def test_levinson_matches_a_toeplitz_solve() -> None:
    x = formants(4000, 6)[0]
    r = np.array([x[: len(x) - k] @ x[k:] for k in range(11)])
    np.testing.assert_allclose(levinson(r[None])[0, 1:], solve_toeplitz(r[:10], -r[1:]), rtol=1e-8, atol=1e-10)


def test_all_pole_matches_lfilter_with_initial_state() -> None:
    rng = np.random.default_rng(7)
    den, x, past = np.array([1, -1.6, 0.9, 0.1]), rng.standard_normal(50), rng.standard_normal(3)
    expected = lfilter([1.0], den, x, zi=lfiltic([1.0], den, past))[0]
    np.testing.assert_allclose(all_pole(den[None], x[None], past[None])[0], expected, atol=1e-12)


def test_formant_postfilter_equals_g729_written_out() -> None:
    x = formants(3000, 8)[0] + harmonic(3000, 70) * 0.05  # the filter returns float32: rtol 1e-6
    np.testing.assert_allclose(FormantPostfilter(SR).apply(x), reference_formant(x), rtol=1e-6, atol=1e-9)


def test_formant_postfilter_streams_as_offline_and_is_causal() -> None:
    x = formants(4000, 9)[0]
    offline = FormantPostfilter(SR).apply(x)
    for chunk in (160, 37, 1000):
        pf = FormantPostfilter(SR)
        streamed = np.concatenate([pf.push(x[i: i + chunk]) for i in range(0, len(x), chunk)])
        np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-6, rtol=0)
    x2 = x.copy()
    x2[2500:] = 0.0
    np.testing.assert_array_equal(FormantPostfilter(SR).apply(x2)[:2480], offline[:2480])


def test_formant_postfilter_shapes_the_spectrum_as_its_definition_says_and_keeps_the_level() -> None:
    """For a signal made by a known all-pole A(z), the filter should act as Â(z/0.55)/Â(z/0.7) (1 + μ z^-1)
    with Â = A (G.729 4.2.2-4.2.3; μ from that filter's impulse response). Its response, computed from the
    true A, predicts the change of the spectrum's shape, relative to 1 kHz, within the error of
    estimating A from 30 ms windows; the gain control keeps the mean absolute level (4.2.4)."""
    x, a = formants(SR * 8, 10)
    y = FormantPostfilter(SR).apply(x)
    powers = np.arange(len(a))
    num, den = a * 0.55 ** powers, a * 0.7 ** powers
    h = lfilter(num, den, np.eye(1, 22)[0])
    k1 = -(h[:-1] @ h[1:]) / (h @ h)
    freqs = [500, 1000, 1500, 2500, 3500]
    response = freqz(num, den, worN=freqs, fs=SR)[1] * freqz([1, 0.8 * min(k1, 0)], [1], worN=freqs, fs=SR)[1]
    predicted = 20 * np.log10(np.abs(response))
    f, px = welch(x, SR, nperseg=512)
    _, py = welch(y, SR, nperseg=512)
    measured = np.array([10 * np.log10(py[np.argmin(abs(f - q))] / px[np.argmin(abs(f - q))]) for q in freqs])
    np.testing.assert_allclose(measured - measured[1], predicted - predicted[1], atol=0.5)
    assert np.ptp(predicted) > 2.0  # the check has something to find
    assert abs(20 * np.log10(np.abs(y).mean() / np.abs(x).mean())) < 0.5


def test_the_chain_streams_as_offline() -> None:
    x = harmonic(4000, 67) + formants(4000, 11)[0]
    offline = make_postfilter("pitch+formant", SR).apply(x)
    chain = make_postfilter("pitch+formant", SR)
    streamed = np.concatenate([chain.push(x[i: i + 160]) for i in range(0, len(x), 160)])
    np.testing.assert_allclose(streamed, offline[: len(streamed)], atol=1e-6, rtol=0)
    assert make_postfilter("none", SR) is None
