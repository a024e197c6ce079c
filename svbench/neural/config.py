"""The neural codecs' configuration: ``ModelConfig`` and ``TrainConfig``, composed and validated in one place.

A codec card holds ``[model]`` and ``[train]`` tables that every recipe shares and ``[recipes.NAME]`` tables
that change them (``base = "OTHER"`` extends another recipe). ``recipe_config(card, recipe)`` lays them over
the defaults below; an option a table does not know, a value of the wrong type or an unknown kind is refused
naming the card, the table and the key. ``RecipeConfig.from_dict`` reads a stored configuration back (a
checkpoint's or a training state's): an option newer than the file takes its default, and an option stored
under an older name (``RENAMED``) is read under its current one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RENAMED = {"w_usage": "w_code_entropy", "w_codebook": "w_vq"}  # older name -> current name


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names where it came from and the option."""


def config_hash(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:  # a TOML integer is a fine float; it is kept as written, so stored hashes do not move
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


class _Options:
    """Shared by ModelConfig and TrainConfig: checks at construction, reading from and writing to a dict."""

    SECTION = ""
    CHOICES: dict[str, tuple[str, ...]] = {}

    def __post_init__(self) -> None:
        for name in self.options():
            self.check(name, getattr(self, name))

    @classmethod
    def options(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def check(cls, name: str, value: Any) -> None:
        """Refuse a value of the wrong type, or a kind the option does not know."""
        hint = typing.get_type_hints(cls)[name]
        if not _type_ok(value, hint):
            raise ConfigError(f"{cls.SECTION} option {name} = {value!r}: expected {_type_name(hint)}")
        kinds = cls.CHOICES.get(name)
        if kinds and value not in kinds:
            raise ConfigError(f"unknown {cls.SECTION} option {name} = {value!r} ({' | '.join(kinds)})")

    @classmethod
    def read(cls, data: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """``data``'s options under their current names, each checked; ``where`` prefixes an error."""
        known, values = cls.options(), {}
        for key, value in data.items():
            name = RENAMED.get(key, key)
            if name not in known:
                raise ConfigError(f"{where}{cls.SECTION} has no option {key!r} (options: {', '.join(sorted(known))})")
            if name in values:
                raise ConfigError(f"{where}{cls.SECTION} option {name} is given twice (as {key!r} and its other name)")
            try:
                cls.check(name, value)
            except ConfigError as err:
                raise ConfigError(f"{where}{err}") from None
            values[name] = copy.deepcopy(value)
        return values

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Any:
        """The options in ``data`` over the defaults."""
        values = cls.read(data, where)
        try:
            return cls(**values)
        except ConfigError as err:  # an option that does not fit another one
            raise ConfigError(f"{where}{err}") from None

    def to_dict(self) -> dict[str, Any]:
        """Every stored option (what checkpoints hold and hashes are made of)."""
        return {f.name: copy.deepcopy(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.metadata.get("stored", True)}  # type: ignore[arg-type]

    def replace(self, where: str = "", **changes: Any) -> Any:
        return type(self).from_dict({**{k: getattr(self, k) for k in self.options()}, **changes}, where)


@dataclass(frozen=True)
class ModelConfig(_Options):
    """The architecture: what a checkpoint's weights fit, and what its model id is made of."""

    SECTION = "model"
    CHOICES = {"codebook": ("factorized", "ema"), "activation": ("elu", "leaky_relu"), "head": ("wave", "istft"),
               "front": ("wave", "stft")}

    sample_rate: int = 8000
    channels: int = 16  # encoder/decoder width at the waveform rate (x2 per down-sampling)
    dim: int = 64  # latent dimension
    strides: list[int] = field(default_factory=lambda: [2, 4, 5, 4])  # 160 samples per frame: 50 frames/s at 8 kHz
    dilations: list[int] = field(default_factory=lambda: [1, 3, 9])  # residual units per level
    n_q: int = 8  # quantizer stages (n_q x log2(codebook_size) bits per frame at the full bitrate)
    codebook_size: int = 1024
    codebook: str = "factorized"  # factorized (codes learned by gradient) | ema (online k-means in the latent)
    code_dim: int = 8  # factorized only: the lookup space's dimension
    temperature: float = 1.0  # of the code-entropy loss's soft assignment, relative to the mean code distance
    up_overlap: bool = False  # decoder upsampling: kernel 2 x stride (overlapping frames) instead of kernel = stride
    shortcut: bool = False  # sum each deep stack with a linear frame transform (stacks.Shortcut)
    activation: str = "elu"  # elu (SEANet) | leaky_relu (slope 0.1, HiFi-GAN; no exp, cheaper on CPU)
    head: str = "wave"  # wave (SEANet decoder up to the sample rate) | istft (low-rate decoder + inverse-STFT head)
    istft_fft: int = 160  # istft head and stft front: FFT size and hop, in samples
    istft_hop: int = 40
    head_channels: int = 128  # istft decoder / stft encoder width at the frame rate (halved at the STFT rate)
    front: str = "wave"  # wave (SEANet encoder from the sample rate) | stft (causal STFT frames, istft_fft/istft_hop)
    f0_bits: int = 0  # > 0: send each frame's f0 in this many bits, decode through a source-filter head (istft)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.f0_bits and self.head != "istft":
            raise ConfigError("model option f0_bits needs head = 'istft' (the source-filter head is an iSTFT head)")

    @property
    def hop(self) -> int:
        return int(math.prod(self.strides))

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / math.prod(self.strides)

    def bitrate_bps(self, n_q: int) -> float:
        """Bit/s with n_q quantizers: n_q codes and the f0 field (if any) per frame."""
        return (n_q * math.log2(self.codebook_size) + self.f0_bits) * self.frame_rate

    def hash(self) -> str:
        return config_hash(self.to_dict())


LOSSES = ("recon", "wave", "mel", "commit", "vq", "code_entropy", "adv", "fm")
"""The generator's loss terms, in the order they are summed, each weighted by ``TrainConfig.w_<name>``:
the reconstruction loss ``recon`` names; the time-domain L1; the log-mel L1; the quantizer's commitment
loss; VQ-VAE's codebook term (factorized codebooks); the code-entropy loss (SVCODEC's codebook loss); the
adversarial loss; feature matching. A term with no weight is not computed, except the two GAN terms, which
are computed from ``adv_start`` on."""


@dataclass(frozen=True)
class TrainConfig(_Options):
    """How a model is trained: data, schedule, losses and their weights, validation, logging."""

    SECTION = "train"
    CHOICES = {"bitrate_sampling": ("balanced", "dropout", "full"), "recon": ("mrstft", "mel"),
               "adv_loss": ("lsgan", "hinge"), "precision": ("auto", "bf16", "fp32")}

    train_data: list[str] = field(default_factory=list)  # corpus folders (corpus, corpus/subdir) under the speech root
    valid_data: str | None = None  # the validation corpus folder
    valid_per_speaker: int | None = None  # validation utterances kept per speaker
    held_out: list[str] = field(default_factory=list, compare=False, metadata={"stored": False})
    # folder names whose files are for evaluation only: a training or validation manifest listing one is refused.
    # A guard, not a recipe option: it changes no weight, so it is not stored with a checkpoint's configuration.
    seed: int = 1234
    steps: int = 1000
    batch_size: int = 8
    segment_s: float = 1.0  # training crop length
    lr: float = 1e-3
    lr_d: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    lr_decay: float = 0.9999  # per step, exponential
    grad_clip: float = 10.0
    bitrate_sampling: str = "balanced"  # balanced (every n_q equally often in each batch) | dropout | full
    dropout_p: float = 1.0  # dropout: share of examples whose n_q is drawn (others use all quantizers)
    recon: str = "mrstft"  # mrstft (multi-resolution STFT) | mel (SoundStream's multi-scale mel)
    stft_ffts: list[int] = field(default_factory=lambda: [128, 256, 512, 1024])
    discriminators: list[str] = field(default_factory=lambda: ["mpd", "msd"])  # mpd | msd | stft
    disc_channels: int = 16
    adv_loss: str = "lsgan"  # lsgan | hinge
    adv_start: int = 0  # step at which adversarial training starts
    wave_lowpass_hz: float = 0.0  # > 0: the time-domain L1 on the band below this only
    w_recon: float = 1.0
    w_wave: float = 0.0
    w_mel: float = 0.0
    w_adv: float = 1.0
    w_fm: float = 2.0
    w_commit: float = 1.0
    w_vq: float = 1.0
    w_code_entropy: float = 0.1
    reseed_every: int = 100  # steps between dead-code re-seeding (0: never)
    reseed_threshold: float = 0.01  # a code used less than this (EMA hits per batch) is dead
    log_every: int = 10
    valid_every: int = 500
    ckpt_every: int = 250
    valid_clips: int = 8
    valid_seconds: float = 4.0
    valid_n_q: list[int] = field(default_factory=lambda: [2, 4, 6, 8])
    threads: int = 2  # CPU threads (torch.set_num_threads)
    precision: str = "auto"  # auto (bf16 autocast on GPU, fp32 on CPU) | bf16 | fp32; the quantizer always runs in fp32

    def weights(self) -> dict[str, float]:
        """Loss term -> its weight, for every term of ``LOSSES``."""
        return {name: getattr(self, f"w_{name}") for name in LOSSES}


@dataclass(frozen=True)
class RecipeConfig:
    """A codec's recipe: its model and its training."""

    codec: str | None
    recipe: str | None
    model: ModelConfig
    train: TrainConfig

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> RecipeConfig:
        """A stored configuration (``{"codec", "recipe", "model", "train"}``) back as typed options."""
        unknown = set(data) - {"codec", "recipe", "model", "train"}
        if unknown:
            raise ConfigError(f"{where}unknown configuration section(s) {', '.join(sorted(unknown))}")
        return cls(data.get("codec"), data.get("recipe"), ModelConfig.from_dict(data.get("model", {}), where),
                   TrainConfig.from_dict(data.get("train", {}), where))

    def to_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "recipe": self.recipe, "model": self.model.to_dict(),
                "train": self.train.to_dict()}

    def hash(self) -> str:
        return config_hash(self.to_dict())

    def with_options(self, model: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
                     where: str = "") -> RecipeConfig:
        """This recipe with some options changed (validated as a card's are)."""
        return dataclasses.replace(self, model=self.model.replace(where, **(model or {})),
                                   train=self.train.replace(where, **(train or {})))


def recipe_config(card: Any, recipe: str) -> RecipeConfig:
    """A recipe of a codec card (a ``Card`` or its data): the card's ``[model]``/``[train]`` over the defaults,
    then the recipe's changes, the recipe it is ``base``d on first."""
    data = card.data if hasattr(card, "data") else card
    source = f"{card.path}" if hasattr(card, "path") else f"codec card {data.get('name')!r}"
    recipes = data.get("recipes", {})
    if recipe not in recipes:
        raise ConfigError(f"{source}: no recipe {recipe!r} (recipes: {', '.join(recipes)})")
    chain: list[str] = []
    name = recipe
    while name:
        if name not in recipes or name in chain:
            raise ConfigError(f"{source}: [recipes.{chain[-1]}] base = {name!r}: "
                              + ("a loop" if name in chain else "no such recipe"))
        chain.append(name)
        name = recipes[name].get("base")
    layers = [("", data)] + [(f"recipes.{n}.", recipes[n]) for n in reversed(chain)]
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for prefix, layer in layers:  # each table's keys and values checked where they are written
        if prefix:
            extra = set(layer) - {"base", "description", "model", "train"}
            if extra:
                raise ConfigError(f"{source}: [{prefix[:-1]}] has no field {sorted(extra)[0]!r} "
                                  "(base, description, model, train)")
        for section, into, cls in (("model", model, ModelConfig), ("train", train, TrainConfig)):
            into.update(cls.read(layer.get(section, {}), f"{source}, [{prefix}{section}]: "))
    where = f"{source}, recipe {recipe}: "
    return RecipeConfig(data.get("name"), recipe, ModelConfig.from_dict(model, where),
                        TrainConfig.from_dict(train, where))
