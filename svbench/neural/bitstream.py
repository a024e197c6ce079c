"""The neural codecs' bitstream: a 24-byte header, then the codes bit-packed MSB first.

Header (big-endian): magic ``b"SVNC"``, version (u8), sample rate (u16), quantizers (u8),
frames (u32), samples (u32, to trim the zero-padded last frame), model id (u32: the first 4 bytes of the
model config hash, so a stream is never decoded by another model), CRC-32 of the payload (u32).
Payload: frame after frame, each frame's ``n_q`` codes of ``bits`` bits each, preceded by the frame's f0
index (``f0_bits`` bits) where the model sends f0 (a source-filter model; the model id says which).
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


def payload_bytes(frames: int, n_q: int, bits: int, f0_bits: int = 0) -> int:
    return (frames * (n_q * bits + f0_bits) + 7) // 8


def _widths(n_q: int, bits: int, f0_bits: int) -> list[int]:
    return [f0_bits] * bool(f0_bits) + [bits] * n_q


def pack(codes: np.ndarray, bits: int, sample_rate: int, samples: int, model_id: int, f0_bits: int = 0) -> bytes:
    """codes (frames, n_q) of ints < 2**bits, after a column of f0 indices < 2**f0_bits if f0_bits -> bytes."""
    codes = np.asarray(codes, dtype=np.int64)
    frames, columns = codes.shape
    widths = _widths(columns - bool(f0_bits), bits, f0_bits)
    columns_bits = []
    for column, width in zip(codes.T, widths, strict=True):
        if column.size and (column.min() < 0 or column.max() >= 1 << width):
            raise BitstreamError(f"codes out of range for {width} bits")
        columns_bits.append((column[:, None] >> np.arange(width - 1, -1, -1)) & 1)
    flat = np.concatenate(columns_bits, 1) if columns_bits else np.zeros((frames, 0), dtype=np.int64)
    payload = np.packbits(flat.astype(np.uint8).ravel()).tobytes()
    head = HEADER.pack(MAGIC, VERSION, sample_rate, columns - bool(f0_bits), frames, samples, model_id,
                       zlib.crc32(payload))
    return head + payload


def read_header(data: bytes, bits: int, f0_bits: int = 0) -> tuple[Header, bytes]:
    if len(data) < HEADER.size:
        raise BitstreamError(f"truncated bitstream: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, sr, n_q, frames, samples, model_id, crc = HEADER.unpack(data[: HEADER.size])
    if magic != MAGIC:
        raise BitstreamError(f"not an svbench neural codec bitstream (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise BitstreamError(f"bitstream version {version} is not supported (this svbench reads version {VERSION})")
    payload = data[HEADER.size:]
    want = payload_bytes(frames, n_q, bits, f0_bits)
    if len(payload) != want:
        what = "truncated" if len(payload) < want else "over-long"
        f0 = f0_bits and f" + {f0_bits}-bit f0"
        raise BitstreamError(f"{what} bitstream: header announces {frames} frames x ({n_q} codes{f0}) = {want} "
                             f"payload bytes, found {len(payload)}")
    if zlib.crc32(payload) != crc:
        raise BitstreamError("corrupted bitstream: payload CRC-32 mismatch")
    return Header(sr, n_q, frames, samples, model_id), payload


def unpack(data: bytes, bits: int, f0_bits: int = 0) -> tuple[Header, np.ndarray]:
    """-> the header and the codes (frames, n_q), after the column of f0 indices if f0_bits."""
    head, payload = read_header(data, bits, f0_bits)
    widths = _widths(head.n_q, bits, f0_bits)
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: head.frames * sum(widths)]
    flat = flat.reshape(head.frames, sum(widths)).astype(np.int64)
    edges = np.cumsum([0] + widths)
    columns = [flat[:, a:b] @ (1 << np.arange(b - a - 1, -1, -1)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return head, np.stack(columns, 1) if columns else np.zeros((head.frames, 0), dtype=np.int64)
