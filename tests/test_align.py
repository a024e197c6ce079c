"""Delay estimation on real codec output with known, inserted delays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from svbench import align, audio
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.engine import make_codec

from .conftest import SPEECH, need


@pytest.fixture(scope="module")
def clips():
    root = need(SPEECH / "librispeech")
    table = pd.read_csv(root / "manifest.csv")
    table = table[table.path.str.startswith("train-clean-100")].sort_values("duration_s").iloc[40:48]
    return [audio.resample(audio.read(root / p), 8000).samples for p in table.path]


def shifted(x, ms, sr=8000):
    return np.concatenate([np.zeros(int(sr * ms / 1000), np.float32), x])


@pytest.mark.parametrize("ms", [0, 3, 17.5, 60, 200])
def test_pure_delay_of_real_speech_is_found_to_a_millisecond(clips, ms):
    for x in clips[:3]:
        found = align.estimate_delay(x, shifted(x, ms), 8000)
        assert abs(found.delay_ms - ms) <= 1.0
        assert found.confidence > 0.9


def test_decoded_leading_the_reference_gives_a_negative_delay(clips):
    x = clips[0]
    found = align.estimate_delay(shifted(x, 25), x, 8000)
    assert abs(found.delay_ms + 25) <= 1.0


@pytest.mark.parametrize(
    "codec,rate,shift_ms,per_utt_ms",
    # A shift that is not a whole number of codec frames re-cuts the frames, so the decoded audio
    # itself changes, and with 40 ms frames (1300, 700C) so does the codec's own delay. There the
    # shift is one whole frame, the only case whose true delay is known; the per-utterance bound is
    # looser and the pooled (median) estimate carries the precision.
    [("codec2", "3.2k", 17.5, 1.0), ("opus", "6k", 17.5, 1.0), ("codec2", "1.3k", 40, 8.0),
     ("codec2", "0.7k", 40, 8.0)],
)
def test_inserted_delay_through_a_real_codec_is_recovered(clips, codec, rate, shift_ms, per_utt_ms):
    """Code x and x delayed by a known shift: the estimates must differ by it, whatever the codec's own delay."""
    c = make_codec(get_card("codecs", codec))
    b = Bitrate.parse(rate)
    d0 = np.array([align.estimate_delay(x, c.decode(c.encode(x, b)), 8000).delay_ms for x in clips])
    d1 = np.array([align.estimate_delay(x, c.decode(c.encode(shifted(x, shift_ms), b)), 8000).delay_ms
                   for x in clips])
    assert np.max(np.abs(d1 - d0 - shift_ms)) <= per_utt_ms
    assert abs(np.median(d1) - np.median(d0) - shift_ms) <= 1.5


def test_codec2_fixed_delay_scatters_less_than_waveform_correlation(clips):
    """Codec 2 has one fixed delay; the envelope estimate must scatter less than a waveform xcorr peak."""
    from scipy.signal import correlate

    c = make_codec(get_card("codecs", "codec2"))
    env, wav = [], []
    for x in clips:
        y = c.decode(c.encode(x, Bitrate.parse("3.2k")))
        env.append(align.estimate_delay(x, y, 8000).delay_ms)
        xc = correlate(y, x, mode="full", method="fft")
        lags = np.arange(-(len(x) - 1), len(y))
        keep = np.abs(lags) <= 2000
        wav.append(lags[keep][np.argmax(xc[keep])] / 8.0)
    spread = lambda v: np.subtract(*np.percentile(v, [90, 10]))  # noqa: E731
    assert spread(env) < 5.0
    assert spread(env) < spread(wav)


def test_apply_shifts_then_cuts_to_common_length():
    ref = np.arange(100, dtype=np.float32)
    deg = np.concatenate([np.zeros(10, np.float32), ref[:60]])
    r, d = align.apply(ref, deg, 10)
    assert len(r) == len(d) == 60 and np.array_equal(r, d)
    r, d = align.apply(ref, ref[5:], -5)  # decoded leads by 5 samples
    assert len(r) == len(d) == 95 and np.array_equal(r, d)


def test_fft_cross_correlation_equals_scipy():
    from scipy.signal import correlate

    rng = np.random.default_rng(3)
    for na, nb in [(50, 80), (81, 30), (1, 7), (64, 64)]:
        a, b = rng.normal(size=na), rng.normal(size=nb)
        assert np.allclose(align._xcorr_full(a, b), correlate(a, b, mode="full", method="direct"))
