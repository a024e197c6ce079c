"""Opus through libopus, in process, with PyAV (the libopus that PyAV's wheel bundles).

Bitstream: ``b"SVOP"``, the OpusHead (u16 length + bytes; it carries the pre-skip), then each Opus
packet as u16 length + bytes. ``payload_bits`` counts only the Opus packets, so a request below
libopus's floor shows up as a measured bitrate above the nominal one.
"""

from __future__ import annotations

import fractions
import struct

import av
import numpy as np
import soxr

from svbench.adapters.base import CardCodec, CodecError, fit_length
from svbench.audio import from_int16, to_int16
from svbench.bitrate import Bitrate

_MAGIC = b"SVOP"
_DECODER_RATE = 48000  # FFmpeg's libopus decoder always outputs 48 kHz


class OpusCodec(CardCodec):
    requires_modules = ("av",)

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        enc = av.CodecContext.create("libopus", "w")
        enc.sample_rate = self.sample_rate
        enc.format = "s16"
        enc.layout = "mono"
        enc.bit_rate = bitrate.bps
        enc.options = {
            "application": str(self.params.get("application", "voip")),
            "frame_duration": str(self.params.get("frame_ms", 20)),
            "vbr": str(self.params.get("vbr", "off")),
        }
        enc.open()
        pcm = to_int16(audio)
        n_samples = len(pcm)
        size = enc.frame_size
        pcm = np.pad(pcm, (0, -n_samples % size))
        packets: list[bytes] = []
        for start in range(0, len(pcm), size):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + size], format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = start
            frame.time_base = fractions.Fraction(1, self.sample_rate)
            packets.extend(bytes(p) for p in enc.encode(frame))
        packets.extend(bytes(p) for p in enc.encode(None))
        head = bytes(enc.extradata or b"")
        parts = [_MAGIC, struct.pack(">I", n_samples), struct.pack(">H", len(head)), head]
        for packet in packets:
            parts += [struct.pack(">H", len(packet)), packet]
        return b"".join(parts)

    def _split(self, bitstream: bytes) -> tuple[int, bytes, list[bytes]]:
        if bitstream[:4] != _MAGIC or len(bitstream) < 10:
            raise CodecError("not an svbench Opus bitstream (bad header)")
        (n_samples,) = struct.unpack(">I", bitstream[4:8])
        (head_len,) = struct.unpack(">H", bitstream[8:10])
        pos = 10 + head_len
        head = bitstream[10:pos]
        packets = []
        while pos < len(bitstream):
            if pos + 2 > len(bitstream):
                raise CodecError("truncated Opus bitstream")
            (size,) = struct.unpack(">H", bitstream[pos : pos + 2])
            packets.append(bitstream[pos + 2 : pos + 2 + size])
            if len(packets[-1]) != size:
                raise CodecError("truncated Opus bitstream")
            pos += 2 + size
        return n_samples, head, packets

    def decode(self, bitstream: bytes) -> np.ndarray:
        n_samples, head, packets = self._split(bitstream)
        dec = av.CodecContext.create("libopus", "r")
        dec.layout = "mono"
        dec.extradata = head
        chunks: list[np.ndarray] = []
        try:
            for packet in packets:
                chunks.extend(f.to_ndarray()[0] for f in dec.decode(av.Packet(packet)))
        except av.error.FFmpegError as err:
            raise CodecError(f"libopus could not decode: {err}") from None
        pcm48 = from_int16(np.concatenate(chunks)) if chunks else np.zeros(0, np.float32)
        out = soxr.resample(pcm48, _DECODER_RATE, self.sample_rate, quality="VHQ").astype(np.float32)
        return fit_length(out, n_samples, 0, "Opus stream")

    def payload_bits(self, bitstream: bytes) -> int:
        return 8 * sum(len(p) for p in self._split(bitstream)[2])
