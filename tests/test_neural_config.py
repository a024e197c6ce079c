"""The neural codecs' typed configuration (svbench/neural/config.py): one composition of card and recipe,
validated where it is written, and stored configurations of older svbench versions read back.

Expected values come from the cards and files the tests write themselves, and from the bit accounting of
the model (n quantizers x log2(codebook size) bits per frame, 50 frames per second at 8 kHz)."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import pytest

from svbench.cards import Card, get_card
from svbench.neural.config import LOSSES, ConfigError, ModelConfig, RecipeConfig, TrainConfig, recipe_config
from svbench.neural.logs import LOG_FIELDS

ROOT = Path(__file__).resolve().parents[1]


def card_with(tmp_path: Path, text: str, codec: str = "svcodec") -> Card:
    """The project's card for ``codec`` with ``text`` put after the line that opens its [recipes.tiny.train]."""
    source = (ROOT / "codecs" / f"{codec}.toml").read_text()
    path = tmp_path / f"{codec}.toml"
    path.write_text(source.replace("[recipes.tiny.train]\n", f"[recipes.tiny.train]\n{text}\n", 1))
    return Card(name=codec, kind="codecs", path=path, data=tomllib.loads(path.read_text()), sha256="test")


@pytest.mark.parametrize("codec", ["svcodec", "soundstream"])
def test_every_recipe_of_the_cards_composes(codec: str) -> None:
    card = get_card("codecs", codec)
    for recipe in card.data["recipes"]:
        config = recipe_config(card, recipe)
        assert config.codec == codec and config.recipe == recipe
        # the bitrates follow from the model: n codes of log2(1024) = 10 bits (+ f0 bits) per 20 ms frame
        bits = 10 * config.model.n_q + config.model.f0_bits
        assert config.model.bitrate_bps(config.model.n_q) == bits * 50


@pytest.mark.parametrize(("text", "message"), [
    ("lr_decy = 0.9", r"\[recipes\.tiny\.train\]: train has no option 'lr_decy'"),
    ("reseed_every = \"often\"", r"\[recipes\.tiny\.train\]: train option reseed_every = 'often': expected int"),
    ("recon = \"l2\"", r"\[recipes\.tiny\.train\]: unknown train option recon = 'l2' \(mrstft \| mel\)"),
    ("valid_per_speaker = 1.5", r"train option valid_per_speaker = 1\.5: expected int \| None"),
    ("w_usage = 0.3\nw_code_entropy = 0.3", r"train option w_code_entropy is given twice"),
])
def test_a_bad_card_option_is_refused_naming_the_card_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    card = card_with(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(str(card.path)) + ".*" + message):
        recipe_config(card, "tiny")


def test_a_model_option_that_does_not_fit_another_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="f0_bits needs head = 'istft'"):
        ModelConfig(f0_bits=10)
    with pytest.raises(ConfigError, match="model option dim = '64': expected int"):
        ModelConfig.from_dict({"dim": "64"})


def test_a_recipe_base_that_is_missing_or_loops_is_refused(tmp_path: Path) -> None:
    card = card_with(tmp_path, "")
    card.data["recipes"]["tiny"]["base"] = "nope"
    with pytest.raises(ConfigError, match=r"\[recipes\.tiny\] base = 'nope': no such recipe"):
        recipe_config(card, "tiny")
    card.data["recipes"]["tiny"]["base"] = "v1"  # v1 extends tiny
    with pytest.raises(ConfigError, match="a loop"):
        recipe_config(card, "v1")


def test_older_loss_names_are_read_under_their_current_ones(tmp_path: Path) -> None:
    """w_usage and w_codebook are the names the code-entropy loss and VQ-VAE's codebook term had; a card or a
    stored configuration that uses them means the same weights."""
    config = recipe_config(card_with(tmp_path, "w_usage = 0.3\nw_codebook = 0.7"), "tiny")
    assert (config.train.w_code_entropy, config.train.w_vq) == (0.3, 0.7)
    stored = json.loads((ROOT / "svbench/neural/checkpoints/svcodec-tiny/config.json").read_text())["config"]
    assert "w_usage" in stored["train"] and "w_code_entropy" not in stored["train"]  # written by an older svbench
    back = RecipeConfig.from_dict(stored)
    assert back.train.w_code_entropy == stored["train"]["w_usage"]
    assert back.train.w_vq == stored["train"]["w_codebook"]
    assert back.model.to_dict() == stored["model"]  # this checkpoint stored every model option of today


def test_a_stored_option_newer_than_the_file_takes_its_default() -> None:
    stored = json.loads((ROOT / "svbench/neural/checkpoints/soundstream-tiny/config.json").read_text())["config"]
    assert "f0_bits" not in stored["model"] and "w_mel" not in stored["train"]  # made before those options
    back = RecipeConfig.from_dict(stored)
    assert back.model.f0_bits == ModelConfig().f0_bits and back.train.w_mel == TrainConfig().w_mel
    with pytest.raises(ConfigError, match="model has no option 'widht'"):
        RecipeConfig.from_dict({**stored, "model": {**stored["model"], "widht": 3}})


def test_held_out_guards_but_is_not_a_stored_recipe_option() -> None:
    config = recipe_config(get_card("codecs", "svcodec"), "tiny")
    assert config.train.held_out == ["svcodec-demo"]  # the card's
    assert "held_out" not in config.to_dict()["train"]
    assert dataclasses.replace(config.train, held_out=[]) == config.train  # not part of what a recipe is


def test_every_loss_term_has_one_weight_and_one_log_column() -> None:
    weights = TrainConfig().weights()
    assert list(weights) == list(LOSSES)
    assert all(f"w_{name}" in TrainConfig.options() for name in LOSSES)
    assert set(LOSSES) <= set(LOG_FIELDS)


def test_options_change_through_with_options_and_are_checked() -> None:
    config = recipe_config(get_card("codecs", "svcodec"), "tiny")
    changed = config.with_options(model={"dim": 32}, train={"lr": 1})  # an integer is a fine float
    assert (changed.model.dim, changed.train.lr) == (32, 1) and config.model.dim == 64
    assert changed.to_dict()["train"]["lr"] == 1 and isinstance(changed.to_dict()["train"]["lr"], int)  # as written
    with pytest.raises(ConfigError, match="unknown train option precision = 'fp16'"):
        config.with_options(train={"precision": "fp16"})
