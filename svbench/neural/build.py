"""The build step of the neural adapters: compose the data manifests, train, export."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from svbench.cards import get_card
from svbench.neural import checkpoint, data
from svbench.neural.config import RENAMED, ModelConfig, RecipeConfig, TrainConfig, recipe_config


def apply_overrides(config: RecipeConfig, items: list[str]) -> RecipeConfig:
    """``section.key=value`` items (section ``model`` or ``train``, value in TOML syntax, a bare word taken
    as a string) applied to a recipe's configuration; a key the configuration does not know is refused."""
    sections: dict[str, Any] = {"model": (config.model, ModelConfig), "train": (config.train, TrainConfig)}
    changes: dict[str, dict[str, Any]] = {"model": {}, "train": {}}
    for item in items:
        name, eq, text = item.partition("=")
        section, _, key = name.strip().partition(".")
        if not eq or section not in sections or not key:
            raise ValueError(f"--set {item!r}: expected model.KEY=VALUE or train.KEY=VALUE")
        now, cls = sections[section]
        key = RENAMED.get(key, key)
        if key not in cls.options():
            raise ValueError(f"--set {item!r}: {section} has no option {key!r} "
                             f"(options: {', '.join(sorted(cls.options()))})")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        old = getattr(now, key)
        if isinstance(value, str) and old is not None and not isinstance(old, str):
            raise ValueError(f"--set {item!r}: {key} takes a {type(old).__name__} ({old!r} now), "
                             f"and {text.strip()!r} is not a TOML value")
        changes[section][key] = value
    return config.with_options(changes["model"], changes["train"], where=f"--set {' '.join(items)}: ")


def build(codec: str, recipe: str | None = None, train_manifest: str | Path | None = None,
          valid_manifest: str | Path | None = None, steps: int | None = None, out: str | Path | None = None,
          log: Any = print, progress: bool = True, overrides: list[str] | None = None) -> Path:
    """Train ``codec`` with ``recipe`` (default: the card's) into ``out``; resumes if ``out`` holds a run.
    ``overrides`` (``train.lr=1e-3``, ...) change the recipe for an experiment; they need their own ``out``."""
    from svbench.neural.train import Trainer

    card = get_card("codecs", codec)
    recipe = recipe or card.params.get("recipe", "tiny")
    config = recipe_config(card, recipe)
    if overrides:
        if out is None:
            raise ValueError("--set changes the recipe, so give --out: the recipe's own folder holds the "
                             "checkpoint that `svbench run` uses")
        config = apply_overrides(config, overrides)
    if steps is not None:
        config = config.with_options(train={"steps": int(steps)})
    target = Path(out) if out else checkpoint.default_dir(codec, recipe)
    target.mkdir(parents=True, exist_ok=True)
    t = config.train
    if train_manifest is None:
        train_manifest = data.compose(list(t.train_data), target / "train_manifest.csv")
    if valid_manifest is None and t.valid_data:
        valid_manifest = data.compose([t.valid_data], target / "valid_manifest.csv",
                                      per_speaker=t.valid_per_speaker, limit=t.valid_clips)
    for m in (train_manifest, valid_manifest):
        if m is not None:
            data.refuse_held_out(Path(m), t.held_out)
    if valid_manifest is not None:
        data.refuse_overlap(Path(train_manifest), Path(valid_manifest))
    changed = f", with {', '.join(overrides)}" if overrides else ""
    log(f"building {codec} (recipe {recipe}{changed}, {t.steps} steps) into {target}; "
        f"train: {train_manifest}; validation: {valid_manifest}")
    trainer = Trainer(config, target, Path(train_manifest), Path(valid_manifest) if valid_manifest else None,
                      log=log, progress=progress)
    return trainer.run()
