"""Any command-line codec, described entirely by its card.

Card ``[params]``:
- ``encode`` / ``decode``: argument lists with placeholders ``{input}`` (audio file given to the
  encoder), ``{bitstream}``, ``{output}`` (audio file the decoder writes), ``{bps}``, ``{kbps}``,
  ``{sample_rate}``, ``{sample_rate_khz}`` and any per-bitrate value from ``[params.values]``;
- ``audio_format``: ``raw`` (headerless 16-bit little-endian mono, the usual for reference codecs)
  or ``wav``;
- ``[params.values]``: a table per placeholder name mapping a bitrate to its value, e.g. a mode name.

Programs are looked up in the card's ``search_path`` folders, then on PATH. The bitstream svbench
keeps is a small header (bitrate, sample count) plus the program's own bitstream file;
``payload_bits`` counts that file's bytes (a subclass can strip a container's overhead).
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from svbench.adapters.base import CardCodec, CodecError, fit_length, run_program
from svbench.audio import from_int16, to_int16
from svbench.bitrate import Bitrate

_HEADER = struct.Struct(">4sII")
_MAGIC = b"SVCM"


class CommandCodec(CardCodec):
    def _fields(self, bitrate: Bitrate, folder: Path) -> dict[str, str]:
        ext = ".raw" if self.params.get("audio_format", "raw") == "raw" else ".wav"
        fields = {
            "input": str(folder / f"input{ext}"), "output": str(folder / f"output{ext}"),
            "bitstream": str(folder / "bitstream.bin"), "bps": str(bitrate.bps), "kbps": f"{bitrate.bps / 1000:g}",
            "sample_rate": str(self.sample_rate), "sample_rate_khz": f"{self.sample_rate / 1000:g}",
        }
        for name, table in self.params.get("values", {}).items():
            by_rate = {Bitrate.parse(k): str(v) for k, v in table.items()}
            if bitrate not in by_rate:
                raise CodecError(f"card {self.name}: no value of {{{name}}} for {bitrate.label}")
            fields[name] = by_rate[bitrate]
        return fields

    def _run(self, key: str, fields: dict[str, str]) -> None:
        template = self.params.get(key)
        if not template:
            raise CodecError(f"card {self.name}: params.{key} (the command line) is missing")
        try:
            cmd = [part.format(**fields) for part in template]
        except (KeyError, IndexError) as err:
            known = ", ".join("{" + k + "}" for k in fields)
            raise CodecError(f"card {self.name}: params.{key} uses an unknown placeholder {err} "
                             f"(known: {known})") from None
        cmd[0] = self.which(cmd[0]) or cmd[0]
        run_program(cmd, b"")

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        with tempfile.TemporaryDirectory(prefix="svbench-") as tmp:
            fields = self._fields(bitrate, Path(tmp))
            if fields["input"].endswith(".raw"):
                to_int16(audio).astype("<i2").tofile(fields["input"])
            else:
                sf.write(fields["input"], audio, self.sample_rate, subtype="PCM_16")
            self._run("encode", fields)
            payload = Path(fields["bitstream"]).read_bytes()
        return _HEADER.pack(_MAGIC, bitrate.bps, len(audio)) + payload

    def _split(self, bitstream: bytes) -> tuple[Bitrate, int, bytes]:
        if len(bitstream) < _HEADER.size or bitstream[:4] != _MAGIC:
            raise CodecError(f"not an svbench {self.name} bitstream (bad header)")
        _, bps, n_samples = _HEADER.unpack(bitstream[: _HEADER.size])
        return Bitrate(bps), n_samples, bitstream[_HEADER.size :]

    def decode(self, bitstream: bytes) -> np.ndarray:
        bitrate, n_samples, payload = self._split(bitstream)
        with tempfile.TemporaryDirectory(prefix="svbench-") as tmp:
            fields = self._fields(bitrate, Path(tmp))
            Path(fields["bitstream"]).write_bytes(payload)
            self._run("decode", fields)
            out = Path(fields["output"])
            if not out.is_file():
                raise CodecError(f"{self.name}: the decoder wrote no {out.name}")
            if out.suffix == ".raw":
                samples = from_int16(np.fromfile(out, dtype="<i2"))
            else:
                samples, sr = sf.read(str(out), dtype="float32")
                if sr != self.sample_rate:
                    raise CodecError(f"{self.name}: decoder wrote {sr} Hz, card says {self.sample_rate} Hz")
        return fit_length(samples, n_samples, self.sample_rate // 25, self.name)  # 40 ms of slack

    def payload_bits(self, bitstream: bytes) -> int:
        return 8 * len(self._split(bitstream)[2])


class EVSCodec(CommandCodec):
    """3GPP EVS reference programs (TS 26.443) with the MIME storage format (``-mime``).

    That file is a 16-byte header (``#!EVS_MC1.0\n`` and a channel count) then, per 20 ms frame, one
    table-of-contents byte and the frame; ``payload_bits`` counts the frames only.
    """

    MIME_HEADER = 16

    def payload_bits(self, bitstream: bytes) -> int:
        _, n_samples, payload = self._split(bitstream)
        frames = -(-n_samples // (self.sample_rate // 50))
        return 8 * max(0, len(payload) - self.MIME_HEADER - frames)
