"""The source-filter parts: the encoder's pitch coder and the decoder's harmonic excitation.

Expected values come from the signals' construction (a periodic signal of known f0; noise and silence have
none) and from the excitation's definition, computed here independently with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy.signal import get_window  # noqa: E402

from svbench.dsp.pitch import PitchCoder  # noqa: E402
from svbench.neural.heads import harmonic_excitation  # noqa: E402

SR, HOP = 8000, 160


def periodic(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A glottal-pulse-like tone: harmonics of f0 up to 3.5 kHz with amplitudes falling as 1/k."""
    t = np.arange(int(SR * seconds)) / SR
    ks = np.arange(1, int(3500 / f0) + 1)
    return 0.3 * (np.sin(2 * np.pi * f0 * np.outer(t, ks) + ks) / ks).sum(1)


@pytest.mark.parametrize("f0", [82.0, 137.3, 296.0])
def test_pitch_coder_finds_the_f0_of_a_periodic_signal(f0: float) -> None:
    coder = PitchCoder(SR, HOP, 10)
    index = coder.indices(periodic(f0))
    assert (index[2:] > 0).all()  # the first frames lack a period of history
    # 10 bits over 50-400 Hz: steps 0.2 % apart, so the decoded f0 is within 0.1 % plus the estimator's error
    np.testing.assert_allclose(coder.hz(index[2:]), f0, rtol=0.004)


def test_pitch_coder_calls_noise_and_silence_unvoiced() -> None:
    coder = PitchCoder(SR, HOP, 10)
    noise = 0.3 * np.random.default_rng(0).standard_normal(SR)
    assert (coder.indices(noise) == 0).mean() >= 0.9
    assert (coder.indices(np.zeros(SR)) == 0).all()
    assert (coder.indices(periodic(120.0) * 1e-4) == 0).all()  # -80 dBFS: below the level floor


def test_pitch_coder_streams_as_it_runs_offline() -> None:
    x = periodic(137.3) + 0.05 * np.random.default_rng(1).standard_normal(SR)
    coder, streaming = PitchCoder(SR, HOP, 10), PitchCoder(SR, HOP, 10)
    pushed = [streaming.push(x[i: i + HOP]) for i in range(0, len(x), HOP)]
    np.testing.assert_array_equal(pushed, coder.indices(x))
    assert streaming.fresh().push(x[:HOP]) == coder.indices(x[:HOP])[0]


def excitation_by_definition(f0: np.ndarray, n_fft: int, hop: int, f_max: float) -> np.ndarray:
    """harmonic_excitation's docstring, written out with explicit loops over frames and harmonics."""
    window = get_window("hann", n_fft)  # periodic Hann, as torch.hann_window
    out, phase = [], 0.0
    for f in f0:
        n = np.arange(n_fft)
        wave = np.zeros(n_fft)
        k = 1
        while f > 0 and k * f < f_max:
            wave += np.cos(k * (phase + 2 * np.pi * f * n / SR))
            k += 1
        out.append(np.fft.rfft(wave * window) / (n_fft / 4))
        phase += 2 * np.pi * f * hop / SR
    return np.stack(out, 1)


def test_harmonic_excitation_follows_its_definition() -> None:
    f0 = np.array([100.0, 0.0, 137.3, 141.9, 55.0, 380.0, 0.0, 212.4])
    got, _ = harmonic_excitation(torch.tensor(f0)[None], torch.zeros(1, dtype=torch.float64), 160, 40, SR, 3800.0)
    np.testing.assert_allclose(got[0].numpy(), excitation_by_definition(f0, 160, 40, 3800.0), atol=2e-4)


def test_harmonic_excitation_has_unit_harmonics_and_nothing_above_f_max() -> None:
    """f0 = 100 Hz with 160-point frames at 8 kHz: harmonic k sits on bin 2k's centre, where a Hann window's
    transform gives the cosine's amplitude, 1; harmonics stop at 3.8 kHz (bin 76)."""
    spec, _ = harmonic_excitation(torch.full((1, 3), 100.0), torch.zeros(1, dtype=torch.float64), 160, 40, SR, 3801.0)
    mag = spec[0].abs().numpy()
    np.testing.assert_allclose(mag[2:77:2], 1.0, atol=1e-5)
    np.testing.assert_allclose(mag[78:], 0.0, atol=1e-5)


def test_harmonic_excitation_carries_its_phase_across_chunks() -> None:
    f0 = torch.tensor([[0.0, 120.0, 121.5, 123.0, 0.0, 98.7, 99.1, 240.0, 250.0, 260.0]])
    start = torch.tensor([1.0], dtype=torch.float64)
    whole, end = harmonic_excitation(f0, start, 160, 40, SR, 3800.0)
    first, middle = harmonic_excitation(f0[:, :4], start, 160, 40, SR, 3800.0)
    second, end2 = harmonic_excitation(f0[:, 4:], middle, 160, 40, SR, 3800.0)
    torch.testing.assert_close(torch.cat([first, second], -1), whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(end2, end)
