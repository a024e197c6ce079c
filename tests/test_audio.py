"""Audio I/O on real speech and on the bad files users actually have."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from svbench import audio
from svbench.audio import AudioError

from .conftest import SPEECH, need


@pytest.fixture
def speech():
    path = need(SPEECH / "cmu_arctic" / "manifest.csv").parent
    wav = sorted((path / "wav").glob("*.wav"))[0]
    return audio.read(wav), wav


def test_reads_real_speech_as_float32_mono(speech):
    clip, path = speech
    info = sf.info(str(path))
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sr == info.samplerate and len(clip.samples) == info.frames


def test_stereo_is_mixed_down_with_a_note(speech, tmp_path):
    clip, _ = speech
    stereo = np.stack([clip.samples, 0.5 * clip.samples], axis=1)
    path = tmp_path / "stéréo file.wav"  # a space and non-ASCII in the name
    sf.write(str(path), stereo, clip.sr, subtype="FLOAT")
    mono = audio.read(path)
    assert np.allclose(mono.samples, 0.75 * clip.samples, atol=1e-6)  # mean of the two channels
    assert any("2 channels" in n for n in mono.notes)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to make an MP3")
def test_formats_libsndfile_cannot_read_go_through_ffmpeg(speech, tmp_path):
    clip, path = speech
    m4a = tmp_path / "clip.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-c:a", "aac", str(m4a)], check=True)
    decoded = audio.read(m4a)
    assert decoded.sr == clip.sr
    assert abs(decoded.duration - clip.duration) < 0.1  # AAC adds priming samples, well under 0.1 s


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        audio.read(tmp_path / "nope.wav")


def test_truncated_flac_is_refused_or_shorter_never_silently_whole(tmp_path):
    src = need(SPEECH / "librispeech" / "manifest.csv").parent
    flac = sorted(src.rglob("*.flac"))[0]
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[:200])  # header and a few bytes: no complete frame
    with pytest.raises(AudioError, match="cut.flac"):
        audio.check(audio.read(cut), cut)


def test_text_file_with_audio_extension_is_unreadable(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioError, match="notes.wav: unreadable"):
        audio.read(bad)


def test_check_refuses_empty_silent_nan_and_short(tmp_path):
    sr = 8000
    cases = {
        "empty": (np.zeros(0, np.float32), "empty audio"),
        "silent": (np.zeros(sr, np.float32), "silent"),
        "nan": (np.concatenate([np.full(10, np.nan), np.ones(sr - 10)]).astype(np.float32), "10 NaN/inf"),
    }
    for name, (samples, reason) in cases.items():
        with pytest.raises(AudioError, match=reason):
            audio.check(audio.Audio(samples, sr), name)
    noise = np.random.default_rng(0).normal(0, 0.1, sr // 10).astype(np.float32)
    with pytest.raises(AudioError, match="too short"):
        audio.check(audio.Audio(noise, sr), "short", min_seconds=0.5)


def test_nan_in_a_float_wav_file_is_caught(tmp_path):
    path = tmp_path / "nan.wav"
    samples = np.random.default_rng(1).normal(0, 0.1, 8000).astype(np.float32)
    samples[100] = np.nan
    sf.write(str(path), samples, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: 1 NaN/inf"):
        audio.check(audio.read(path), path)


def test_resample_keeps_a_tone_and_its_level():
    sr, f = 16000, 440.0
    t = np.arange(sr) / sr
    tone = audio.Audio((0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)
    down = audio.resample(tone, 8000)
    assert down.sr == 8000 and len(down.samples) == 8000
    spectrum = np.abs(np.fft.rfft(down.samples[1000:-1000] * np.hanning(6000)))
    peak_hz = np.argmax(spectrum) * 8000 / 6000
    assert abs(peak_hz - f) < 2
    assert abs(np.sqrt(np.mean(down.samples[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_unusual_rate_resamples_exactly_to_length():
    clip = audio.Audio(np.random.default_rng(2).normal(0, 0.1, 11025).astype(np.float32), 11025)
    assert len(audio.resample(clip, 8000).samples) == 8000


def test_int16_round_trip_clips_instead_of_wrapping():
    x = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 1.5], np.float32)
    y = audio.from_int16(audio.to_int16(x))
    assert y[0] == -1.0 and y[-1] == pytest.approx(32767 / 32768)
    assert y[3] == 0.5
