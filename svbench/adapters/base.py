"""The codec protocol and what every adapter shares."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from svbench.bitrate import Bitrate
from svbench.cards import Card


class CodecError(Exception):
    """A codec that could not encode or decode; the message says why."""


@runtime_checkable
class Codec(Protocol):
    name: str
    sample_rate: int

    def bitrates(self) -> list[Bitrate]: ...

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes: ...

    def decode(self, bitstream: bytes) -> np.ndarray: ...


class CardCodec:
    """Base for adapters configured by a card.

    Card fields: ``sample_rate``; ``[bitrates] list`` (the codec's own operating points) or
    ``[bitrates] range = [lo, hi]`` plus ``recommended``; ``[params]`` for the adapter; ``programs``
    (executables it needs) and ``install`` (how to get them).
    """

    requires_programs: tuple[str, ...] = ()
    requires_modules: tuple[str, ...] = ()  # Python modules the adapter runs (their versions go into each run)

    def __init__(self, card: Card):
        self.card = card
        self.name = card.name
        self.sample_rate = int(card.data["sample_rate"])
        self.params = card.params
        spec = card.data.get("bitrates", {})
        self._listed = [Bitrate.parse(b) for b in spec.get("list", [])]
        self._range = tuple(Bitrate.parse(b) for b in spec.get("range", [])) or None
        self._recommended = [Bitrate.parse(b) for b in spec.get("recommended", [])]

    def bitrates(self) -> list[Bitrate]:
        return self._listed or self._recommended

    def bitrates_text(self) -> str:
        """The operating points as `svbench list codecs` shows them: the modes, or the accepted range and
        the points a run without --bitrate uses."""
        points = ", ".join(b.label for b in self.bitrates())
        if self._range and not self._listed:
            return f"{self._range[0].label}..{self._range[1].label} (default run: {points})"
        return points

    def unsupported_reason(self, bitrate: Bitrate) -> str | None:
        if self._listed and bitrate not in self._listed:
            modes = ", ".join(b.label for b in self._listed)
            return f"{self.name} has no {bitrate.label} mode (its modes: {modes})"
        if self._range and not (self._range[0] <= bitrate <= self._range[1]):
            return f"{self.name} accepts {self._range[0].label}..{self._range[1].label}, not {bitrate.label}"
        return None

    def unavailable_reason(self) -> str | None:
        """None when the codec can run on this machine, else why not and how to fix it."""
        programs = tuple(self.card.data.get("programs", ())) or self.requires_programs
        missing = [p for p in programs if self.which(p) is None]
        if missing:
            hint = self.card.data.get("install", "")
            return f"program(s) not found: {', '.join(missing)}" + (f"; install: {hint}" if hint else "")
        return None

    def identity(self) -> str:
        """What decides this codec's output, for the decoded-audio cache and the run id: the card, plus
        whatever else an adapter depends on (a neural codec adds its checkpoint's hash)."""
        return self.card.sha256

    def provenance(self) -> str | None:
        """What a user should see about where this codec's behaviour comes from (a neural codec's
        checkpoint path and hash), printed and stored as a notice of every run; None if nothing."""
        return None

    def which(self, program: str) -> str | None:
        """A program's path: the card's ``search_path`` folders first (e.g. a build cache), then PATH."""
        for folder in self.card.data.get("search_path", []):
            candidate = Path(os.path.expandvars(os.path.expanduser(folder))) / program
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        return shutil.which(program)

    def encode(self, audio: np.ndarray, bitrate: Bitrate) -> bytes:
        raise NotImplementedError

    def decode(self, bitstream: bytes) -> np.ndarray:
        raise NotImplementedError

    def payload_bits(self, bitstream: bytes) -> int:
        """Bits the codec actually produced (without svbench's own framing)."""
        return 8 * len(bitstream)


def fit_length(samples: np.ndarray, n_samples: int, slack: int, what: str) -> np.ndarray:
    """Decoded audio cut or zero-padded to the input's length; more than ``slack`` samples short is a
    truncated stream (decoders that work in whole frames may legitimately end a frame early)."""
    if len(samples) < n_samples - slack:
        raise CodecError(f"{what} decoded to {len(samples)} samples, expected {n_samples}: truncated")
    return np.pad(samples, (0, max(0, n_samples - len(samples))))[:n_samples].astype(np.float32)


def run_program(cmd: list[str], stdin: bytes) -> bytes:
    """Run an external codec program on bytes; a failure names the program and its stderr."""
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise CodecError(f"program not found: {cmd[0]}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise CodecError(f"{cmd[0]} exited with code {done.returncode}: {' | '.join(tail)}")
    return done.stdout
