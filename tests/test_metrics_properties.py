"""Properties every metric must have where no published value exists: identity gives the ideal
score, more noise a worse one, a pure delay changes nothing once the engine has aligned the pair,
sample rates are handled as documented, and bad input gives an explained 'not defined'."""

from __future__ import annotations

import numpy as np
import pytest

from svbench import align, audio, engine
from svbench.metrics import shared
from svbench.metrics.base import MetricUndefined, load_metric
from tests.conftest import DEMO, need

PAPER = ["pesq", "stoi", "visqol", "dnsmos", "f0rmse", "sarmse", "lsd", "mcd"]
INTRUSIVE = ["pesq", "stoi", "estoi", "visqol", "f0rmse", "sarmse", "lsd", "mcd", "mcd-dtw", "mcd-versa",
             "mcd-espnet"]
UTT = "61-70968-0000"


@pytest.fixture(scope="module")
def speech16() -> np.ndarray:
    """A real 4.9 s utterance (LibriSpeech 61-70968-0000, the svcodec-demo reference) at 16 kHz."""
    path = next(need(DEMO / "reference").rglob(f"{UTT}.flac"), None)
    if path is None:
        pytest.skip(f"{UTT}.flac not in the svcodec-demo references")
    clip = audio.read(path)
    assert clip.sr == 16000
    return clip.samples


@pytest.fixture(scope="module")
def speech8(speech16: np.ndarray) -> np.ndarray:
    return audio.resample(audio.Audio(speech16, 16000), 8000).samples


def noisy(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    scale = np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + scale * noise).astype(np.float32)


def values(name: str, ref: np.ndarray | None, deg: np.ndarray, sr: int) -> dict[str, float]:
    return load_metric(name)(ref, deg, sr)


# ---------------------------------------------------------------- identity and noise


IDEAL = {"f0rmse_hz": 0.0, "f0rmse_vde": 0.0, "f0rmse_gpe": 0.0, "sarmse_db": 0.0, "lsd_db": 0.0, "mcd_db": 0.0,
         "stoi": 1.0}


@pytest.mark.parametrize("name", ["stoi", "f0rmse", "sarmse", "lsd", "mcd"])
def test_identity_gives_the_ideal_score(name, speech16):
    got = values(name, speech16, speech16.copy(), 16000)
    for key, value in got.items():
        assert value == pytest.approx(IDEAL[key], abs=1e-9), key


def test_identity_gives_the_top_of_the_scale_for_mos_like_metrics(speech16):
    assert values("pesq", speech16, speech16.copy(), 16000)["pesq_wb"] > 4.5
    # google/visqol conformance.h: kConformanceCA01PerfectScoreLattice 4.5056 for a file against itself
    assert values("visqol", speech16, speech16.copy(), 16000)["visqol"] > 4.4


# ViSQOL's speech model saturates at 1.0 by 10 dB SNR of white noise; F0RMSE counts only frames voiced in
# both, and at low SNR DIO unvoices the hardest frames, so its RMSE stops growing there (VDE grows instead).
SNRS = {"visqol": (40.0, 25.0, 15.0), "f0rmse": (40.0, 30.0, 20.0)}


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER + ["estoi", "mcd-dtw"])
def test_more_noise_gives_a_worse_score(name, speech16):
    metric = load_metric(name)
    scores, vde = [], []
    for snr in SNRS.get(name, (30.0, 10.0, 0.0)):
        got = metric(speech16, noisy(speech16, snr), 16000)
        key = next(k for k in got if not k.endswith("_vde"))
        if name == "dnsmos":
            key = "dnsmos_ovrl"
        scores.append(got[key])
        if name == "f0rmse":
            vde.append(got["f0rmse_vde"])
    ordered = scores if not metric.higher_is_better else [-s for s in scores]
    assert ordered[0] < ordered[1] < ordered[2], (name, scores)
    assert vde == sorted(vde), vde


# ---------------------------------------------------------------- delay


@pytest.mark.parametrize("name", ["stoi", "f0rmse", "sarmse", "lsd", "mcd", "pesq"])
def test_a_pure_delay_does_not_change_an_aligned_metric(name, speech8):
    """The engine removes the delay (svbench.align) before scoring; the scores equal identity's."""
    delayed = np.concatenate([np.zeros(300, np.float32), speech8])  # 37.5 ms at 8 kHz
    found = align.estimate_delay(speech8, delayed, 8000)
    assert found.delay_samples == 300
    ref_a, deg_a = align.apply(speech8, delayed, found.delay_samples)
    metric = load_metric(name)
    assert metric(ref_a, deg_a, 8000) == pytest.approx(metric(speech8, speech8.copy(), 8000), abs=1e-9)


def test_dtw_mcd_absorbs_a_delay_that_time_paired_mcd_does_not(speech16):
    delayed = np.concatenate([np.zeros(600, np.float32), speech16])[: len(speech16)]
    plain = values("mcd", speech16, delayed, 16000)["mcd_db"]
    warped = values("mcd-dtw", speech16, delayed, 16000)["mcd_dtw_db"]
    assert warped < 0.5 * plain


# ---------------------------------------------------------------- sample-rate rules


def test_pesq_picks_its_mode_from_the_rate_and_says_so(speech16, speech8):
    assert set(values("pesq", speech8, speech8, 8000)) == {"pesq_nb"}
    assert set(values("pesq", speech16, speech16, 16000)) == {"pesq_wb"}
    with pytest.raises(MetricUndefined, match="8 kHz"):
        values("pesq-wb", speech8, speech8, 8000)
    x = audio.resample(audio.Audio(speech16, 16000), 11025).samples
    with pytest.raises(MetricUndefined, match="11025"):
        values("pesq", x, x, 11025)


def test_narrowband_upsampling_is_named_in_the_keys(speech8, speech16):
    assert set(values("visqol", speech8, speech8, 8000)) == {"visqol_from8k"}
    assert set(values("dnsmos", None, speech8, 8000)) == {f"dnsmos_{k}_from8k" for k in ("sig", "bak", "ovrl", "p808")}
    assert set(values("sarmse", speech8, speech8, 8000)) == {"sarmse_db_from8k"}
    assert set(values("mcd", speech8, speech8, 8000)) == {"mcd_db_from8k"}
    assert set(values("dnsmos", None, speech16, 16000)) == {f"dnsmos_{k}" for k in ("sig", "bak", "ovrl", "p808")}
    x48 = audio.resample(audio.Audio(speech16, 16000), 48000).samples  # downsampled, not upsampled
    assert set(values("visqol", x48, x48, 48000)) == {"visqol"}


def test_narrowband_mcd_is_mcd_of_the_soxr_upsampled_pair(speech8):
    """Documented rule: 8 kHz input is upsampled with soxr (VHQ) to 16 kHz and analysed there."""
    deg = noisy(speech8, 15.0)
    up = [audio.resample(audio.Audio(x, 8000), 16000).samples for x in (speech8, deg)]
    shared.clear()
    assert values("mcd", speech8, deg, 8000)["mcd_db_from8k"] == values("mcd", *up, 16000)["mcd_db"]


def test_d4c_is_flat_at_8khz_so_sarmse_analyses_at_16khz(speech8):
    """The trap the issue names: pyworld.d4c returns 1.0 in every bin for 8 kHz input."""
    import pyworld

    x = speech8.astype(np.float64)
    f0, t = pyworld.dio(x, 8000)
    f0 = pyworld.stonemask(x, f0, t, 8000)
    assert np.count_nonzero(f0) > 100  # voiced speech
    assert np.allclose(pyworld.d4c(x, f0, t, 8000), 1.0, atol=1e-9)
    assert load_metric("sarmse").native_sr == 16000


def test_sarmse_is_zero_for_identity_and_clearly_positive_for_coded_narrowband(speech8):
    from svbench.bitrate import Bitrate
    from svbench.cards import get_card

    codec = engine.make_codec(get_card("codecs", "codec2"))
    if codec.unavailable_reason():
        pytest.skip(f"codec2: {codec.unavailable_reason()}")
    decoded = codec.decode(codec.encode(speech8, Bitrate.parse("1.2k")))
    found = align.estimate_delay(speech8, decoded, 8000)
    ref_a, deg_a = align.apply(speech8, decoded, found.delay_samples)
    assert values("sarmse", speech8, speech8.copy(), 8000)["sarmse_db_from8k"] == 0.0
    assert values("sarmse", ref_a, deg_a, 8000)["sarmse_db_from8k"] > 2.0


def test_sarmse_of_a_published_codec2_decode_is_clearly_positive(speech8):
    deg = audio.read(need(DEMO / "decoded" / "3 Codec2" / "1k2" / f"1 {UTT}.wav"))
    assert deg.sr == 8000
    found = align.estimate_delay(speech8, deg.samples, 8000)
    ref_a, deg_a = align.apply(speech8, deg.samples, found.delay_samples)
    assert values("sarmse", ref_a, deg_a, 8000)["sarmse_db_from8k"] > 2.0


# ---------------------------------------------------------------- bad input


def test_too_short_for_pesq_is_not_defined(speech8):
    short = speech8[:1000]  # 0.125 s
    rows = engine.score([load_metric("pesq")], short, short.copy(), 8000)
    assert rows[0][2] is None and rows[0][3].startswith("not defined: clip too short")
    with pytest.raises(MetricUndefined, match="BufferTooShort"):
        values("pesq", short, short.copy(), 8000)  # called directly, the library's own check answers


@pytest.mark.parametrize("name", INTRUSIVE)
def test_a_silent_reference_is_not_defined(name, speech8):
    with pytest.raises(MetricUndefined, match="reference is silent"):
        values(name, np.zeros_like(speech8), speech8, 8000)


@pytest.mark.parametrize("name", INTRUSIVE + ["dnsmos"])
def test_nan_samples_are_not_defined(name, speech8):
    bad = speech8.copy()
    bad[100:110] = np.nan
    with pytest.raises(MetricUndefined, match="10 NaN/inf samples"):
        values(name, speech8, bad, 8000)
    if load_metric(name).needs_reference:
        with pytest.raises(MetricUndefined, match="NaN"):
            values(name, bad, speech8, 8000)


def test_all_unvoiced_input_has_no_f0rmse():
    noise = (0.1 * np.random.default_rng(3).standard_normal(16000)).astype(np.float32)  # DIO: no voiced frame
    with pytest.raises(MetricUndefined, match="no voiced frame"):
        values("f0rmse", noise, noise.copy(), 16000)
    with pytest.raises(MetricUndefined, match="voiced in both"):
        values("sarmse", noise, noise.copy(), 16000)


def test_engine_records_undefined_metrics_with_their_reason(speech8):
    metrics = [load_metric(n) for n in ("pesq", "f0rmse", "lsd")]
    rows = engine.score(metrics, np.zeros_like(speech8), speech8, 8000)
    assert [(r[0], r[2]) for r in rows] == [("pesq", None), ("f0rmse", None), ("lsd", None)]
    assert all(r[3].startswith("not defined: reference is silent") for r in rows)
