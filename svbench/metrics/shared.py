"""Per-utterance analysis shared between metrics: resampling, WORLD analysis, spectra.

The engine calls every metric on the same (ref, deg) arrays of one unit. Several metrics need the
same expensive intermediate (F0RMSE, SaRMSE and MCD all use one WORLD analysis at 16 kHz; ViSQOL,
DNSMOS and WORLD all need the 16 kHz version of 8 kHz audio). This module memoises those steps in
each worker process, keyed by a digest of the input samples and every parameter, so each is done
once per utterance whatever the order or combination of metrics. The memo holds the last few
results only (``MAX_ENTRIES``); nothing is shared between processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
MAX_ENTRIES = 24  # one unit of the full suite makes about a dozen entries; two units stay warm

_memo: OrderedDict[Hashable, Any] = OrderedDict()
_digests: OrderedDict[int, tuple[np.ndarray, bytes]] = OrderedDict()


def digest(x: np.ndarray) -> bytes:
    """Content digest of an array; remembered by identity (holding a reference, so ids are not reused)."""
    hit = _digests.get(id(x))
    if hit is not None and hit[0] is x:
        return hit[1]
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{x.dtype.str}{x.shape}".encode())
    h.update(np.ascontiguousarray(x).view(np.uint8).data)
    value = h.digest()
    _digests[id(x)] = (x, value)
    while len(_digests) > 2 * MAX_ENTRIES:
        _digests.popitem(last=False)
    return value


def memo(key: Hashable, compute: Callable[[], T]) -> T:
    if key in _memo:
        _memo.move_to_end(key)
        return _memo[key]  # type: ignore[no-any-return]
    value = compute()
    _memo[key] = value
    while len(_memo) > MAX_ENTRIES:
        _memo.popitem(last=False)
    return value


def clear() -> None:
    _memo.clear()
    _digests.clear()


def resampled(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """``x`` at ``target`` Hz, with the resampler the engine uses (soxr VHQ, float32)."""
    if sr == target:
        return x
    from svbench.audio import Audio, resample

    return memo(("resample", digest(x), sr, target), lambda: resample(Audio(x, sr), target).samples)


# ---------------------------------------------------------------- WORLD


@dataclass(frozen=True)
class WorldConfig:
    f0_method: str = "dio"  # dio (DIO + StoneMask) | harvest
    frame_period_ms: float = 5.0
    f0_floor: float = 71.0
    f0_ceil: float = 800.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> WorldConfig:
        method = str(params.get("f0_method", "dio")).lower()
        if method not in {"dio", "harvest"}:
            raise ValueError(f"f0_method must be 'dio' or 'harvest', got {method!r}")
        return cls(method, float(params.get("frame_period_ms", 5.0)), float(params.get("f0_floor", 71.0)),
                   float(params.get("f0_ceil", 800.0)))


def world_f0(x: np.ndarray, sr: int, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz with 0 = unvoiced, frame times in s) of float audio ``x`` at ``sr``."""

    def run() -> tuple[np.ndarray, np.ndarray]:
        import pyworld

        x64 = np.ascontiguousarray(x, dtype=np.float64)
        if cfg.f0_method == "harvest":
            return pyworld.harvest(x64, sr, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil,
                                   frame_period=cfg.frame_period_ms)
        f0, t = pyworld.dio(x64, sr, f0_floor=cfg.f0_floor, f0_ceil=cfg.f0_ceil, frame_period=cfg.frame_period_ms)
        return pyworld.stonemask(x64, f0, t, sr), t

    return memo(("world_f0", digest(x), sr, cfg), run)


def world_envelope(x: np.ndarray, sr: int, cfg: WorldConfig) -> np.ndarray:
    """CheapTrick spectral envelope (frames x fft/2+1), pyworld's default FFT size for ``f0_floor``."""

    def run() -> np.ndarray:
        import pyworld

        f0, t = world_f0(x, sr, cfg)
        return pyworld.cheaptrick(np.ascontiguousarray(x, dtype=np.float64), f0, t, sr, f0_floor=cfg.f0_floor)

    return memo(("world_sp", digest(x), sr, cfg), run)


def world_aperiodicity(x: np.ndarray, sr: int, cfg: WorldConfig) -> np.ndarray:
    """D4C aperiodicity (frames x fft/2+1), uncoded, values in [0.001, 1]."""

    def run() -> np.ndarray:
        import pyworld

        f0, t = world_f0(x, sr, cfg)
        fft_size = pyworld.get_cheaptrick_fft_size(sr, cfg.f0_floor)
        return pyworld.d4c(np.ascontiguousarray(x, dtype=np.float64), f0, t, sr, fft_size=fft_size)

    return memo(("world_ap", digest(x), sr, cfg), run)


# ---------------------------------------------------------------- spectra


def frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """(n_frames, length) view of ``x``; the last partial frame is dropped (no padding)."""
    if len(x) < length:
        return np.zeros((0, length), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]


def power_spectrogram(x: np.ndarray, sr: int, frame: int, hop: int) -> np.ndarray:
    """Periodic-Hann STFT power, normalised by the window's energy (white noise of variance s^2 gives s^2)."""

    def run() -> np.ndarray:
        window = np.hanning(frame + 1)[:-1]
        spec = np.fft.rfft(frames(np.asarray(x, dtype=np.float64), frame, hop) * window, axis=1)
        return (spec.real**2 + spec.imag**2) / np.sum(window**2)

    return memo(("stft_power", digest(x), sr, frame, hop), run)


@contextlib.contextmanager
def native_stderr_without(*chatter: str) -> Iterator[None]:
    """Run native code whose C++ logging writes to file descriptor 2 (TensorFlow Lite's "INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU." on every interpreter): its lines containing one of
    ``chatter`` are dropped, every other line is written to stderr as it would have been."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [ln for ln in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(c in ln for c in chatter)]
            if kept:
                sys.stderr.write("".join(kept))
