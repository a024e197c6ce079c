"""Codec 2 through libcodec2, in process, with pycodec2 (its wheel bundles libcodec2 1.2).

Chosen over driving the ffmpeg program because it avoids a process start and two pipes per
utterance; ``benchmarks/codec2_backends.py`` measures both.

Bitstream: ``b"SVC2"``, mode (u16, bit/s), sample count (u32), then the frames as libcodec2 packs
them (whole bytes per frame). ``payload_bits`` counts the codec's bits per frame, not the byte
padding, so 700C measures 700 bit/s.

Determinism: libcodec2's decoder draws the phases of unvoiced harmonics from ``codec2_rand()``, a
linear congruential generator whose state is one process-wide static variable that starts at 1 and is
never reset. Decoded audio would then depend on what the process decoded before (at 3200 bit/s two
decodes of one bitstream differed by up to 14,826 of 32,767). Before every decode the adapter sets that
state back to 1, as in a fresh ``c2dec`` process, so decoding is a pure function of the bitstream. The
state is found through the library's symbol table (``next``, read with pyelftools) and checked by
drawing one number: the first draw from seed 1 must be 16838 (the C standard's example ``rand``).
"""

from __future__ import annotations

import ctypes
import functools
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np

from svbench.adapters.base import CardCodec, CodecError
from svbench.audio import from_int16, to_int16
from svbench.bitrate import Bitrate

_MAGIC = b"SVC2"
_HEADER = struct.Struct(">4sHI")


_FIRST_DRAW_FROM_SEED_1 = 16838  # (1 * 1103515245 + 12345) // 65536 % 32768, ISO C's example rand()
_decoding = threading.Lock()  # the generator's state is per process: one decode at a time


class _RandState:
    """libcodec2's ``codec2_rand`` state, as a ctypes view on the loaded library's static variable."""

    def __init__(self) -> None:
        import pycodec2
        from elftools.elf.elffile import ELFFile

        libs = Path(pycodec2.__file__).resolve().parent.parent / "pycodec2.libs"
        found = sorted(libs.glob("libcodec2*.so*"))
        if not found:
            raise OSError(f"libcodec2 not found beside pycodec2 in {libs}")
        self.lib_path = found[0]
        with open(self.lib_path, "rb") as f:
            symtab: Any = ELFFile(f).get_section_by_name(".symtab")
            values = {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name in ("next", "codec2_rand")} \
                if symtab else {}
        if set(values) != {"next", "codec2_rand"}:
            raise OSError(f"{self.lib_path}: symbols codec2_rand and next not in its symbol table")
        self.lib = ctypes.CDLL(str(self.lib_path))  # the copy pycodec2 loaded: dlopen returns the same handle
        base = ctypes.cast(self.lib.codec2_rand, ctypes.c_void_p).value - values["codec2_rand"]  # type: ignore[operator]
        self.state = ctypes.c_ulong.from_address(base + values["next"])
        self.reset()
        if self.lib.codec2_rand() != _FIRST_DRAW_FROM_SEED_1:
            raise OSError(f"{self.lib_path}: the variable named next is not codec2_rand's state")
        self.reset()

    def reset(self) -> None:
        self.state.value = 1


@functools.cache
def _rand_state() -> _RandState | str:
    """The generator's state, or why it cannot be reset (then Codec 2 is unavailable: not deterministic)."""
    try:
        return _RandState()
    except (OSError, ImportError, AttributeError) as err:
        return f"cannot reset libcodec2's random generator, so decoding would not be deterministic: {err}"


def _codec(mode: int):  # type: ignore[no-untyped-def]
    import pycodec2

    return pycodec2.Codec2(mode)  # pycodec2 takes the mode's bit/s; 700 selects 700C


class Codec2Codec(CardCodec):
    requires_modules = ("pycodec2", "elftools")

    def identity(self) -> str:
        # decoded audio from before the generator reset depended on earlier decodes: never reuse it
        return f"{self.card.sha256}+seeded-decoder"

    def unavailable_reason(self) -> str | None:
        state = _rand_state()
        return state if isinstance(state, str) else super().unavailable_reason()

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
        state = _rand_state()
        if isinstance(state, str):
            raise CodecError(state)
        with _decoding:
            state.reset()
            pcm = [codec.decode(payload[i : i + step]) for i in range(0, len(payload), step)]
        out = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
        return from_int16(out[:n_samples])

    def payload_bits(self, bitstream: bytes) -> int:
        codec, _, payload = self._parse(bitstream)
        return len(payload) // codec.bytes_per_frame() * codec.bits_per_frame()
