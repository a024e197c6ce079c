"""Non-intrusive metrics (DNSMOS) score the decoded audio as the codec produced it, not the aligned crop.

Expected values come from upstream: ``speechmos.dnsmos.run`` (the package whose ONNX models svbench
loads) on the whole decoded file, upsampled to the 16 kHz DNSMOS needs with soxr VHQ as svbench does.
The decoded files are the SVCODEC demo page's Codec 2 outputs (../shared/data/svcodec-demo).
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import soxr

from svbench import audio
from svbench.cli import main

from .conftest import DEMO, need

CODEC2 = "3 Codec2"


@pytest.fixture(scope="module")
def demo_refs(tmp_path_factory):
    root = need(DEMO / "reference" / "org")
    out = tmp_path_factory.mktemp("refs") / "refs.csv"
    assert main(["data", "import", "dir", str(root), "-o", str(out)]) == 0
    return out


def dnsmos_rows(ws, key_like: str) -> pd.DataFrame:
    with sqlite3.connect(str(ws / "svbench.sqlite")) as con:
        return pd.read_sql_query("SELECT utt_id, bitrate, key, value FROM scores WHERE key LIKE ? "
                                 "ORDER BY utt_id, bitrate, key", con, params=(key_like,))


@pytest.fixture(scope="module")
def two_alignments(demo_refs, tmp_path_factory):
    folder = need(DEMO / "decoded" / CODEC2)
    base = tmp_path_factory.mktemp("ws")
    for mode in ("envelope", "none"):
        assert main(["run", "--codec", "precomputed", "--decoded", str(folder), "--bitrate", "1.2k",
                     "--dataset", str(demo_refs), "--skip-missing", "--metrics", "dnsmos", "--align", mode,
                     "--workspace", str(base / mode), "--workers", "1", "--quiet"]) == 0
    return base


def test_dnsmos_is_the_same_whatever_the_alignment(two_alignments):
    a = dnsmos_rows(two_alignments / "envelope", "dnsmos%")
    b = dnsmos_rows(two_alignments / "none", "dnsmos%")
    assert len(a) == 5 * 8  # 5 clips x (sig, bak, ovrl, p808) x (decoded, reference)
    assert a.equals(b)


def test_dnsmos_equals_upstream_on_the_whole_decoded_file(two_alignments):
    from speechmos import dnsmos

    stored = dnsmos_rows(two_alignments / "envelope", "dnsmos_ovrl_from8k").set_index("utt_id").value
    for path in sorted((DEMO / "decoded" / CODEC2 / "1k2").glob("*.wav")):
        clip = audio.read(path)
        upstream = dnsmos.run(soxr.resample(clip.samples, clip.sr, 16000, quality="VHQ"), 16000)["ovrl_mos"]
        utt = path.stem.split(" ", 1)[1]
        assert abs(stored[utt] - upstream) < 0.01, (utt, stored[utt], upstream)


def test_the_reference_score_is_stored_beside_and_is_the_recordings_own(two_alignments):
    """The reference's DNSMOS under the decoded audio's band limit: the same for every bitrate, and the
    value upstream gives the reference brought to 8 kHz and back to 16 kHz."""
    from speechmos import dnsmos

    stored = dnsmos_rows(two_alignments / "envelope", "dnsmos_ovrl_from8k_ref").set_index("utt_id").value
    assert len(stored) == 5
    refs = {p.stem: p for p in (DEMO / "reference" / "org").rglob("*.flac")}
    for utt, value in stored.items():
        clip = audio.read(refs[utt])
        at8k = soxr.resample(clip.samples, clip.sr, 8000, quality="VHQ")
        upstream = dnsmos.run(soxr.resample(at8k, 8000, 16000, quality="VHQ"), 16000)["ovrl_mos"]
        assert abs(value - upstream) < 0.01, (utt, value, upstream)


def test_a_cropped_excerpt_is_scored_whole(demo_refs, tmp_path):
    """--crop-reference compares intrusive metrics on the matching span of the reference; DNSMOS still
    sees the whole decoded excerpt (here: the first 3 s of a Codec 2 output)."""
    import soundfile as sf
    from speechmos import dnsmos

    source = sorted((DEMO / "decoded" / CODEC2 / "3k2").glob("*.wav"))[0]
    clip = audio.read(source)
    excerpt = clip.samples[: 3 * clip.sr]
    folder = tmp_path / "cropped"
    folder.mkdir()
    sf.write(folder / source.name, excerpt, clip.sr)
    assert main(["run", "--codec", "precomputed", "--decoded", str(folder), "--bitrate", "3.2k",
                 "--dataset", str(demo_refs), "--skip-missing", "--crop-reference", "--metrics", "dnsmos",
                 "--workspace", str(tmp_path / "ws"), "--workers", "1", "--quiet"]) == 0
    stored = dnsmos_rows(tmp_path / "ws", "dnsmos_ovrl_from8k").value.iloc[0]
    upstream = dnsmos.run(soxr.resample(excerpt, clip.sr, 16000, quality="VHQ"), 16000)["ovrl_mos"]
    assert abs(stored - upstream) < 0.01
