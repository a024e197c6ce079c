"""Where a metric's model comes from: the package that ships it, its version, and a hash of the model files.

Recorded with every run that uses the metric (``BaseMetric.describe``) and shown by ``svbench list metrics``,
so a number can be traced to the exact weights that produced it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


@lru_cache(maxsize=32)
def _sha256(paths: tuple[str, ...]) -> str:
    """SHA-256 over the files (a folder: every file in it, sorted), each preceded by its name."""
    h = hashlib.sha256()
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):  # noqa: B023 (fh is the current file)
                    h.update(block)
    return h.hexdigest()


def model_provenance(package: str, files: list[Path], label: str = "") -> dict[str, Any]:
    """``{"package", "version", "model", "sha256"}`` for model files shipped by (or used through) ``package``."""
    try:
        pkg_version: str | None = version(package)
    except PackageNotFoundError:
        pkg_version = None
    return {"package": package, "version": pkg_version, "model": label or ", ".join(p.name for p in files),
            "sha256": _sha256(tuple(str(p) for p in files))}


def describe_provenance(info: dict[str, Any]) -> str:
    """One line for ``svbench list metrics``: ``model: en-us (pocketsphinx 5.1.1, sha256 1a2b3c4d5e6f)``."""
    return f"model: {info['model']} ({info['package']} {info['version']}, sha256 {info['sha256'][:12]})"
