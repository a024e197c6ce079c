"""Speex through libspeex, driven as the ffmpeg program (PyAV's bundled FFmpeg has no libspeex).

The bitstream is the Ogg file that ffmpeg writes; ``payload_bits`` counts the Speex packets only
(read back with PyAV's Ogg demuxer), not the Ogg pages around them.
"""

from __future__ import annotations

import io

import av
import numpy as np

from svbench.adapters.base import CardCodec, CodecError, run_program
from svbench.audio import from_int16, to_int16
from svbench.bitrate import Bitrate

_PCM = ["-f", "s16le", "-ac", "1"]


class SpeexCodec(CardCodec):
    requires_programs = ("ffmpeg",)

    def _quality(self, bitrate: Bitrate) -> int:
        table = {Bitrate.parse(k): int(v) for k, v in self.params.get("quality", {}).items()}
        if bitrate not in table:
            raise CodecError(f"speex card has no CBR quality for {bitrate.label}")
        return table[bitrate]

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        rate = ["-ar", str(self.sample_rate)]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *_PCM, *rate, "-i", "pipe:0"]
        cmd += ["-c:a", "libspeex", "-cbr_quality", str(self._quality(bitrate)), "-fflags", "+bitexact"]
        cmd += ["-f", "ogg", "pipe:1"]
        return run_program(cmd, to_int16(audio).tobytes())

    def decode(self, bitstream: bytes) -> np.ndarray:
        rate = ["-ar", str(self.sample_rate)]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "ogg", "-i", "pipe:0"]
        cmd += [*_PCM, *rate, "pipe:1"]
        return from_int16(np.frombuffer(run_program(cmd, bitstream), dtype="<i2"))

    def payload_bits(self, bitstream: bytes) -> int:
        try:
            with av.open(io.BytesIO(bitstream), format="ogg") as container:
                return 8 * sum(p.size for p in container.demux(audio=0) if p.size)
        except av.error.FFmpegError as err:
            raise CodecError(f"unreadable Speex Ogg stream: {err}") from None
