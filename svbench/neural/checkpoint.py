"""Checkpoints: the training state (``last.pt``, torch.save of state dicts, read with weights_only=True) and
the exported model (``model.safetensors`` + ``config.json``) that the adapter loads."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from svbench.neural.config import ConfigError, ModelConfig, RecipeConfig, config_hash
from svbench.neural.model import NeuralCodec
from svbench.settings import models_root

TRAINING_ONLY = ("ema_sum", "ema_count", "usage")  # buffers the decoder never needs
SHIPPED = Path(__file__).resolve().parent / "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used with this configuration; the message says why."""


def default_dir(codec: str, recipe: str) -> Path:
    return models_root() / codec / recipe


def shipped_dir(codec: str, recipe: str) -> Path:
    return SHIPPED / f"{codec}-{recipe}"


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_state(path: Path, state: dict[str, Any]) -> None:
    _atomic(path, lambda p: torch.save(state, p))


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def export(model: NeuralCodec, config: RecipeConfig | Mapping[str, Any], out: Path, info: dict[str, Any]) -> Path:
    """Write the generator's weights with its configuration (a RecipeConfig, or a stored configuration's dict,
    written as given) into ``out``."""
    from safetensors.torch import save_file

    cfg = config.to_dict() if isinstance(config, RecipeConfig) else dict(config)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if not k.endswith(TRAINING_ONLY)}
    meta = {"config": json.dumps(cfg, sort_keys=True), "config_hash": config_hash(cfg),
            "model_hash": config_hash(cfg["model"])}
    _atomic(out / "model.safetensors", lambda p: save_file(tensors, str(p), metadata=meta))
    doc = {"config": cfg, "config_hash": meta["config_hash"], "model_hash": meta["model_hash"], **info}
    _atomic(out / "config.json", lambda p: p.write_text(json.dumps(doc, indent=2, sort_keys=True)))
    return out / "model.safetensors"


def load_export(path: Path, want_model: ModelConfig | Mapping[str, Any] | None = None
                ) -> tuple[NeuralCodec, RecipeConfig]:
    """Load an exported model and its configuration; with ``want_model``, refuse one whose architecture
    differs (saying how). An option newer than the checkpoint takes its default; the model keeps the model
    hash it was exported with (its bitstreams' model id)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if "config" not in meta:
        raise CheckpointError(f"{path}: no svbench config in the checkpoint's metadata")
    cfg = json.loads(meta["config"])
    if config_hash(cfg) != meta.get("config_hash"):
        raise CheckpointError(f"{path}: config hash mismatch (the file was edited or damaged)")
    try:
        config = RecipeConfig.from_dict(cfg, f"{path}: ")
        want = (want_model if isinstance(want_model, ModelConfig) or want_model is None
                else ModelConfig.from_dict(want_model, "the card's model: "))
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    have = config.model.to_dict()
    if want is not None and config_hash(want.to_dict()) != config_hash(have):
        wanted = want.to_dict()
        diffs = [f"{k}: checkpoint {have.get(k)!r} vs card {wanted.get(k)!r}"
                 for k in sorted(set(wanted) | set(have)) if wanted.get(k) != have.get(k)]
        raise CheckpointError(f"{path}: checkpoint was trained with another model config "
                              f"(recipe {cfg.get('recipe')!r}); differs in {'; '.join(diffs)}")
    model = NeuralCodec(config.model)
    model.model_hash = config_hash(cfg["model"])
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    missing = [k for k in missing if not k.endswith(TRAINING_ONLY)]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the model "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.eval(), config
