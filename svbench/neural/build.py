"""The build step of the neural adapters: compose the data manifests, train, export."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from svbench.cards import get_card
from svbench.neural import checkpoint, data
from svbench.neural.model import recipe_config


def apply_overrides(cfg: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """``section.key=value`` items (section ``model`` or ``train``, value in TOML syntax, a bare word taken
    as a string) applied to a recipe's configuration; a key the configuration does not know is refused."""
    from svbench.neural.train import TRAIN_DEFAULTS

    current = {"model": cfg["model"], "train": {**TRAIN_DEFAULTS, **cfg["train"]}}  # what each option is now
    for item in items:
        name, eq, text = item.partition("=")
        section, _, key = name.strip().partition(".")
        if not eq or section not in current or not key:
            raise ValueError(f"--set {item!r}: expected model.KEY=VALUE or train.KEY=VALUE")
        if key not in current[section]:
            raise ValueError(f"--set {item!r}: {section} has no option {key!r} "
                             f"(options: {', '.join(sorted(current[section]))})")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        old = current[section][key]
        if isinstance(value, str) and old is not None and not isinstance(old, str):
            raise ValueError(f"--set {item!r}: {key} takes a {type(old).__name__} ({old!r} now), "
                             f"and {text.strip()!r} is not a TOML value")
        cfg[section][key] = value
    return cfg


def build(codec: str, recipe: str | None = None, train_manifest: str | Path | None = None,
          valid_manifest: str | Path | None = None, steps: int | None = None, out: str | Path | None = None,
          log: Any = print, progress: bool = True, overrides: list[str] | None = None) -> Path:
    """Train ``codec`` with ``recipe`` (default: the card's) into ``out``; resumes if ``out`` holds a run.
    ``overrides`` (``train.lr=1e-3``, ...) change the recipe for an experiment; they need their own ``out``."""
    from svbench.neural.train import Trainer

    card = get_card("codecs", codec)
    recipe = recipe or card.params.get("recipe", "tiny")
    cfg = recipe_config(card.data, recipe)
    if overrides:
        if out is None:
            raise ValueError("--set changes the recipe, so give --out: the recipe's own folder holds the "
                             "checkpoint that `svbench run` uses")
        cfg = apply_overrides(cfg, overrides)
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
    if valid_manifest is not None:
        data.refuse_overlap(Path(train_manifest), Path(valid_manifest))
    changed = f", with {', '.join(overrides)}" if overrides else ""
    log(f"building {codec} (recipe {recipe}{changed}, {t['steps']} steps) into {target}; "
        f"train: {train_manifest}; validation: {valid_manifest}")
    trainer = Trainer(cfg, target, Path(train_manifest), Path(valid_manifest) if valid_manifest else None,
                      log=log, progress=progress)
    return trainer.run()
