"""The decoder-side pitch postfilter (svbench/neural/postfilter.py): streaming = offline, causal, and the
properties of a long-term postfilter (G.729 section 4.2.1) that follow from its definition."""

from __future__ import annotations

import numpy as np
import pytest

from svbench.neural.postfilter import PitchPostfilter

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
