"""Speaker similarity (``spk-sim``, resemblyzer's GE2E encoder): identity gives 1, another speaker clearly
less than the same speaker's other utterance, values are resemblyzer's own, and input with no embedding
says why. (Heavier coding giving lower similarity: tests/test_metrics_asr.py, which decodes once for both.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from svbench import audio, engine
from svbench.metrics import shared
from svbench.metrics.base import load_metric
from tests.conftest import SPEECH, need

UTT = "61-70968-0000"


@pytest.fixture(scope="module")
def spk():
    return load_metric("spk-sim")


@pytest.fixture(scope="module")
def speakers() -> dict[str, list[np.ndarray]]:
    """Two 3-8 s utterances each of three LibriSpeech test-other speakers (the manifest's speaker column)."""
    root = need(SPEECH / "librispeech")
    table = pd.read_csv(root / "manifest.csv", dtype={"speaker": str})
    table = table[table.path.str.startswith("test-other/") & table.duration_s.between(3.0, 8.0)]
    out = {}
    for speaker in sorted(table.speaker.unique())[:3]:
        rows = table[table.speaker == speaker].sort_values("duration_s").head(2)
        assert len(rows) == 2
        out[speaker] = [audio.read(root / p).samples for p in rows.path]
    return out


def test_identity_gives_1(spk, speech16):
    assert spk(speech16, speech16.copy(), 16000) == {"spk_sim": pytest.approx(1.0, abs=1e-6)}
    x8 = audio.resample(audio.Audio(speech16, 16000), 8000).samples
    assert spk(x8, x8.copy(), 8000) == {"spk_sim_from8k": pytest.approx(1.0, abs=1e-6)}  # says it upsampled


def test_another_speaker_is_clearly_less_similar_than_the_same_speakers_other_utterance(spk, speakers):
    # GE2E is trained to pull a speaker's utterances together and push other speakers away (Wan et al. 2018)
    for name, (first, second) in speakers.items():
        same = spk(first, second, 16000)["spk_sim"]
        for other, clips in speakers.items():
            if other != name:
                assert same > spk(first, clips[0], 16000)["spk_sim"] + 0.05, (name, other)


def test_values_are_resemblyzers_own(spk, speakers):
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder(device="cpu", verbose=False)  # resemblyzer's documented use, at 16 kHz
    a, b = next(iter(speakers.values()))
    ea, eb = (encoder.embed_utterance(preprocess_wav(x)) for x in (a, b))
    assert spk(a, b, 16000)["spk_sim"] == pytest.approx(float(np.dot(ea, eb)), abs=1e-5)


def test_the_value_does_not_depend_on_the_callers_thread_count(spk, speech16):
    import torch

    noisy = (speech16 + 0.01 * np.random.default_rng(0).standard_normal(len(speech16))).astype(np.float32)
    first = spk(speech16, noisy, 16000)
    shared.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert spk(speech16, noisy, 16000) == first
    finally:
        torch.set_num_threads(threads)


def reason(metric, ref, deg, sr):
    [(_, key, value, why, *_)] = engine.score([metric], ref, deg, sr)
    assert value is None, (key, value)
    return why


def test_silence_and_clips_too_short_for_an_embedding_are_not_defined(spk, speech16):
    assert reason(spk, speech16, np.zeros_like(speech16), 16000).startswith("not defined: decoded audio is silent")
    assert reason(spk, np.zeros_like(speech16), speech16, 16000).startswith("not defined: reference is silent")
    short = speech16[8000:8000 + 12000]  # 0.75 s of speech: above the engine's 0.5 s, below one GE2E partial
    assert reason(spk, short, short, 16000) == ("not defined: reference has 0.75 s of speech after resemblyzer's "
                                                "silence trimming, too short for a speaker embedding (< 1.20 s)")
    assert reason(spk, short[:4000], short[:4000], 16000) == "not defined: clip too short: 0.250 s < 0.5 s"
    bad = speech16.copy()
    bad[100] = np.nan
    assert "NaN" in reason(spk, speech16, bad, 16000)
