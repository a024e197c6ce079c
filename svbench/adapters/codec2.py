"""Codec 2 through libcodec2, in process, with pycodec2 (its wheel bundles libcodec2 1.2).

Chosen over driving the ffmpeg program because it avoids a process start and two pipes per
utterance; ``benchmarks/codec2_backends.py`` measures both.

Bitstream: ``b"SVC2"``, mode (u16, bit/s), sample count (u32), then the frames as libcodec2 packs
them (whole bytes per frame). ``payload_bits`` counts the codec's bits per frame, not the byte
padding, so 700C measures 700 bit/s.
"""

from __future__ import annotations

import struct

import numpy as np

from svbench.adapters.base import CardCodec, CodecError
from svbench.audio import from_int16, to_int16
from svbench.bitrate import Bitrate

_MAGIC = b"SVC2"
_HEADER = struct.Struct(">4sHI")


def _codec(mode: int):  # type: ignore[no-untyped-def]
    import pycodec2

    return pycodec2.Codec2(mode)  # pycodec2 takes the mode's bit/s; 700 selects 700C


class Codec2Codec(CardCodec):
    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        codec = _codec(bitrate.bps)
        spf = codec.samples_per_frame()
        pcm = to_int16(audio)
        n_samples = len(pcm)
        pcm = np.pad(pcm, (0, -n_samples % spf))
        frames = [codec.encode(pcm[i : i + spf]) for i in range(0, len(pcm), spf)]
        return _HEADER.pack(_MAGIC, bitrate.bps, n_samples) + b"".join(frames)

    def _parse(self, bitstream: bytes):  # type: ignore[no-untyped-def]
        if len(bitstream) < _HEADER.size or bitstream[:4] != _MAGIC:
            raise CodecError("not an svbench Codec 2 bitstream (bad header)")
        _, mode, n_samples = _HEADER.unpack(bitstream[: _HEADER.size])
        try:
            codec = _codec(mode)
        except (KeyError, ValueError):
            raise CodecError(f"Codec 2 bitstream names an unknown mode {mode}") from None
        payload = bitstream[_HEADER.size :]
        frames_needed = -(-n_samples // codec.samples_per_frame())
        if len(payload) != frames_needed * codec.bytes_per_frame():
            raise CodecError(f"truncated Codec 2 bitstream: {len(payload)} bytes, "
                             f"{frames_needed * codec.bytes_per_frame()} expected for {n_samples} samples")
        return codec, n_samples, payload

    def decode(self, bitstream: bytes) -> np.ndarray:
        codec, n_samples, payload = self._parse(bitstream)
        step = codec.bytes_per_frame()
        pcm = [codec.decode(payload[i : i + step]) for i in range(0, len(payload), step)]
        out = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
        return from_int16(out[:n_samples])

    def payload_bits(self, bitstream: bytes) -> int:
        codec, _, payload = self._parse(bitstream)
        return len(payload) // codec.bytes_per_frame() * codec.bits_per_frame()
