"""The build step of the neural adapters: compose the data manifests, train, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svbench.cards import get_card
from svbench.neural import checkpoint, data
from svbench.neural.model import recipe_config


def build(codec: str, recipe: str | None = None, train_manifest: str | Path | None = None,
          valid_manifest: str | Path | None = None, steps: int | None = None, out: str | Path | None = None,
          log: Any = print, progress: bool = True) -> Path:
    """Train ``codec`` with ``recipe`` (default: the card's) into ``out``; resumes if ``out`` holds a run."""
    from svbench.neural.train import Trainer

    card = get_card("codecs", codec)
    recipe = recipe or card.params.get("recipe", "tiny")
    cfg = recipe_config(card.data, recipe)
    if steps is not None:
        cfg["train"]["steps"] = int(steps)
    target = Path(out) if out else checkpoint.default_dir(codec, recipe)
    target.mkdir(parents=True, exist_ok=True)
    t = cfg["train"]
    if train_manifest is None:
        train_manifest = data.compose(list(t["train_data"]), target / "train_manifest.csv")
    if valid_manifest is None and t.get("valid_data"):
        valid_manifest = data.compose([t["valid_data"]], target / "valid_manifest.csv",
                                      per_speaker=t.get("valid_per_speaker"), limit=t.get("valid_clips"))
    for m in (train_manifest, valid_manifest):
        if m is not None:
            data.refuse_held_out(Path(m))
    log(f"building {codec} (recipe {recipe}, {t['steps']} steps) into {target}; "
        f"train: {train_manifest}; validation: {valid_manifest}")
    trainer = Trainer(cfg, target, Path(train_manifest), Path(valid_manifest) if valid_manifest else None,
                      log=log, progress=progress)
    return trainer.run()
