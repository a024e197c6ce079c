"""F0RMSE's gross pitch error (``f0rmse_gpe``), which reports show beside the RMSE: its mean is dominated by
octave errors. Properties from the definition (share of frames voiced in both whose F0 is more than 20% off):
identity gives 0; a pitch shift of 7 semitones (x1.498, 50% off) makes nearly every frame gross; a shift of
one semitone (x1.059, 6% off) almost none, although it moves the RMSE."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from svbench import audio
from svbench.metrics.base import load_metric

from .conftest import SPEECH, need

CLIP = "test-other/1688/1688-142285-0005.flac"  # 4.3 s


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    path = need(SPEECH / "librispeech" / CLIP)
    clip = audio.read(path)
    assert clip.sr == 16000
    return clip.samples


def test_gross_pitch_error_follows_its_definition(speech):
    metric = load_metric("f0rmse")
    same = metric(speech, speech.copy(), 16000)
    assert same["f0rmse_gpe"] == 0.0 and same["f0rmse_hz"] == 0.0
    fifth = metric(speech, librosa.effects.pitch_shift(speech, sr=16000, n_steps=7).astype(np.float32), 16000)
    semitone = metric(speech, librosa.effects.pitch_shift(speech, sr=16000, n_steps=1).astype(np.float32), 16000)
    assert fifth["f0rmse_gpe"] > 0.8
    assert semitone["f0rmse_gpe"] < 0.1 < semitone["f0rmse_hz"]
    assert 0.0 <= semitone["f0rmse_gpe"] <= fifth["f0rmse_gpe"] <= 1.0
