"""PLCMOS (speechmos's ONNX model): the same value on every run and whatever ran before it in the worker,
upstream's own value once upstream is seeded the same way, the rate travelling with the audio (no 8 kHz
samples labelled 16 kHz), and bad input not defined with the reason."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from svbench import audio, engine
from svbench.metrics import shared
from svbench.metrics.base import load_metric, metric_from_card

UTT = "61-70968-0000"


@pytest.fixture(scope="module")
def speech8(speech16) -> np.ndarray:
    return audio.resample(audio.Audio(speech16, 16000), 8000).samples


@pytest.fixture(scope="module")
def plcmos():
    return load_metric("plcmos")


def upstream_seeded(x16: np.ndarray, seed: int = 0) -> float:
    """speechmos's own PLCMOS.get_mos after seeding the global generator it draws its raters from."""
    from speechmos.plcmos import PLCMOS

    np.random.seed(seed)
    return float(PLCMOS().get_mos(x16))


def test_two_runs_give_identical_values_whatever_the_global_random_state(plcmos, speech16):
    first = plcmos(None, speech16, 16000)
    np.random.seed(12345)
    np.random.normal(size=1000)  # anything else in the worker that draws from numpy's global generator
    assert plcmos(None, speech16, 16000) == first
    assert load_metric("plcmos")(None, speech16.copy(), 16000) == first  # a fresh worker's metric


def test_upstream_unseeded_changes_from_run_to_run_which_is_why_svbench_seeds(speech16):
    from speechmos.plcmos import PLCMOS

    upstream = PLCMOS()
    assert upstream.get_mos(speech16) != upstream.get_mos(speech16)


def test_the_value_is_upstreams_seeded_value_and_the_seed_matters(plcmos, speech16):
    assert plcmos.describe()["params"]["seed"] == 0  # recorded with every run
    assert plcmos(None, speech16, 16000)["plcmos"] == pytest.approx(upstream_seeded(speech16, 0), abs=1e-5)
    card = plcmos.card
    reseeded = metric_from_card(dataclasses.replace(card, data={**card.data, "params": {"seed": 1}}))
    assert reseeded(None, speech16, 16000)["plcmos"] != plcmos(None, speech16, 16000)["plcmos"]


def test_plcmos_is_the_same_whether_or_not_dnsmos_ran_before_it_at_8khz(plcmos, speech8, speech16):
    dnsmos = load_metric("dnsmos")

    def plcmos_value(metrics):
        shared.clear()
        rows = {key: value for _, key, value, *_ in engine.score(metrics, speech8, speech8, 8000)}
        return rows["plcmos_from8k"]  # the key says the 8 kHz clip was upsampled

    alone, after_dnsmos, before_dnsmos = (plcmos_value([plcmos]), plcmos_value([dnsmos, plcmos]),
                                          plcmos_value([plcmos, dnsmos]))
    assert alone == after_dnsmos == before_dnsmos
    # the rate travelled with the audio: upstream on the soxr-upsampled clip, not on 8 kHz samples called 16 kHz
    upsampled = audio.resample(audio.Audio(speech8, 8000), 16000).samples
    assert alone == pytest.approx(upstream_seeded(upsampled), abs=1e-5)
    assert abs(alone - upstream_seeded(speech8)) > 0.1  # the trap this guards against changes the value


def test_plcmos_is_non_intrusive(plcmos, speech16):
    assert plcmos.describe()["needs_reference"] is False
    [(_, key, value, reason, *_)] = engine.score([plcmos], np.zeros_like(speech16), speech16, 16000)
    assert key == "plcmos" and value is not None, reason  # the reference is not looked at


def reason(metric, deg, sr):
    [(_, key, value, why, *_)] = engine.score([metric], deg, deg, sr)
    assert value is None, (key, value)
    return why


def test_silence_short_clips_and_nan_are_not_defined(plcmos, speech16):
    assert reason(plcmos, np.zeros(16000, np.float32), 16000).startswith("not defined: decoded audio is silent")
    assert reason(plcmos, speech16[:4800], 16000) == "not defined: clip too short: 0.300 s < 0.5 s"
    bad = speech16.copy()
    bad[10] = np.inf
    assert "NaN/inf" in reason(plcmos, bad, 16000)
