"""Content-addressed cache of codec output (bitstream + decoded audio).

The key is a hash of the codec card, the bitrate and the exact PCM the codec was given, so adding a
metric later, or resuming a run, never re-encodes. Entries are written to a temporary name and
renamed, so a killed run never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def key(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class DecodedCache:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, k: str) -> Path:
        return self.root / k[:2] / f"{k}.npz"

    def get(self, k: str) -> tuple[bytes, np.ndarray] | None:
        path = self._path(k)
        if not path.is_file():
            return None
        with np.load(path) as entry:
            return entry["bitstream"].tobytes(), entry["decoded"]

    def put(self, k: str, bitstream: bytes, decoded: np.ndarray) -> None:
        path = self._path(k)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, bitstream=np.frombuffer(bitstream, dtype=np.uint8), decoded=decoded.astype(np.float32))
        tmp.replace(path)
