"""The neural codecs' bitstream: a 24-byte header, then the codes bit-packed MSB first.

Header (big-endian): magic ``b"SVNC"``, version (u8), sample rate (u16), quantizers (u8),
frames (u32), samples (u32, to trim the zero-padded last frame), model id (u32: the first 4 bytes of the
model config hash, so a stream is never decoded by another model), CRC-32 of the payload (u32).
Payload: frame after frame, each frame's ``n_q`` codes of ``bits`` bits each.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

MAGIC = b"SVNC"
VERSION = 1
HEADER = struct.Struct(">4sBHBIIII")


class BitstreamError(ValueError):
    pass


@dataclass(frozen=True)
class Header:
    sample_rate: int
    n_q: int
    frames: int
    samples: int
    model_id: int


def payload_bytes(frames: int, n_q: int, bits: int) -> int:
    return (frames * n_q * bits + 7) // 8


def pack(codes: np.ndarray, bits: int, sample_rate: int, samples: int, model_id: int) -> bytes:
    """codes (frames, n_q) of ints < 2**bits -> bytes."""
    codes = np.asarray(codes, dtype=np.int64)
    frames, n_q = codes.shape
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise BitstreamError(f"codes out of range for {bits} bits")
    shifts = np.arange(bits - 1, -1, -1)
    payload = np.packbits(((codes.reshape(-1, 1) >> shifts) & 1).astype(np.uint8).ravel()).tobytes()
    head = HEADER.pack(MAGIC, VERSION, sample_rate, n_q, frames, samples, model_id, zlib.crc32(payload))
    return head + payload


def read_header(data: bytes, bits: int) -> tuple[Header, bytes]:
    if len(data) < HEADER.size:
        raise BitstreamError(f"truncated bitstream: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, sr, n_q, frames, samples, model_id, crc = HEADER.unpack(data[: HEADER.size])
    if magic != MAGIC:
        raise BitstreamError(f"not an svbench neural codec bitstream (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise BitstreamError(f"bitstream version {version} is not supported (this svbench reads version {VERSION})")
    payload = data[HEADER.size:]
    want = payload_bytes(frames, n_q, bits)
    if len(payload) != want:
        what = "truncated" if len(payload) < want else "over-long"
        raise BitstreamError(f"{what} bitstream: header announces {frames} frames x {n_q} codes = {want} "
                             f"payload bytes, found {len(payload)}")
    if zlib.crc32(payload) != crc:
        raise BitstreamError("corrupted bitstream: payload CRC-32 mismatch")
    return Header(sr, n_q, frames, samples, model_id), payload


def unpack(data: bytes, bits: int) -> tuple[Header, np.ndarray]:
    head, payload = read_header(data, bits)
    n = head.frames * head.n_q
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: n * bits].reshape(n, bits).astype(np.int64)
    codes = flat @ (1 << np.arange(bits - 1, -1, -1))
    return head, codes.reshape(head.frames, head.n_q)
