"""Audio I/O in one place: read any common format, mix to mono, check, resample with soxr.

Inside svbench audio is float32 mono numpy and its sample rate travels with it (``Audio``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SILENCE_DBFS = -70.0  # a clip whose RMS is below this is treated as silent


class AudioError(Exception):
    """Audio that cannot be used; the message names the file and the reason."""

    def __init__(self, path: object, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class Audio:
    samples: np.ndarray
    sr: int
    notes: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sr


def read(path: str | Path) -> Audio:
    """Read a file as float32 mono; notes say what was changed (mix-down)."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        data, sr = _read_with_av(path, err)
    notes = []
    if data.shape[1] > 1:
        notes.append(f"mixed {data.shape[1]} channels down to mono")
    samples = np.ascontiguousarray(data.mean(axis=1), dtype=np.float32)
    return Audio(samples, int(sr), notes)


def _read_with_av(path: Path, first_error: Exception) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (mp3, m4a, opus...) go through FFmpeg's libraries."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            chunks = [frame.to_ndarray() for frame in container.decode(stream)]
            sr = stream.codec_context.sample_rate
            channels = stream.codec_context.channels
    except (av.error.FFmpegError, IndexError) as err:
        raise AudioError(path, f"unreadable audio ({first_error}; {err})") from None
    if not chunks:
        raise AudioError(path, "no audio frames (empty or truncated file)")
    data = np.concatenate([_planar(c, channels) for c in chunks], axis=0)
    if data.dtype.kind == "i":
        data = data / float(np.iinfo(data.dtype).max + 1)
    return data.astype(np.float32), int(sr)


def _planar(chunk: np.ndarray, channels: int) -> np.ndarray:
    # PyAV gives (channels, n) for planar and (1, n*channels) for packed formats
    if chunk.shape[0] == channels:
        return chunk.T
    return chunk.reshape(-1, channels)


def check(audio: Audio, path: object, min_seconds: float = 0.0) -> Audio:
    """Refuse audio that no metric can use, naming the file and the reason."""
    samples = audio.samples
    if samples.size == 0:
        raise AudioError(path, "empty audio (0 samples)")
    if not np.all(np.isfinite(samples)):
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(path, f"{bad} NaN/inf samples")
    if audio.duration < min_seconds:
        raise AudioError(path, f"too short: {audio.duration:.3f} s < {min_seconds} s")
    if rms_dbfs(samples) < SILENCE_DBFS:
        raise AudioError(path, f"silent (RMS {rms_dbfs(samples):.1f} dBFS < {SILENCE_DBFS} dBFS)")
    return audio


def rms_dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20 * np.log10(max(rms, 1e-12))


def resample(audio: Audio, sr: int) -> Audio:
    if audio.sr == sr:
        return audio
    out = soxr.resample(audio.samples, audio.sr, sr, quality="VHQ")
    return Audio(np.ascontiguousarray(out, dtype=np.float32), sr, list(audio.notes))


def to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)


def from_int16(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


