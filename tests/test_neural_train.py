"""Training machinery on a few synthetic clips: loss goes down, outputs are written, resume is exact."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
pytest.importorskip("tensorboard")

from svbench.cards import get_card  # noqa: E402
from svbench.neural import checkpoint  # noqa: E402
from svbench.neural.config import ModelConfig, RecipeConfig, recipe_config  # noqa: E402
from svbench.neural.data import Crops, refuse_held_out  # noqa: E402
from svbench.neural.train import Trainer  # noqa: E402


def _clip(seed: int, seconds: float, sr: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    return (0.15 * x + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    rows = []
    for i, sr in enumerate((8000, 16000, 8000, 22050)):  # mixed rates: resampled to 8 kHz on load
        sf.write(root / f"u{i}.wav", _clip(i, 2.0, sr), sr)
        rows.append(f"u{i},u{i}.wav")
    sf.write(root / "v0.wav", _clip(9, 1.5, 16000), 16000)
    (root / "train.csv").write_text("id,path\n" + "\n".join(rows) + "\n")
    (root / "valid.csv").write_text("id,path\nv0,v0.wav\n")
    return root / "train.csv", root / "valid.csv"


def smoke_config(codec: str = "svcodec", **train: object) -> RecipeConfig:
    cfg = recipe_config(get_card("codecs", codec).data, "tiny")
    base = dict(batch_size=4, segment_s=0.4, lr=3e-3, steps=40, adv_start=30, disc_channels=4, log_every=5,
                valid_every=40, ckpt_every=20, valid_n_q=[8], reseed_every=10, threads=1)
    return cfg.with_options(model=dict(channels=4, dim=16, head_channels=16), train={**base, **train})


@pytest.mark.parametrize("codec", ["svcodec", "soundstream"])
def test_smoke_training_loss_decreases(codec: str, manifests: tuple[Path, Path], tmp_path: Path) -> None:
    train, valid = manifests
    out = tmp_path / "run"
    path = Trainer(smoke_config(codec), out, train, valid, progress=False, log=lambda m: None).run()
    with (out / "train_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    recon = [float(r["recon"]) for r in rows]
    assert len(rows) == 8 and recon[-1] < 0.85 * recon[0], recon
    assert rows[-1]["adv"] and rows[-1]["loss_d"]  # the GAN phase ran
    with (out / "valid.csv").open() as f:
        val = list(csv.DictReader(f))
    assert val and float(val[0]["kbps"]) == 4.0 and -0.5 < float(val[0]["pesq_nb"]) < 4.6
    assert -1 <= float(val[0]["stoi"]) <= 1  # a mean correlation (Taal et al. 2011): an untrained model may score < 0
    info = json.loads((out / "config.json").read_text())
    assert info["step"] == 40 and info["seed"] == 1234 and len(info["train_manifest_sha256"]) == 64
    assert info["config"]["model"]["channels"] == 4 and len(info["config_hash"]) == 64
    assert list((out / "tensorboard").iterdir())
    model, loaded = checkpoint.load_export(path, cfg_model := info["config"]["model"])
    cfg = loaded.to_dict()  # the stored form
    assert cfg["model"] == cfg_model and model.n_q == 8
    state = checkpoint.load_state(out / "last.pt")  # torch.load(weights_only=True) works
    assert state["step"] == 40


def test_bf16_autocast_training_runs_on_cpu(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """The GPU's mixed-precision path (precision auto = bf16 there), exercised with CPU autocast: the
    generator and discriminators run in bf16, the quantizer and every loss stay fp32 and finite."""
    train, _ = manifests
    trainer = Trainer(smoke_config(precision="bf16", steps=8, adv_start=4, log_every=4), tmp_path, train, None,
                      progress=False, log=lambda m: None)
    seen: list[torch.dtype] = []
    encoded: list[torch.dtype] = []
    trainer.model.decoder.register_forward_hook(lambda mod, args, out: seen.append(args[0].dtype))
    trainer.model.encoder.register_forward_hook(lambda mod, args, out: encoded.append(out.dtype))
    trainer.run()
    assert set(encoded) == {torch.bfloat16}  # autocast was on
    with (tmp_path / "train_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["adv"] and all(np.isfinite(float(r[k])) for r in rows for k in ("loss_g", "recon", "commit"))
    assert seen and set(seen) == {torch.float32}  # the quantizer hands the decoder fp32 latents
    assert all(b.dtype == torch.float32 for b in trainer.model.quantizer.buffers())
    with pytest.raises(ValueError, match="auto | bf16 | fp32"):
        Trainer(smoke_config(precision="fp16", steps=1), tmp_path / "x", train, None, progress=False).run()


def test_resume_gives_the_same_state(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = manifests
    cfg = smoke_config(steps=6, adv_start=3, ckpt_every=2, reseed_every=3)
    quiet = {"progress": False, "log": lambda m: None}
    straight = Trainer(cfg, tmp_path / "a", train, None, **quiet)
    straight.run()
    Trainer(cfg, tmp_path / "b", train, None, **quiet).run(4)  # "killed" after its step-4 checkpoint
    with (tmp_path / "b" / "train_log.csv").open("a") as f:
        f.write("5,0.1,9,9,,,,,,,,\n")  # ... and after logging a step past that checkpoint
    resumed = Trainer(cfg, tmp_path / "b", train, None, **quiet)
    assert resumed.step == 4
    resumed.run()
    with (tmp_path / "b" / "train_log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [4, 5, 6]  # no duplicated rows
    a, b = straight.state(), resumed.state()
    for part in ("model", "disc"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])


def test_resume_refuses_another_config(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    train, _ = manifests
    Trainer(smoke_config(steps=1), tmp_path, train, None, progress=False, log=lambda m: None).run()
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        Trainer(smoke_config(steps=2, lr=1e-4), tmp_path, train, None, progress=False)
    Trainer(smoke_config(steps=2, adv_start=5), tmp_path, train, None, progress=False)  # not reached yet: fine
    with pytest.raises(checkpoint.CheckpointError, match="adv_start changed"):
        Trainer(smoke_config(steps=2, adv_start=0), tmp_path, train, None, progress=False)


def test_resume_from_a_state_older_than_a_model_option(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """A state saved before a model option existed resumes when the recipe keeps that option's default (the
    rule load_export applies to checkpoints), and is refused when the recipe changes it."""
    train, _ = manifests
    Trainer(smoke_config(steps=1), tmp_path, train, None, progress=False, log=lambda m: None).run()
    state = checkpoint.load_state(tmp_path / "last.pt")
    assert state["config"]["model"]["code_dim"] == ModelConfig().code_dim
    del state["config"]["model"]["code_dim"]  # as if written before the option was added
    checkpoint.save_state(tmp_path / "last.pt", state)
    assert Trainer(smoke_config(steps=2), tmp_path, train, None, progress=False).step == 1
    cfg = smoke_config(steps=2).with_options(model={"code_dim": ModelConfig().code_dim * 2})
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        Trainer(cfg, tmp_path, train, None, progress=False)


def test_resume_from_a_state_older_than_a_train_option(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """The same rule for a training option (w_mel here), and the loss log begun before the option keeps its
    own columns, so every row still lines up with its header."""
    train, _ = manifests
    Trainer(smoke_config(steps=1, w_mel=0.0), tmp_path, train, None, progress=False, log=lambda m: None).run()
    state = checkpoint.load_state(tmp_path / "last.pt")
    del state["config"]["train"]["w_mel"]  # as if saved before the option existed; its default is 0
    checkpoint.save_state(tmp_path / "last.pt", state)
    log = tmp_path / "train_log.csv"
    rows = list(csv.reader(log.open()))
    col = rows[0].index("mel")
    log.write_text("".join(",".join(r[:col] + r[col + 1:]) + "\n" for r in rows))  # as an older version wrote it
    resumed = Trainer(smoke_config(steps=2, w_mel=0.0), tmp_path, train, None, progress=False, log=lambda m: None)
    assert resumed.step == 1
    resumed.run()
    rows = list(csv.reader(log.open()))
    assert "mel" not in rows[0] and [len(r) for r in rows] == [len(rows[0])] * 3
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        Trainer(smoke_config(steps=3, w_mel=1.0), tmp_path, train, None, progress=False)


def test_held_out_set_refused(tmp_path: Path) -> None:
    (tmp_path / "svcodec-demo").mkdir()
    sf.write(tmp_path / "svcodec-demo" / "a.wav", _clip(0, 0.5, 8000), 8000)
    (tmp_path / "m.csv").write_text("id,path\na,svcodec-demo/a.wav\n")
    with pytest.raises(ValueError, match="held-out"):
        refuse_held_out(tmp_path / "m.csv", recipe_config(get_card("codecs", "svcodec"), "tiny").train.held_out)


def test_validation_on_training_audio_refused(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """Validation scores of audio the model trained on would flatter it (the `paper` recipes once trained on
    all of librispeech/, test-other included, while validating on test-other)."""
    from svbench.neural.build import build

    train, _ = manifests
    overlap = tmp_path / "valid.csv"
    overlap.write_text(f"id,path\nx,{train.parent / 'u1.wav'}\n")
    with pytest.raises(ValueError, match="also in the training manifest"):
        build("svcodec", "tiny", train, overlap, steps=1, out=tmp_path / "run", progress=False, log=lambda m: None)
    assert not (tmp_path / "run" / "last.pt").exists()
    for codec in ("svcodec", "soundstream"):  # the cards' own corpora: training and validation speakers apart
        for recipe in ("tiny", "paper"):
            t = recipe_config(get_card("codecs", codec).data, recipe).to_dict()["train"]
            valid_corpus, _, valid_sub = t["valid_data"].partition("/")
            for src in t["train_data"]:
                corpus, _, sub = src.partition("/")
                assert corpus != valid_corpus or (sub and sub != valid_sub), (codec, recipe, src)


def test_compose_refuses_a_subfolder_with_no_files(tmp_path: Path) -> None:
    from svbench.neural.data import compose

    (tmp_path / "corpus").mkdir()
    sf.write(tmp_path / "corpus" / "a.wav", _clip(0, 0.5, 8000), 8000)
    (tmp_path / "corpus" / "manifest.csv").write_text("id,path\na,a.wav\n")
    assert compose(["corpus"], tmp_path / "m.csv", root=tmp_path).is_file()
    with pytest.raises(FileNotFoundError, match="no files under train-clean-360/"):
        compose(["corpus/train-clean-360"], tmp_path / "m2.csv", root=tmp_path)


def test_crops_never_pad_with_zeros() -> None:
    """Clips shorter than the crop are followed by pieces of other clips, never by digital silence (zeros in the
    crop would dominate the log-magnitude loss); the clips here have no zero sample, so neither may a crop."""
    clips = [_clip(i, 0.3, 8000) + 0.01 for i in range(5)]  # 2400 samples each, offset: no exact zero
    assert all(np.all(c != 0) for c in clips)
    crops = Crops(clips, 6400)
    batch = crops.batch(16, seed=1, step=0)
    assert batch.shape == (16, 6400) and np.all(batch != 0)
    np.testing.assert_array_equal(batch, crops.batch(16, seed=1, step=0))  # seeded: resume sees the same batch


def test_build_overrides_change_one_option_and_refuse_unknown_keys() -> None:
    from svbench.neural.build import apply_overrides, build

    cfg = recipe_config(get_card("codecs", "svcodec").data, "tiny")
    before = cfg.to_dict()
    out = apply_overrides(cfg, ["train.lr_decay=0.99985", "model.strides=[2, 80]", "train.recon=mel",
                                "train.reseed_threshold = 0.1"]).to_dict()
    assert out["train"]["lr_decay"] == 0.99985 and out["model"]["strides"] == [2, 80]
    assert out["train"]["recon"] == "mel" and out["train"]["reseed_threshold"] == 0.1
    # every other option is the recipe's own
    assert {k: v for k, v in out["train"].items() if k not in ("lr_decay", "recon", "reseed_threshold")} == \
        {k: v for k, v in before["train"].items() if k not in ("lr_decay", "recon", "reseed_threshold")}
    with pytest.raises(ValueError, match="'lr_decy'"):  # a typo must not be silently ignored
        apply_overrides(cfg, ["train.lr_decy=1"])
    with pytest.raises(ValueError, match="takes a float"):  # a mistyped number is not taken as a string
        apply_overrides(cfg, ["train.lr=1e-3x"])
    with pytest.raises(ValueError, match="expected model.KEY=VALUE"):
        apply_overrides(cfg, ["lr=1"])
    with pytest.raises(ValueError, match="give --out"):  # the recipe's own folder holds `svbench run`'s model
        build("svcodec", "tiny", overrides=["train.lr=1e-3"])
