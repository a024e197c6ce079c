"""Our metric values against values published (or computed) by each metric's upstream project.

Every expected number below comes from a source outside svbench, named beside it. The upstream test
audio is not part of svbench and is never committed: it lives under $SVBENCH_UPSTREAM_DATA (default
../shared/data/upstream-testdata beside the checkout)/<owner>-<repo>/, byte-identical copies from the
upstream repositories at the commits listed in that folder's SOURCES.md (checked against its
SHA256SUMS below), and the tests skip without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from svbench import audio
from svbench.metrics.base import load_metric
from tests.conftest import SHARED, need

UPSTREAM = Path(os.environ.get("SVBENCH_UPSTREAM_DATA", SHARED / "data" / "upstream-testdata"))


def test_upstream_audio_is_byte_identical_to_its_sources():
    import hashlib

    sums = need(UPSTREAM / "SHA256SUMS").read_text().split("\n")
    checked = 0
    for line in filter(None, sums):
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((UPSTREAM / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
        checked += 1
    assert checked > 0


def read(*parts: str) -> tuple[np.ndarray, int]:
    clip = audio.read(need(UPSTREAM.joinpath(*parts)))
    return clip.samples, clip.sr


def pesq_pair() -> tuple[np.ndarray, np.ndarray, int]:
    ref, sr = read("ludlows-PESQ", "audio", "speech.wav")
    deg, _ = read("ludlows-PESQ", "audio", "speech_bab_0dB.wav")
    return ref, deg, sr


def versa_pair() -> tuple[np.ndarray, np.ndarray, int]:
    """VERSA's golden-test pair: test1 is the reference ('gt'), test2 the prediction ('gen')."""
    ref, sr = read("wavlab-speech-versa", "test", "test_samples", "test1", "test.wav")
    deg, _ = read("wavlab-speech-versa", "test", "test_samples", "test2", "test.wav")
    return ref, deg, sr


# ---------------------------------------------------------------- PESQ


def test_pesq_matches_the_pesq_projects_documented_scores():
    # ludlows/PESQ@65e68e7 tests/test_pesq.py and README: speech.wav vs speech_bab_0dB.wav (16 kHz)
    # wb 1.0832337141036987, nb 1.6072081327438354, asserted there with exact equality.
    ref, deg, sr = pesq_pair()
    assert load_metric("pesq-wb")(ref, deg, sr) == {"pesq_wb": 1.0832337141036987}
    assert load_metric("pesq-nb")(ref, deg, sr) == {"pesq_nb": 1.6072081327438354}
    assert load_metric("pesq")(ref, deg, sr) == {"pesq_wb": 1.0832337141036987}  # auto picks wb at 16 kHz


def test_pesq_and_stoi_match_versa_golden_values():
    # wavlab-speech/versa@c398480 test/test_general.py TEST_INFO (tolerance there 1e-4):
    # pesq 1.5722705125808716, stoi 0.007625108859647406 on test/test_samples test1 (gt) vs test2 (pred).
    ref, deg, sr = versa_pair()
    assert load_metric("pesq")(ref, deg, sr)["pesq_wb"] == pytest.approx(1.5722705125808716, abs=1e-6)
    assert load_metric("stoi")(ref, deg, sr)["stoi"] == pytest.approx(0.007625108859647406, abs=1e-6)


# ---------------------------------------------------------------- STOI / ESTOI


def test_stoi_and_estoi_match_the_matlab_reference():
    # pystoi's own reference: mpariente/pystoi@74872b0 tests/octave/stoi.m and estoi.m (Octave ports of
    # Taal's and Jensen's MATLAB code, which pystoi's test_stoi_octave.py compares against at 1e-6),
    # run with GNU Octave 7.3.0 + signal 1.4.3 on the PESQ example pair at 16 kHz (audioread, same length):
    # stoi 0.6739177895, estoi 0.3904499910.
    ref, deg, sr = pesq_pair()
    assert load_metric("stoi")(ref, deg, sr)["stoi"] == pytest.approx(0.6739177895, abs=1e-6)
    assert load_metric("estoi")(ref, deg, sr)["estoi"] == pytest.approx(0.3904499910, abs=1e-6)


# ---------------------------------------------------------------- ViSQOL

# google/visqol@38d0b01 src/include/conformance.h (kVisqolConformanceNumber 333): speech mode, lattice
# model; the file pairs are those of the C++ conformance test (scripts/create_conformance_scores.py).
VISQOL_CONFORMANCE = [
    ("clean_speech/CA01_01.wav", "clean_speech/transcoded_CA01_01.wav", 3.3129234313964844),  # ...TranscodedLattice
    ("clean_speech/CA01_01.wav", "clean_speech/CA01_01.wav", 4.505550384521484),  # kConformanceCA01PerfectScoreLattice
    ("conformance_testdata_subset/guitar48_stereo.wav", "clean_speech/CA01_01.wav",
     1.4982070922851562),  # kConformanceDifferentAudiosLattice
    ("alignment/reference.wav", "alignment/degraded.wav", 1.19293212890625),  # kConformanceBadDegradedLattice
]


@pytest.mark.slow
@pytest.mark.parametrize("ref_file,deg_file,cpp", VISQOL_CONFORMANCE)
def test_visqol_port_is_within_the_stated_bound_of_the_cpp_conformance_values(ref_file, deg_file, cpp):
    from svbench.metrics.visqol import CONFORMANCE_BOUND_MOS

    ref, sr = read("google-visqol", "testdata", *ref_file.split("/"))
    deg, sr_deg = read("google-visqol", "testdata", *deg_file.split("/"))
    assert sr == sr_deg == 48000  # the C++ test feeds these 48 kHz files to speech mode as they are
    ours = load_metric("visqol").score_at(ref, deg, sr)
    assert abs(ours - cpp) <= CONFORMANCE_BOUND_MOS, (ours, cpp)


# ---------------------------------------------------------------- DNSMOS


def test_dnsmos_matches_versa_golden_values():
    # wavlab-speech/versa@c398480 test/test_general.py TEST_INFO (tolerance 1e-4): dns_overall
    # 1.4526055142443377, dns_p808 2.09430193901062 for test2 (VERSA scores the peak-normalised clip).
    _, deg, sr = versa_pair()
    values = load_metric("dnsmos-versa")(None, deg, sr)
    assert values["dnsmos_versa_ovrl"] == pytest.approx(1.4526055142443377, abs=1e-4)
    assert values["dnsmos_versa_p808"] == pytest.approx(2.09430193901062, abs=1e-4)


# ---------------------------------------------------------------- MCD / F0 conventions


def test_versa_mcd_f0_matches_versa_golden_values():
    # wavlab-speech/versa@c398480 test/test_general.py TEST_INFO with egs/speech.yaml (mcd_f0, dtw false):
    # mcd 5.045226506332897, f0rmse 20.281004489942777, f0corr -0.07540903652440145 (tolerance 1e-4).
    ref, deg, sr = versa_pair()
    values = load_metric("mcd-versa")(ref, deg, sr)
    assert values["versa_mcd"] == pytest.approx(5.045226506332897, abs=1e-6)
    assert values["versa_f0rmse"] == pytest.approx(20.281004489942777, abs=1e-6)
    assert values["versa_f0corr"] == pytest.approx(-0.07540903652440145, abs=1e-6)


# VERSA publishes no golden value for dtw: true, and ESPnet none for evaluate_mcd.py beyond identity.
# The values below were produced by running the upstream functions themselves, unmodified, on the same
# files (versa@c398480 versa/sequence_metrics/mcd_f0.py mcd_f0(pred, gt, 16000, 40, 800, dtw=True);
# espnet@1ca2bea egs2/TEMPLATE/asr1/pyscripts/utils/evaluate_mcd.py calculate() with n_fft 1024,
# n_shift 256, mcep_dim/alpha from its table), with pysptk 1.0.1, pyworld 0.3.5, fastdtw 0.3.4.
UPSTREAM_RUNS = {
    "versa": {"versa_dtw_mcd": 4.628459476965651, "versa_dtw_f0rmse": 6.254309567709106,
              "versa_dtw_f0corr": 0.051788717265650014, "mcd_espnet_db": 1.908831345244881},
    "pesq": {"versa_dtw_mcd": 11.519576738478426, "versa_dtw_f0rmse": 48.43614130610291,
             "versa_dtw_f0corr": -0.18911617862243774, "mcd_espnet_db": 12.720126646735913},
}


@pytest.mark.parametrize("pair", ["versa", "pesq"])
def test_versa_dtw_and_espnet_mcd_match_the_upstream_code(pair):
    ref, deg, sr = versa_pair() if pair == "versa" else pesq_pair()
    values = {**load_metric("mcd-versa-dtw")(ref, deg, sr), **load_metric("mcd-espnet")(ref, deg, sr)}
    for key, expected in UPSTREAM_RUNS[pair].items():
        assert values[key] == pytest.approx(expected, abs=1e-6), key


def test_espnet_mcd_identity_is_zero():
    # espnet/espnet test_utils/test_mcd_calculate_py.bats: a file against itself gives "Mean MCD: 0.00".
    ref, _, sr = pesq_pair()
    assert load_metric("mcd-espnet")(ref, ref.copy(), sr)["mcd_espnet_db"] == pytest.approx(0.0, abs=1e-9)
