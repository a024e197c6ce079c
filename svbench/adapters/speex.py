"""Speex through libspeex, driven as the ffmpeg program (PyAV's bundled FFmpeg has no libspeex).

Bitstream: the input's sample count (u32; Speex decodes whole 20 ms frames, trimmed back to it), then
the Ogg file that ffmpeg writes. ``payload_bits`` counts the Speex packets only (read back with PyAV's
Ogg demuxer), not the Ogg pages around them; packets are whole bytes, so 2.15k (43 bits a frame)
measures 2.4k.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np

from svbench.adapters.base import CardCodec, CodecError, fit_length, run_program
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
        return struct.pack(">I", len(audio)) + run_program(cmd, to_int16(audio).tobytes())

    def _split(self, bitstream: bytes) -> tuple[int, bytes]:
        if len(bitstream) < 8 or bitstream[4:8] != b"OggS":
            raise CodecError("not an svbench Speex bitstream (no Ogg stream after the header)")
        return struct.unpack(">I", bitstream[:4])[0], bitstream[4:]

    def decode(self, bitstream: bytes) -> np.ndarray:
        n_samples, ogg = self._split(bitstream)
        rate = ["-ar", str(self.sample_rate)]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "ogg", "-i", "pipe:0"]
        cmd += [*_PCM, *rate, "pipe:1"]
        pcm = from_int16(np.frombuffer(run_program(cmd, ogg), dtype="<i2"))
        return fit_length(pcm, n_samples, 2 * self.sample_rate // 50, "Speex stream")  # 2 frames of slack

    def payload_bits(self, bitstream: bytes) -> int:
        try:
            with av.open(io.BytesIO(self._split(bitstream)[1]), mode="r", format="ogg") as container:
                return 8 * sum(int(p.size) for p in container.demux(audio=0))
        except av.error.FFmpegError as err:
            raise CodecError(f"unreadable Speex Ogg stream: {err}") from None
