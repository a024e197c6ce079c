"""Where svbench looks for things: the one place that reads svbench's environment variables.

| variable | default | what |
|---|---|---|
| ``SVBENCH_CACHE`` | ``~/.cache/svbench`` | built programs (EVS), the embedded demo set |
| ``SVBENCH_MODELS`` | ``~/.cache/svbench/models`` | neural codec checkpoints built by ``svbench build`` |
| ``SVBENCH_DATA`` | (none) | folders of manifests that ``--dataset NAME`` knows (``os.pathsep`` separated) |
| ``SVBENCH_SHARED`` | ``../shared`` beside the checkout | the project's shared data folder (tests, training corpora) |
| ``SVBENCH_SPEECH`` | ``$SVBENCH_SHARED/data/speech`` | speech corpora for training recipes |
| ``SVBENCH_SCHEDULER`` | (none) | a Dask scheduler address that ``svbench run`` joins |
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    return Path(os.environ.get("SVBENCH_CACHE") or Path.home() / ".cache" / "svbench")


def models_root() -> Path:
    return Path(os.environ.get("SVBENCH_MODELS") or Path.home() / ".cache" / "svbench" / "models")


def data_folders() -> list[Path]:
    return [Path(p) for p in os.environ.get("SVBENCH_DATA", "").split(os.pathsep) if p]


def shared_root() -> Path:
    return Path(os.environ.get("SVBENCH_SHARED") or _CHECKOUT.parent / "shared")


def speech_root() -> Path:
    return Path(os.environ.get("SVBENCH_SPEECH") or shared_root() / "data" / "speech")


def scheduler() -> str | None:
    return os.environ.get("SVBENCH_SCHEDULER") or None
