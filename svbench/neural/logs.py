"""The training logs, ``train_log.csv`` (every loss term, codebook use, learning rate) and ``valid.csv``
(PESQ-NB and STOI per bitrate): rows appended as training goes, rows after a checkpoint dropped on resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from svbench.neural.config import RENAMED

LOG_FIELDS = ["step", "time_s", "loss_g", "recon", "wave", "mel", "adv", "fm", "commit", "vq", "code_entropy",
              "loss_d", "lr", "codebook_use"]
VALID_FIELDS = ["step", "n_q", "kbps", "pesq_nb", "stoi"]


def append(path: Path, row: dict[str, Any], fields: list[str]) -> None:
    """Append a row; an existing log's header decides the columns (a loss term's older name included)."""
    new = not path.exists()
    if not new:
        with path.open(newline="") as f:
            fields = next(csv.reader(f), fields) or fields
        older = {name[2:]: old[2:] for old, name in RENAMED.items()}  # w_usage -> w_code_entropy: usage column
        row = {older[k] if k not in fields and older.get(k) in fields else k: v for k, v in row.items()}
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def truncate(path: Path, step: int) -> None:
    """Drop the rows logged after ``step`` (a resumed run writes them again)."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    if len(keep) < len(rows):
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(keep)
