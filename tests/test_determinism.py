"""Decoding is a pure function of the bitstream, for every adapter.

Each test decodes one bitstream, then other utterances' bitstreams (so a codec that keeps state across
calls in one process has had the chance to change it), then the first bitstream again, and asks for
identical samples. Codec 2 is also compared with Debian's ``c2dec`` run in a fresh process, the
definition of what a bitstream decodes to.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from svbench import audio
from svbench.bitrate import Bitrate
from svbench.cards import get_card
from svbench.engine import make_codec

from .conftest import DEMO, SPEECH, need


@pytest.fixture(scope="module")
def clips8k():
    folder = need(SPEECH / "cmu_arctic" / "wav")
    return [audio.resample(audio.read(p), 8000).samples for p in sorted(folder.glob("*.wav"))[:3]]


def codec(name):
    c = make_codec(get_card("codecs", name))
    if c.unavailable_reason():
        pytest.skip(c.unavailable_reason())
    return c


def decodes_the_same_after_others(c, clips, rate: str) -> np.ndarray:
    bitrate = Bitrate.parse(rate)
    first, *others = [c.encode(x, bitrate) for x in clips]
    before = c.decode(first)
    for bs in others:
        c.decode(bs)
    again = c.decode(first)
    assert np.array_equal(before, again), f"{c.name}@{rate}: the same bitstream decoded to different audio"
    return before


@pytest.mark.parametrize("name,rate", [("opus", "6k"), ("opus-cbr", "8k"), ("codec2", "3.2k"), ("codec2", "1.2k"),
                                       ("codec2", "0.7k"), ("speex", "8k"), ("codec2-cli", "3.2k"),
                                       ("svcodec", "3k"), ("soundstream", "2k")])
def test_decoding_does_not_depend_on_earlier_decodes(clips8k, name, rate):
    decodes_the_same_after_others(codec(name), clips8k, rate)


def test_evs_decoding_does_not_depend_on_earlier_decodes(evs, clips8k):
    decodes_the_same_after_others(evs, clips8k, "9.6k")


@pytest.mark.skipif(shutil.which("c2dec") is None, reason="needs Debian's codec2 programs (apt-get install codec2)")
@pytest.mark.parametrize("rate,mode", [("3.2k", "3200"), ("1.2k", "1200"), ("0.7k", "700C")])
def test_codec2_decodes_as_a_fresh_c2dec_process(clips8k, tmp_path, rate, mode):
    """Debian's c2dec starts with libcodec2's generator at its initial seed: the in-process decode, after
    other decodes, must give the same samples (c2dec writes whole frames; svbench trims to the input)."""
    c = codec("codec2")
    ours = audio.to_int16(decodes_the_same_after_others(c, clips8k, rate))
    bits = tmp_path / "x.bit"
    bits.write_bytes(c.encode(clips8k[0], Bitrate.parse(rate))[10:])  # without svbench's 10-byte header
    subprocess.run(["c2dec", mode, str(bits), str(tmp_path / "y.raw")], check=True, capture_output=True)
    theirs = np.fromfile(tmp_path / "y.raw", dtype=np.int16)
    assert len(theirs) >= len(ours)
    np.testing.assert_array_equal(ours, theirs[: len(ours)])


def test_precomputed_files_read_the_same_after_others():
    folder = need(DEMO / "decoded")
    files = sorted(p for p in folder.rglob("*.wav"))[:3]
    first = audio.read(files[0]).samples
    for p in files[1:]:
        audio.read(p)
    assert np.array_equal(first, audio.read(files[0]).samples)
